//! The state machines of IEEE 802.1D-2004 clause 17, one module each, and
//! the driver that runs them until nothing changes.
//!
//! Each machine has a `State` enum and a `step(bridge, port)` that takes at
//! most one transition: the global ones (BEGIN, and those drawn from "ALL"
//! in the figures) first, then the current state's exits. Entering a state
//! runs its actions. A state left by UCT is left on the next step.

pub(crate) mod detection;
pub(crate) mod information;
pub(crate) mod migration;
pub(crate) mod receive;
pub(crate) mod role_transitions;
pub(crate) mod selection;
pub(crate) mod state_transitions;
pub(crate) mod topology;
pub(crate) mod transmit;

use super::bridge::Bridge;

/// Passes over all machines before the driver gives up (a bug guard: a
/// correct set of machines settles in a few dozen).
const MAX_PASSES: usize = 1000;

/// Runs every machine until none takes a transition, then reports port
/// state changes.
pub(crate) fn run(b: &mut Bridge) {
    let mut passes = 0;
    loop {
        let mut changed = selection::step(b);
        for i in 0..b.ports.len() {
            changed |= receive::step(b, i);
            changed |= detection::step(b, i);
            changed |= information::step(b, i);
            changed |= role_transitions::step(b, i);
            changed |= state_transitions::step(b, i);
            changed |= topology::step(b, i);
            changed |= transmit::step(b, i);
            changed |= migration::step(b, i);
        }
        // BEGIN holds for exactly one pass.
        b.begin = false;
        for p in &mut b.ports {
            p.begin = false;
        }
        passes += 1;
        if !changed {
            break;
        }
        if passes >= MAX_PASSES {
            b.runaway_runs += 1;
            break;
        }
    }
    b.report_states();
}
