//! Getting one decided frame out of one port: the VLAN tag action, the MTU
//! check, and software checksum/segmentation for ports without offloads.

use std::io;

use super::stats::Reason;
use crate::os::sys;
use crate::port::Port;
use crate::switch::TagAction;
use crate::wire::ethernet::{HEADER_LEN, TAG_LEN};
use crate::wire::vnet::{self, VNET_HDR_LEN, VnetHdr};

/// Writes `[header][frame with the tag action applied]` into `out`;
/// returns the header written (offsets shifted by a pushed/popped tag).
pub fn apply_tag(
    act: TagAction,
    tpid: u16,
    hdr: VnetHdr,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> VnetHdr {
    let mut h = hdr;
    out.clear();
    out.resize(VNET_HDR_LEN, 0);
    match act {
        TagAction::Keep => out.extend_from_slice(frame),
        TagAction::Push(vid) => {
            out.extend_from_slice(&frame[..12]);
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
            out.extend_from_slice(&frame[12..]);
            h.shift(TAG_LEN as i16);
        }
        TagAction::Pop => {
            out.extend_from_slice(&frame[..12]);
            out.extend_from_slice(&frame[HEADER_LEN + 2..]);
            h.shift(-(TAG_LEN as i16));
        }
        TagAction::Rewrite(vid) => {
            out.extend_from_slice(frame);
            let at = VNET_HDR_LEN + HEADER_LEN;
            let tci = u16::from_be_bytes([out[at], out[at + 1]]);
            let tci = (tci & 0xf000) | (vid & 0x0fff);
            out[at..at + 2].copy_from_slice(&tci.to_be_bytes());
        }
    }
    h.write(&mut out[..VNET_HDR_LEN]);
    h
}

/// Why (part of) a frame did not leave a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Dropped(Reason),
    /// The peer's link is down (EIO/ENETDOWN).
    LinkDown,
    /// The device is gone (EBADFD/ENODEV).
    Gone,
}

/// Outcome of sending one decided frame to one port: what left (a GSO frame
/// segmented in software may be several frames) and, if something did not,
/// why. The remaining segments after a failure are not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    pub frames: u64,
    pub bytes: u64,
    pub failure: Option<Failure>,
}

impl Sent {
    pub(super) fn ok(bytes: usize) -> Sent {
        Sent {
            frames: 1,
            bytes: bytes as u64,
            failure: None,
        }
    }

    pub(super) fn failed(f: Failure) -> Sent {
        Sent {
            failure: Some(f),
            ..Sent::default()
        }
    }
}

pub(super) fn classify(e: &io::Error) -> Failure {
    if sys::is_would_block(e) {
        Failure::Dropped(Reason::QueueFull)
    } else if sys::is_link_down(e) {
        Failure::LinkDown
    } else if sys::is_gone(e) {
        Failure::Gone
    } else if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EMSGSIZE) {
        Failure::Dropped(Reason::Malformed)
    } else {
        Failure::Dropped(Reason::IoError)
    }
}

/// What sending to a port needs to know of it, read once when the worker
/// makes the port's slot rather than per frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortIo {
    pub mtu: usize,
    pub offloads: bool,
}

/// Where [`send`] puts frames: a [`Port`] (tests use fakes).
pub trait Sink {
    /// Sends one \[header]\[frame] buffer.
    fn send(&self, buf: &[u8]) -> io::Result<()>;
    /// Sends a header and a frame held apart.
    fn send2(&self, hdr: &[u8], frame: &[u8]) -> io::Result<()>;
}

impl Sink for Port {
    #[inline]
    fn send(&self, buf: &[u8]) -> io::Result<()> {
        Port::send(self, buf)
    }
    fn send2(&self, hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        Port::send2(self, hdr, frame)
    }
}

/// Whether a frame of `len` bytes may leave a port: a GSO frame always
/// (it is segmented to the port's MTU); otherwise, like the kernel's
/// is_skb_forwardable, up to the MTU plus the Ethernet header and one tag.
pub fn fits(io: &PortIo, hdr: &VnetHdr, len: usize) -> bool {
    hdr.is_gso() || len <= io.mtu + HEADER_LEN + TAG_LEN
}

