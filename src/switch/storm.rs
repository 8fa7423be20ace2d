//! Storm control: per-port rate limits, in frames per second, on the
//! broadcast, multicast and unknown-unicast frames a port sends into the
//! switch. A loop with spanning tree off, or a guest that floods, then
//! costs the segment a bounded rate instead of every link's capacity.
//!
//! Pure: the caller passes the time in milliseconds. Each port's meter
//! belongs to the one worker that reads the port, so it needs no atomics.
//! The Linux bridge has no storm control; hardware switches meter the same
//! three classes (`storm-control broadcast level pps`).

#![forbid(unsafe_code)]

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// The classes of frames storm control meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StormClass {
    Broadcast,
    /// Multicast other than broadcast.
    Multicast,
    /// Unicast to a MAC the switch has not learned (flooded).
    UnknownUnicast,
}

impl StormClass {
    pub const ALL: [StormClass; 3] = [
        StormClass::Broadcast,
        StormClass::Multicast,
        StormClass::UnknownUnicast,
    ];

    /// The class of a frame to `dst`, flooded or not; `None` for known
    /// unicast, which storm control never meters.
    #[inline]
    pub fn of(dst: &[u8; 6], flooded: bool) -> Option<StormClass> {
        if dst[0] & 1 != 0 {
            if dst == &[0xff; 6] {
                Some(StormClass::Broadcast)
            } else {
                Some(StormClass::Multicast)
            }
        } else if flooded {
            Some(StormClass::UnknownUnicast)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StormClass::Broadcast => "broadcast",
            StormClass::Multicast => "multicast",
            StormClass::UnknownUnicast => "unknown-unicast",
        }
    }
}

/// A port's limits, frames per second per class; `None`: not limited.
/// In a config file: `storm-control = { broadcast = 1000, multicast =
/// 1000, unknown-unicast = 1000 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StormControl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<NonZeroU32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicast: Option<NonZeroU32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_unicast: Option<NonZeroU32>,
}

impl StormControl {
    /// No limits.
    pub const OFF: StormControl = StormControl {
        broadcast: None,
        multicast: None,
        unknown_unicast: None,
    };

    pub fn is_off(&self) -> bool {
        *self == StormControl::OFF
    }

    pub fn rate(&self, class: StormClass) -> Option<NonZeroU32> {
        match class {
            StormClass::Broadcast => self.broadcast,
            StormClass::Multicast => self.multicast,
            StormClass::UnknownUnicast => self.unknown_unicast,
        }
    }

    /// Parses `off`, or `CLASS=RATE[,CLASS=RATE...]` (classes
    /// `broadcast`, `multicast`, `unknown-unicast`; a rate of 0 leaves
    /// the class unlimited), as `vswitchctl port set --storm-control`
    /// takes it.
    pub fn parse(s: &str) -> Result<StormControl, String> {
        let mut sc = StormControl::OFF;
        if s == "off" {
            return Ok(sc);
        }
        for item in s.split(',') {
            let Some((class, rate)) = item.split_once('=') else {
                return Err(format!(
                    "`{item}`: use CLASS=FRAMES_PER_SECOND, e.g. broadcast=1000, or off"
                ));
            };
            let rate: u32 = rate
                .trim()
                .parse()
                .map_err(|_| format!("`{rate}`: a number of frames per second (0: no limit)"))?;
            let slot = match class.trim() {
                "broadcast" => &mut sc.broadcast,
                "multicast" => &mut sc.multicast,
                "unknown-unicast" => &mut sc.unknown_unicast,
                other => {
                    return Err(format!(
                        "`{other}`: the classes are broadcast, multicast and unknown-unicast"
                    ));
                }
            };
            *slot = NonZeroU32::new(rate);
        }
        Ok(sc)
    }
}

impl fmt::Display for StormControl {
    /// `broadcast=1000,unknown-unicast=50`, or `off`: what
    /// [`StormControl::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            return f.write_str("off");
        }
        let mut sep = "";
        for c in StormClass::ALL {
            if let Some(r) = self.rate(c) {
                write!(f, "{sep}{}={r}", c.as_str())?;
                sep = ",";
            }
        }
        Ok(())
    }
}

/// One token bucket: tokens are thousandths of a frame, so a rate in
/// frames per second refills `rate` tokens per millisecond.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    milli_frames: u64,
    last_ms: u64,
    /// The rate the bucket was filled for (a new rate starts full).
    rate: u32,
}

/// A burst of a tenth of a second's frames passes at once (at least one
/// frame), so a host's few back-to-back ARPs are never cut.
const BURST_MS: u64 = 100;

/// The meters of one port (one bucket per class).
#[derive(Debug, Clone, Default)]
pub struct StormMeter {
    buckets: [Bucket; 3],
}

