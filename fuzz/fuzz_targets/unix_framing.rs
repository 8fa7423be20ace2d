//! The length-prefixed framing of `unix:` ports (QEMU `-netdev stream`):
//! `wire::stream::StreamDecoder`, fed the input as a byte stream cut into
//! reads of sizes the input also chooses, as a socket might deliver it.
//!
//! Checked against a decoder written apart: the same frames in the same
//! order, an error exactly where a length over 65535 comes, never a frame
//! before its bytes have all arrived, and at most 2 x (65535 + 4) bytes
//! buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::wire::stream::{MAX_FRAME, READ_ROOM, StreamDecoder, TooLong};

/// The frames of `stream` in order, then the error (if a length is over
/// the limit) or the leftover bytes.
fn reference(stream: &[u8]) -> (Vec<&[u8]>, Option<TooLong>) {
    let mut frames = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 4 {
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        if len > MAX_FRAME {
            return (frames, Some(TooLong(len)));
        }
        if stream.len() - at - 4 < len {
            break;
        }
        frames.push(&stream[at + 4..at + 4 + len]);
        at += 4 + len;
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the read sizes; the rest is the stream.
    let (cuts, stream) = data.split_at(data.len().min(8));
    let (want, want_err) = reference(stream);
    let mut d = StreamDecoder::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut err = None;
    let mut fed = 0;
    let mut i = 0;
    'outer: loop {
        loop {
            match d.next_frame() {
                Some(Ok(f)) => got.push(f.to_vec()),
                Some(Err(e)) => {
                    err = Some(e);
                    break 'outer;
                }
                None => break,
            }
        }
        assert!(d.buffered() < READ_ROOM, "a whole frame left in the buffer");
        if fed == stream.len() {
            break;
        }
        // A read of 1 to 256 bytes, or as much as there is room for.
        let cut = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(0);
        i += 1;
        let n = if cut == 0 { READ_ROOM } else { cut as usize };
        let n = n.min(stream.len() - fed);
        let r = d.read_from(|room| {
            assert_eq!(room.len(), READ_ROOM);
            room[..n].copy_from_slice(&stream[fed..fed + n]);
            Ok::<usize, ()>(n)
        });
        assert_eq!(r, Ok(n));
        fed += n;
        assert!(
            d.buffered() <= 2 * READ_ROOM,
            "buffer grew to {}",
            d.buffered()
        );
    }
    assert_eq!(err, want_err, "error");
    assert_eq!(got.len(), want.len(), "frame count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    if err.is_some() {
        d.clear();
        assert_eq!(d.buffered(), 0);
        assert!(d.next_frame().is_none());
    }
});