/// Sends `buf` = \[header]\[frame] (tag already applied) to `port`, whose
/// [`PortIo`] is `io`; `hdr` is that header, parsed once by the caller.
/// `scratch` is reused for software offload work.
pub fn send(
    port: &impl Sink,
    io: &PortIo,
    hdr: VnetHdr,
    buf: &[u8],
    scratch: &mut Vec<u8>,
) -> Sent {
    let frame = &buf[VNET_HDR_LEN..];
    if !fits(io, &hdr, frame.len()) {
        return Sent::failed(Failure::Dropped(Reason::TooBig));
    }
    if io.offloads || hdr.is_plain() {
        return match port.send(buf) {
            Ok(()) => Sent::ok(frame.len()),
            Err(e) => Sent::failed(classify(&e)),
        };
    }
    if hdr.is_gso() {
        let mut out = Sent::default();
        let mut seg_buf = std::mem::take(scratch);
        let zero = [0u8; VNET_HDR_LEN];
        let r = vnet::segment(&hdr, frame, &mut seg_buf, |seg| {
            if out.failure.is_none() {
                match port.send2(&zero, seg) {
                    Ok(()) => {
                        out.frames += 1;
                        out.bytes += seg.len() as u64;
                    }
                    Err(e) => out.failure = Some(classify(&e)),
                }
            }
        });
        *scratch = seg_buf;
        if r.is_err() {
            out.failure = Some(Failure::Dropped(Reason::Malformed));
        }
        return out;
    }
    // Partial checksum only.
    scratch.clear();
    scratch.extend_from_slice(frame);
    if vnet::finish_checksum(&hdr, scratch).is_err() {
        return Sent::failed(Failure::Dropped(Reason::Malformed));
    }
    match port.send2(&[0u8; VNET_HDR_LEN], scratch) {
        Ok(()) => Sent::ok(scratch.len()),
        Err(e) => Sent::failed(classify(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        f.extend_from_slice(&[0xab; 20]);
        f
    }

    fn gso_hdr() -> VnetHdr {
        VnetHdr::TCP4_GSO_SAMPLE
    }

    /// A port that accepts `ok` frames, then says EAGAIN, and keeps what
    /// it took.
    struct Flaky {
        ok: std::cell::Cell<usize>,
        took: std::cell::RefCell<Vec<Vec<u8>>>,
    }

    impl Flaky {
        fn new(ok: usize) -> Flaky {
            Flaky {
                ok: std::cell::Cell::new(ok),
                took: Default::default(),
            }
        }
    }

    impl Sink for Flaky {
        fn send(&self, buf: &[u8]) -> io::Result<()> {
            self.send2(&[], buf)
        }
        fn send2(&self, hdr: &[u8], frame: &[u8]) -> io::Result<()> {
            if self.ok.get() == 0 {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            self.ok.set(self.ok.get() - 1);
            self.took.borrow_mut().push([hdr, frame].concat());
            Ok(())
        }
    }

    #[test]
    fn segments_sent_before_a_failure_are_counted() {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ]);
        f.extend_from_slice(&[
            0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        f.extend(std::iter::repeat_n(0xab, 4000));
        let hdr = VnetHdr {
            gso_size: 1000,
            ..gso_hdr()
        };
        let mut buf = vec![0u8; VNET_HDR_LEN];
        hdr.write(&mut buf);
        buf.extend_from_slice(&f);
        let port = Flaky::new(2);
        let io = PortIo {
            mtu: 1500,
            offloads: false,
        };
        let sent = send(&port, &io, hdr, &buf, &mut Vec::new());
        assert_eq!(sent.frames, 2);
        assert_eq!(sent.bytes, 2 * (54 + 1000));
        assert_eq!(sent.failure, Some(Failure::Dropped(Reason::QueueFull)));
    }

    #[test]
    fn an_offloading_port_takes_a_gso_frame_whole() {
        let mut buf = vec![0u8; VNET_HDR_LEN];
        gso_hdr().write(&mut buf);
        buf.extend_from_slice(&frame());
        let port = Flaky::new(1);
        let io = PortIo {
            mtu: 1500,
            offloads: true,
        };
        let sent = send(&port, &io, gso_hdr(), &buf, &mut Vec::new());
        assert_eq!((sent.frames, sent.failure), (1, None));
        assert_eq!(port.took.borrow()[0], buf, "header and all, unsegmented");
    }

    #[test]
    fn push_pop_rewrite_keep() {
        let f = frame();
        let mut out = Vec::new();
        apply_tag(TagAction::Push(10), 0x8100, gso_hdr(), &f, &mut out);
        let h = VnetHdr::parse(&out);
        assert_eq!(
            (h.csum_start, h.hdr_len),
            (38, 58),
            "offsets follow the tag"
        );
        assert_eq!(
            &out[VNET_HDR_LEN + 12..VNET_HDR_LEN + 18],
            &[0x81, 0, 0, 10, 0x08, 0]
        );
        let tagged = out[VNET_HDR_LEN..].to_vec();
        apply_tag(TagAction::Pop, 0x8100, h, &tagged, &mut out);
        assert_eq!(&out[VNET_HDR_LEN..], &f[..]);
        assert_eq!(VnetHdr::parse(&out), gso_hdr());
        let mut prio = tagged.clone();
        prio[14] = 0xa0; // PCP 5, VID 0
        prio[15] = 0;
        apply_tag(
            TagAction::Rewrite(20),
            0x8100,
            VnetHdr::default(),
            &prio,
            &mut out,
        );
        assert_eq!(&out[VNET_HDR_LEN + 14..VNET_HDR_LEN + 16], &[0xa0, 20]);
        apply_tag(TagAction::Keep, 0x8100, VnetHdr::default(), &f, &mut out);
        assert_eq!(&out[VNET_HDR_LEN..], &f[..]);
    }
}
