//! The one bounded wait of the kit: poll until something holds.

use std::time::{Duration, Instant};

/// Longest a test waits for an "eventually" condition on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What a polled closure returns: `true`/`false`, or `Some(value)`/`None`.
pub trait Ready {
    type Value;
    fn ready(self) -> Option<Self::Value>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Calls `f` every 50 ms until it returns `true` (or `Some(v)`), at most
/// `limit`; returns `Some(())` (or `Some(v)`), or `None` when time ran out.
/// `f` is called at least once, and once more after the limit passed.
pub fn wait_for<R: Ready>(limit: Duration, mut f: impl FnMut() -> R) -> Option<R::Value> {
    let t = Instant::now();
    loop {
        let expired = t.elapsed() >= limit;
        if let Some(v) = f().ready() {
            return Some(v);
        }
        if expired {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
