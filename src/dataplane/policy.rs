//! When a worker reads a TAP through its io_uring and when it polls it: a
//! pure state machine over frame counts per window (no fds, no clock; the
//! worker counts each port's frames where it reads them and hands the
//! counts to [`ReadPolicy::end_window`] every [`WINDOW_MS`]).
//!
//! A TAP attached to the ring starts *polled*: readiness from epoll, then
//! `read()` — the shortest path for a frame reaching an idle switch. A TAP
//! that received [`ENTER_FRAMES`] or more in a window moves to the ring;
//! one in the ring that received fewer than [`LEAVE_FRAMES`] goes back to
//! polling. The gap between the two keeps a TAP near one rate from moving
//! back and forth every window.

use crate::switch::{MAX_PORTS, PortId};

/// The window over which a TAP's frames are counted.
pub const WINDOW_MS: u64 = 10;
/// Frames in a window that move a polled TAP to the ring (6 400 frames/s).
pub const ENTER_FRAMES: u32 = 64;
/// Fewer frames than this in a window (1 600 frames/s) move a TAP back to
/// polling: for a lone frame, a pending read's wake-up (io_uring's poll,
/// then task work) is slower than `epoll` + `read()`.
pub const LEAVE_FRAMES: u32 = 16;

/// A change of reading mode the worker should make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Read this port through the ring from now on.
    Enter(PortId),
    /// Poll this port again.
    Leave(PortId),
}

/// See the module documentation.
pub struct ReadPolicy {
    /// Ports attached (owned TAPs with ring slots), in attach order.
    list: Vec<PortId>,
    /// Per port id: attached.
    attached: Vec<bool>,
    /// Per port id: read through the ring now.
    in_ring: Vec<bool>,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy {
            list: Vec::new(),
            attached: vec![false; MAX_PORTS],
            in_ring: vec![false; MAX_PORTS],
        }
    }
}

impl ReadPolicy {
    /// Port `id` may be read through the ring; it starts polled.
    pub fn attach(&mut self, id: PortId) {
        if !std::mem::replace(&mut self.attached[id as usize], true) {
            self.list.push(id);
        }
        self.in_ring[id as usize] = false;
    }

    /// Port `id` leaves the policy (removed, or its ring slots are gone).
    pub fn detach(&mut self, id: PortId) {
        if std::mem::take(&mut self.attached[id as usize]) {
            self.list.retain(|&p| p != id);
        }
        self.in_ring[id as usize] = false;
    }

    #[inline]
    pub fn is_attached(&self, id: PortId) -> bool {
        self.attached[id as usize]
    }

    /// Whether port `id` is read through the ring now (the worker keeps
    /// a copy in each port's slot, which its frame path reads).
    #[cfg(test)]
    pub fn in_ring(&self, id: PortId) -> bool {
        self.in_ring[id as usize]
    }

    /// Ends a window: `frames(id)` gives (and starts afresh) each attached
    /// port's count of frames read in it; appends to `out` the moves the
    /// counts call for. The worker makes each move and reports it with
    /// [`ReadPolicy::moved`] (a move it could not make is simply not
    /// reported: the port stays where it was).
    pub fn end_window(&mut self, mut frames: impl FnMut(PortId) -> u32, out: &mut Vec<Move>) {
        for &id in &self.list {
            let i = id as usize;
            let frames = frames(id);
            if self.in_ring[i] {
                if frames < LEAVE_FRAMES {
                    out.push(Move::Leave(id));
                }
            } else if frames >= ENTER_FRAMES {
                out.push(Move::Enter(id));
            }
        }
    }

    /// Port `id` is now read through the ring (`true`) or polled.
    pub fn moved(&mut self, id: PortId, in_ring: bool) {
        if self.is_attached(id) {
            self.in_ring[id as usize] = in_ring;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(p: &mut ReadPolicy, frames: &[(PortId, u32)]) -> Vec<Move> {
        let count = |id| {
            frames
                .iter()
                .filter(|(p, _)| *p == id)
                .map(|(_, n)| n)
                .sum()
        };
        let mut out = Vec::new();
        p.end_window(count, &mut out);
        for m in &out {
            match *m {
                Move::Enter(id) => p.moved(id, true),
                Move::Leave(id) => p.moved(id, false),
            }
        }
        out
    }

    #[test]
    fn a_busy_tap_enters_the_ring_and_a_quiet_one_leaves_it() {
        let mut p = ReadPolicy::default();
        p.attach(3);
        assert!(!p.in_ring(3), "starts polled");
        assert_eq!(window(&mut p, &[(3, ENTER_FRAMES - 1)]), vec![]);
        assert_eq!(window(&mut p, &[(3, ENTER_FRAMES)]), vec![Move::Enter(3)]);
        assert!(p.in_ring(3));
        // Between the two thresholds: stays in the ring.
        assert_eq!(window(&mut p, &[(3, LEAVE_FRAMES)]), vec![]);
        assert!(p.in_ring(3));
        assert_eq!(
            window(&mut p, &[(3, LEAVE_FRAMES - 1)]),
            vec![Move::Leave(3)]
        );
        assert!(!p.in_ring(3));
        // Between the thresholds while polled: stays polled.
        assert_eq!(window(&mut p, &[(3, ENTER_FRAMES - 1)]), vec![]);
    }

    #[test]
    fn each_window_is_judged_on_its_own_count() {
        let mut p = ReadPolicy::default();
        p.attach(1);
        assert_eq!(window(&mut p, &[(1, ENTER_FRAMES / 2)]), vec![]);
        assert_eq!(
            window(&mut p, &[(1, ENTER_FRAMES / 2)]),
            vec![],
            "two half windows are not one full one"
        );
    }

    #[test]
    fn only_attached_ports_move() {
        let mut p = ReadPolicy::default();
        p.attach(1);
        assert_eq!(
            window(&mut p, &[(1, ENTER_FRAMES), (2, 1000)]),
            vec![Move::Enter(1)],
            "port 2 (not a TAP on the ring) is only counted"
        );
        p.moved(2, true);
        assert!(!p.in_ring(2), "a move of an unattached port is ignored");
    }

    #[test]
    fn detaching_forgets_the_port() {
        let mut p = ReadPolicy::default();
        p.attach(5);
        window(&mut p, &[(5, ENTER_FRAMES)]);
        assert!(p.in_ring(5));
        p.detach(5);
        assert!(!p.in_ring(5) && !p.is_attached(5));
        assert_eq!(
            window(&mut p, &[(5, 0)]),
            vec![],
            "no Leave for a gone port"
        );
        // Re-attached (a device that came back): polled.
        p.attach(5);
        assert!(!p.in_ring(5));
        assert_eq!(window(&mut p, &[(5, ENTER_FRAMES - 1)]), vec![]);
    }

    #[test]
    fn a_move_not_made_is_tried_again_next_window() {
        let mut p = ReadPolicy::default();
        p.attach(7);
        let mut out = Vec::new();
        p.end_window(|_| ENTER_FRAMES, &mut out);
        assert_eq!(out, vec![Move::Enter(7)]);
        // The worker could not enter (not reported): still polled.
        assert!(!p.in_ring(7));
        assert_eq!(window(&mut p, &[(7, ENTER_FRAMES)]), vec![Move::Enter(7)]);
        assert!(p.in_ring(7));
    }
}
