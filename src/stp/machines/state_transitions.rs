//! Port State Transition state machine (17.30): learning and forwarding
//! follow learn and forward.

use crate::stp::bridge::Bridge;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Discarding,
    Learning,
    Forwarding,
}

pub(crate) fn step(b: &mut Bridge, i: usize) -> bool {
    let p = &b.ports[i];
    let next = if p.begin {
        Some(State::Discarding)
    } else {
        match p.sm.state {
            State::Discarding => p.learn.then_some(State::Learning),
            State::Learning => {
                if !p.learn {
                    Some(State::Discarding)
                } else if p.forward {
                    Some(State::Forwarding)
                } else {
                    None
                }
            }
            State::Forwarding => (!p.forward).then_some(State::Discarding),
        }
    };
    let Some(s) = next else { return false };
    let p = &mut b.ports[i];
    p.sm.state = s;
    match s {
        // disableLearning(), disableForwarding() (17.21.3, 17.21.4).
        State::Discarding => {
            p.learning = false;
            p.forwarding = false;
        }
        // enableLearning() (17.21.6).
        State::Learning => {
            p.learning = true;
            p.dirty = true;
        }
        // enableForwarding() (17.21.5).
        State::Forwarding => p.forwarding = true,
    }
    true
}
