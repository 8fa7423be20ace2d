//! Getting one decided frame out of one port: the VLAN tag action, the MTU
//! check, and software checksum/segmentation for ports without offloads.

use std::io;
use std::os::fd::RawFd;

use super::stats::Reason;
use crate::port::{Port, sys};
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

/// What moving frames through a port needs to know of it, read once (a
/// worker keeps one per port of its port map) rather than per frame
/// through the port's vtable: a chain of cold loads on a frame's way out
/// after a sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortIo {
    pub mtu: usize,
    pub offloads: bool,
    /// The fd to `read()` and `write()` frames with, where the port's
    /// `recv`/`send` are just that ([`Port::plain_fd`]).
    pub fd: Option<RawFd>,
}

impl PortIo {
    pub fn of(port: &dyn Port) -> PortIo {
        PortIo {
            mtu: port.mtu(),
            offloads: port.offloads(),
            fd: port.plain_fd().then(|| port.fd()),
        }
    }

    /// Reads one frame from `port` (whose `PortIo` this is).
    #[inline]
    pub fn recv(&self, port: &dyn Port, buf: &mut [u8]) -> io::Result<usize> {
        match self.fd {
            Some(fd) => sys::read(fd, buf),
            None => port.recv(buf),
        }
    }

    /// Sends one [header][frame] buffer to `port` (whose `PortIo` this is).
    #[inline]
    pub fn send(&self, port: &dyn Port, buf: &[u8]) -> io::Result<()> {
        match self.fd {
            Some(fd) => sys::write(fd, buf).map(|_| ()),
            None => port.send(buf),
        }
    }
}

/// Whether a frame of `len` bytes may leave a port: a GSO frame always
/// (it is segmented to the port's MTU); otherwise, like the kernel's
/// is_skb_forwardable, up to the MTU plus the Ethernet header and one tag.
pub fn fits(io: &PortIo, hdr: &VnetHdr, len: usize) -> bool {
    hdr.is_gso() || len <= io.mtu + HEADER_LEN + TAG_LEN
}

/// Sends `buf` = [header][frame] (tag already applied) to `port`, whose
/// [`PortIo`] is `io`; `hdr` is that header, parsed once by the caller.
/// `scratch` is reused for software offload work.
pub fn send(port: &dyn Port, io: &PortIo, hdr: VnetHdr, buf: &[u8], scratch: &mut Vec<u8>) -> Sent {
    let frame = &buf[VNET_HDR_LEN..];
    if !fits(io, &hdr, frame.len()) {
        return Sent::failed(Failure::Dropped(Reason::TooBig));
    }
    if io.offloads || hdr.is_plain() {
        return match io.send(port, buf) {
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
    use crate::wire::vnet::{F_NEEDS_CSUM, GSO_TCPV4};

    fn frame() -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        f.extend_from_slice(&[0xab; 20]);
        f
    }

    fn gso_hdr() -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        }
    }

    /// A port without offloads that accepts `ok` frames, then says EAGAIN.
    struct Flaky {
        ok: std::sync::atomic::AtomicUsize,
    }

    impl Port for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn fd(&self) -> std::os::fd::RawFd {
            -1
        }
        fn recv(&self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
        fn send(&self, _: &[u8]) -> io::Result<()> {
            self.send2(&[], &[])
        }
        fn send2(&self, _: &[u8], _: &[u8]) -> io::Result<()> {
            use std::sync::atomic::Ordering::Relaxed;
            if self.ok.load(Relaxed) == 0 {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            self.ok.fetch_sub(1, Relaxed);
            Ok(())
        }
        fn offloads(&self) -> bool {
            false
        }
        fn mtu(&self) -> usize {
            1500
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
        let port = Flaky {
            ok: std::sync::atomic::AtomicUsize::new(2),
        };
        let sent = send(&port, &PortIo::of(&port), hdr, &buf, &mut Vec::new());
        assert_eq!(sent.frames, 2);
        assert_eq!(sent.bytes, 2 * (54 + 1000));
        assert_eq!(sent.failure, Some(Failure::Dropped(Reason::QueueFull)));
    }

    /// A port whose frames are a plain read()/write() of its fd: the
    /// dataplane moves them through the fd, never through the port.
    struct Plain(std::os::fd::OwnedFd);

    impl Port for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn fd(&self) -> RawFd {
            std::os::fd::AsRawFd::as_raw_fd(&self.0)
        }
        fn recv(&self, _: &mut [u8]) -> io::Result<usize> {
            unreachable!("read through the fd")
        }
        fn send(&self, _: &[u8]) -> io::Result<()> {
            unreachable!("written through the fd")
        }
        fn send2(&self, _: &[u8], _: &[u8]) -> io::Result<()> {
            unreachable!("written through the fd")
        }
        fn offloads(&self) -> bool {
            true
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn plain_fd(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_plain_fd_port_is_read_and_written_through_its_fd() {
        let (a, b) = sys::socketpair(libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK).unwrap();
        let (port, peer) = (Plain(a), Plain(b));
        let io = PortIo::of(&port);
        assert_eq!(io.fd, Some(port.fd()));
        assert!(io.offloads);
        assert_eq!(io.mtu, 1500);
        let mut buf = vec![0u8; VNET_HDR_LEN];
        gso_hdr().write(&mut buf);
        buf.extend_from_slice(&frame());
        // A GSO frame goes out whole, header and all: the port offloads.
        let sent = send(&port, &io, gso_hdr(), &buf, &mut Vec::new());
        assert_eq!((sent.frames, sent.failure), (1, None));
        let peer_io = PortIo::of(&peer);
        let mut got = vec![0u8; 256];
        let n = peer_io.recv(&peer, &mut got).unwrap();
        assert_eq!(&got[..n], &buf[..]);
        let e = peer_io.recv(&peer, &mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
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
