//! The framing of QEMU's `-netdev stream` (and `-netdev socket`): each
//! frame is preceded by its length as a 4-byte big-endian number.
//!
//! [`StreamDecoder`] reassembles frames from the bytes a stream socket
//! gives, in whatever pieces they come. It is pure — bytes in, frames out —
//! so `unix:` ports and the fuzz target `unix_framing` run the same code.

/// Largest frame a stream peer may send (a GSO frame is segmented before).
pub const MAX_FRAME: usize = 65535;
/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;
/// Room [`StreamDecoder::read_from`] offers to one read: the largest frame
/// with its prefix.
pub const READ_ROOM: usize = MAX_FRAME + PREFIX_LEN;

/// A length prefix over [`MAX_FRAME`]: the peer is broken or not speaking
/// this framing, and the stream cannot be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame length {0} is over the {MAX_FRAME}-byte limit")]
pub struct TooLong(pub usize);

/// Reassembly buffer of one stream connection.
///
/// Use: [`StreamDecoder::next_frame`] until it returns `None`, then
/// [`StreamDecoder::read_from`] once, and again. Used so, it holds at most
/// `2 * READ_ROOM` bytes.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Grown once to its working size and kept: it is not zeroed again
    /// for every read.
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
    /// Bytes of `buf` from this on are not filled.
    end: usize,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// Forgets what is buffered (a new connection).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next complete frame, `None` if more bytes are needed, or an
    /// error for a length over [`MAX_FRAME`] (returned again on every call
    /// until [`StreamDecoder::clear`]).
    pub fn next_frame(&mut self) -> Option<Result<&[u8], TooLong>> {
        let avail = &self.buf[self.start..self.end];
        let prefix: [u8; PREFIX_LEN] = avail.get(..PREFIX_LEN)?.try_into().ok()?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_FRAME {
            return Some(Err(TooLong(len)));
        }
        if avail.len() < PREFIX_LEN + len {
            return None;
        }
        let at = self.start + PREFIX_LEN;
        self.start = at + len;
        Some(Ok(&self.buf[at..at + len]))
    }

    /// Appends what `read` puts in the room it is given (up to
    /// [`READ_ROOM`] bytes; it returns how many it wrote), after moving
    /// the unconsumed bytes to the front. Returns `read`'s result.
    pub fn read_from<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end + READ_ROOM;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let r = read(&mut self.buf[self.end..want]);
        if let Ok(n) = &r {
            self.end += (*n).min(READ_ROOM);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut StreamDecoder, bytes: &[u8]) {
        d.read_from(|room| {
            room[..bytes.len()].copy_from_slice(bytes);
            Ok::<_, ()>(bytes.len())
        })
        .unwrap();
    }

    #[test]
    fn frames_split_and_joined_across_reads() {
        let mut d = StreamDecoder::new();
        // Two frames in one read, the second split across reads.
        feed(&mut d, &[0, 0, 0, 3, 9, 8, 7, 0, 0, 0, 2, 5]);
        assert_eq!(d.next_frame(), Some(Ok(&[9u8, 8, 7][..])));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.buffered(), 5);
        feed(&mut d, &[6, 0, 0]);
        assert_eq!(d.next_frame(), Some(Ok(&[5u8, 6][..])));
        assert_eq!(d.next_frame(), None);
        feed(&mut d, &[0, 0]);
        assert_eq!(d.next_frame(), Some(Ok(&[][..])), "an empty frame");
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn a_length_over_the_limit_is_an_error_until_cleared() {
        let mut d = StreamDecoder::new();
        feed(&mut d, &[0, 1, 0, 0, 1]);
        assert_eq!(d.next_frame(), Some(Err(TooLong(65536))));
        assert_eq!(d.next_frame(), Some(Err(TooLong(65536))));
        d.clear();
        assert_eq!(d.next_frame(), None);
        let r = d.read_from(|_| Err::<usize, _>("read failed"));
        assert_eq!(r, Err("read failed"));
        assert_eq!(d.buffered(), 0, "a failed read adds nothing");
    }
}