impl StormMeter {
    /// Whether one more frame of `class` may pass at `now_ms` under
    /// `limits`; takes a token if so.
    #[inline]
    pub fn admit(&mut self, limits: &StormControl, class: StormClass, now_ms: u64) -> bool {
        let Some(rate) = limits.rate(class) else {
            return true;
        };
        let rate = rate.get();
        let cap = (u64::from(rate) * BURST_MS).max(1000);
        let b = &mut self.buckets[class as usize];
        if b.rate != rate {
            *b = Bucket {
                milli_frames: cap,
                last_ms: now_ms,
                rate,
            };
        }
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.last_ms = b.last_ms.max(now_ms);
        b.milli_frames = (b.milli_frames + elapsed.saturating_mul(u64::from(rate))).min(cap);
        if b.milli_frames >= 1000 {
            b.milli_frames -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bcast: u32) -> StormControl {
        StormControl {
            broadcast: NonZeroU32::new(bcast),
            ..StormControl::OFF
        }
    }

    /// Frames admitted when `offered` frames per ms arrive for `ms`.
    fn run(l: &StormControl, class: StormClass, offered: u64, ms: u64) -> u64 {
        let mut m = StormMeter::default();
        let mut passed = 0;
        for t in 0..ms {
            for _ in 0..offered {
                passed += u64::from(m.admit(l, class, t));
            }
        }
        passed
    }

    #[test]
    fn a_flood_is_held_to_the_rate_plus_one_burst() {
        // 100 000 frames/s offered for 10 s against 1000/s.
        let passed = run(&limits(1000), StormClass::Broadcast, 100, 10_000);
        assert_eq!(passed, 10 * 1000 + 100 - 1, "rate x time + a 100 ms burst");
    }

    #[test]
    fn traffic_under_the_rate_all_passes() {
        let mut m = StormMeter::default();
        let l = limits(1000);
        // 500 frames/s: one every 2 ms.
        assert!(
            (0..10_000)
                .step_by(2)
                .all(|t| m.admit(&l, StormClass::Broadcast, t))
        );
    }

    #[test]
    fn classes_are_metered_apart_and_unlimited_ones_pass() {
        let l = limits(10);
        let mut m = StormMeter::default();
        let bc = (0..100)
            .filter(|_| m.admit(&l, StormClass::Broadcast, 0))
            .count();
        assert_eq!(bc, 1, "a burst of at least one frame");
        assert!((0..100).all(|_| m.admit(&l, StormClass::Multicast, 0)));
        assert!((0..100).all(|_| m.admit(&l, StormClass::UnknownUnicast, 0)));
    }

    #[test]
    fn a_clock_going_back_never_mints_tokens() {
        let l = limits(1000);
        let mut m = StormMeter::default();
        while m.admit(&l, StormClass::Broadcast, 5000) {}
        assert!(!m.admit(&l, StormClass::Broadcast, 4000));
        assert!(!m.admit(&l, StormClass::Broadcast, 5000));
        assert!(m.admit(&l, StormClass::Broadcast, 5001));
    }

    #[test]
    fn class_of_a_frame() {
        assert_eq!(
            StormClass::of(&[0xff; 6], true),
            Some(StormClass::Broadcast)
        );
        let m = [0x01, 0, 0x5e, 0, 0, 1];
        assert_eq!(StormClass::of(&m, false), Some(StormClass::Multicast));
        let u = [2, 0, 0, 0, 0, 1];
        assert_eq!(StormClass::of(&u, true), Some(StormClass::UnknownUnicast));
        assert_eq!(StormClass::of(&u, false), None);
    }

    #[test]
    fn parse_and_display_round_trip() {
        let sc = StormControl::parse("broadcast=1000,unknown-unicast=50").unwrap();
        assert_eq!(sc.broadcast.map(NonZeroU32::get), Some(1000));
        assert_eq!(sc.multicast, None);
        assert_eq!(sc.to_string(), "broadcast=1000,unknown-unicast=50");
        assert_eq!(StormControl::parse(&sc.to_string()).unwrap(), sc);
        assert_eq!(StormControl::parse("off").unwrap(), StormControl::OFF);
        assert_eq!(
            StormControl::parse("broadcast=0").unwrap(),
            StormControl::OFF
        );
        assert!(
            StormControl::parse("bcast=1")
                .unwrap_err()
                .contains("classes")
        );
        assert!(
            StormControl::parse("broadcast=x")
                .unwrap_err()
                .contains("frames per second")
        );
        assert!(
            StormControl::parse("broadcast")
                .unwrap_err()
                .contains("CLASS=")
        );
    }

    #[test]
    fn toml_form() {
        #[derive(Deserialize)]
        struct P {
            #[serde(rename = "storm-control")]
            sc: StormControl,
        }
        let p: P = toml::from_str(
            "storm-control = { broadcast = 1000, multicast = 2000, unknown-unicast = 3 }",
        )
        .unwrap();
        assert_eq!(
            p.sc.to_string(),
            "broadcast=1000,multicast=2000,unknown-unicast=3"
        );
        assert!(toml::from_str::<P>("storm-control = { bcast = 1 }").is_err());
        assert!(toml::from_str::<P>("storm-control = { broadcast = 0 }").is_err());
    }
}
