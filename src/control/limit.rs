//! A bound on the connections a server holds, shared by the control
//! socket and the metrics endpoint: at most `cap` connections live; a new
//! one past the cap (or an `accept` that fails for lack of file
//! descriptors) sheds the oldest connection that is idle, that is not
//! in the middle of answering a request. A newcomer is never refused, so
//! idle or slow clients (slowloris) can neither blind monitoring nor lock
//! out `vswitchctl`; memory and descriptors stay bounded by `cap`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::task::AbortHandle;

/// The live connections of one server, oldest first.
#[derive(Debug)]
pub(crate) struct Conns {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    live: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    abort: AbortHandle,
    state: Arc<State>,
}

/// What the table and the connection's task share.
#[derive(Debug, Default)]
struct State {
    /// Answering a request: shed only when no connection is idle.
    busy: AtomicBool,
    /// The slot is dropped (the task ended or was aborted).
    done: AtomicBool,
}

/// One connection's place in [`Conns`]: tells whether it is answering
/// (not to be shed), and leaves the table when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    state: Arc<State>,
    conns: Arc<Conns>,
}

impl Slot {
    /// Marks the connection as answering a request (`true`) or waiting
    /// for one (`false`); only waiting connections are shed first.
    pub(crate) fn busy(&self, b: bool) {
        self.state.busy.store(b, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.done.store(true, Ordering::Release);
        self.conns.inner.lock().live.remove(&self.id);
    }
}

impl Conns {
    /// A table holding at most `cap` (at least 1) connections.
    pub(crate) fn new(cap: usize) -> Arc<Conns> {
        Arc::new(Conns {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// How many connections are live.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// Sheds the oldest idle connection (the oldest one if all are busy);
    /// false when there is none.
    pub(crate) fn shed_oldest(&self) -> bool {
        let victim = {
            let mut g = self.inner.lock();
            let id = g
                .live
                .iter()
                .find(|(_, e)| !e.state.busy.load(Ordering::Relaxed))
                .or_else(|| g.live.iter().next())
                .map(|(id, _)| *id);
            id.and_then(|id| g.live.remove(&id))
        };
        match victim {
            Some(e) => {
                // Aborting the task drops its socket (and its Slot, whose
                // removal then finds nothing), outside the lock.
                e.abort.abort();
                true
            }
            None => false,
        }
    }

    /// Runs `conn` as a task holding a slot, first shedding the oldest
    /// idle connections until it fits under the cap.
    pub(crate) fn spawn<F, Fut>(self: &Arc<Self>, conn: F)
    where
        F: FnOnce(Slot) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        while self.len() >= self.cap && self.shed_oldest() {}
        let state = Arc::new(State::default());
        let id = {
            let mut g = self.inner.lock();
            g.next += 1;
            g.next
        };
        let slot = Slot {
            id,
            state: state.clone(),
            conns: self.clone(),
        };
        // Neither `conn` (which may drop the slot at once) nor spawn
        // runs under the lock: Slot::drop takes it.
        let task = tokio::spawn(conn(slot));
        let mut g = self.inner.lock();
        g.live.insert(
            id,
            Entry {
                abort: task.abort_handle(),
                state: state.clone(),
            },
        );
        // The task may have ended before it was in the table (its Slot
        // then removed nothing): take it out again. Slot::drop sets
        // `done` before it locks, so one of the two removes it.
        if state.done.load(Ordering::Acquire) {
            g.live.remove(&id);
        }
    }
}

/// How many connections one server (metrics, or the control socket) may
/// hold: `max`, or a quarter of the soft `RLIMIT_NOFILE` when that is
/// smaller (at least 16), so that the two servers together never take
/// the descriptors the ports need.
pub(crate) fn conn_cap(max: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft / 4)
        .unwrap_or(max)
        .clamp(16, max.max(16))
}

/// Whether an `accept` error means the process is out of file
/// descriptors (shedding a connection frees one).
pub(crate) fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn past_the_cap_the_oldest_idle_connection_is_shed() {
        let conns = Conns::new(2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        for i in 0..2u32 {
            let tx = tx.clone();
            conns.spawn(move |slot| async move {
                // Connection 0 is answering: it must survive.
                slot.busy(i == 0);
                let _slot = slot;
                tokio::time::sleep(Duration::from_secs(30)).await;
                let _ = tx.send(i);
            });
        }
        tokio::task::yield_now().await;
        assert_eq!(conns.len(), 2);
        let tx2 = tx.clone();
        // This closure drops its slot at once (before the task runs):
        // spawn must not hold the table's lock then.
        conns.spawn(move |_slot| async move {
            let _ = tx2.send(2);
        });
        // The newcomer ran; connection 1 (idle) was shed, 0 (busy) kept.
        assert_eq!(rx.recv().await, Some(2));
        tokio::task::yield_now().await;
        assert_eq!(conns.len(), 1);
        assert!(
            conns.inner.lock().live.contains_key(&1),
            "the busy connection was shed"
        );
    }
}
