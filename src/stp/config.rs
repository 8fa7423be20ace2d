//! Bridge and port parameters (IEEE 802.1D-2004 17.13, 17.14) and their
//! validation.

/// Which protocol the bridge speaks (17.13.4 Force Protocol Version).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Force Protocol Version 0: Configuration and TCN BPDUs only, the
    /// clause 17 machines with their legacy timings (17.4).
    Stp,
    /// Force Protocol Version 2: RST BPDUs, falling back per port to STP
    /// BPDUs while an STP bridge is heard on it (17.24).
    #[default]
    Rstp,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Stp => "stp",
            Mode::Rstp => "rstp",
        }
    }
}

/// Bridge-wide parameters. Times are in whole seconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BridgeConfig {
    pub mode: Mode,
    /// Bridge Priority (17.13.7): 0..=61440 in steps of 4096.
    pub priority: u16,
    /// Bridge Hello Time (17.13.6): 1..=10. 802.1D-2004 narrows this to
    /// 1..=2; the wider range of 802.1D-1998 and the Linux bridge is
    /// accepted so a vswitchd can join a tree whose timers a kernel bridge
    /// set.
    pub hello_time: u8,
    /// Bridge Max Age (17.13.8): 6..=40.
    pub max_age: u8,
    /// Bridge Forward Delay (17.13.5): 4..=30.
    pub forward_delay: u8,
    /// Transmit Hold Count (17.13.12): 1..=10, default 6.
    pub tx_hold_count: u8,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            mode: Mode::Rstp,
            priority: 32768,
            hello_time: 2,
            max_age: 20,
            forward_delay: 15,
            tx_hold_count: 6,
        }
    }
}

/// A parameter out of range or a timer rule broken; the message names the
/// rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StpConfigError {
    #[error("bridge priority {0} is not a multiple of 4096 in 0..=61440")]
    BridgePriority(u16),
    #[error("hello time {0} s is outside 1..=10 s")]
    HelloTime(u8),
    #[error("max age {0} s is outside 6..=40 s")]
    MaxAge(u8),
    #[error("forward delay {0} s is outside 4..=30 s")]
    ForwardDelay(u8),
    #[error("transmit hold count {0} is outside 1..=10")]
    TxHoldCount(u8),
    #[error(
        "max age {max_age} s exceeds 2 x (forward delay {forward_delay} s - 1) = {limit} s: \
         802.1D requires 2 x (forward-delay - 1) >= max-age"
    )]
    MaxAgeAboveForwardDelay {
        max_age: u8,
        forward_delay: u8,
        limit: u16,
    },
    #[error(
        "max age {max_age} s is below 2 x (hello time {hello_time} s + 1) = {limit} s: \
         802.1D requires max-age >= 2 x (hello-time + 1)"
    )]
    MaxAgeBelowHelloTime {
        max_age: u8,
        hello_time: u8,
        limit: u16,
    },
    #[error("port priority {0} is not a multiple of 16 in 0..=240")]
    PortPriority(u8),
    #[error("port path cost {0} is outside 1..=200000000")]
    PortCost(u32),
}

impl BridgeConfig {
    /// Checks the ranges of 17.14 (hello time widened, see
    /// [`BridgeConfig::hello_time`]) and the rules of 17.14
    /// `2 x (Forward Delay - 1) >= Max Age >= 2 x (Hello Time + 1)`.
    pub fn validate(&self) -> Result<(), StpConfigError> {
        if !self.priority.is_multiple_of(4096) {
            return Err(StpConfigError::BridgePriority(self.priority));
        }
        if !(1..=10).contains(&self.hello_time) {
            return Err(StpConfigError::HelloTime(self.hello_time));
        }
        if !(6..=40).contains(&self.max_age) {
            return Err(StpConfigError::MaxAge(self.max_age));
        }
        if !(4..=30).contains(&self.forward_delay) {
            return Err(StpConfigError::ForwardDelay(self.forward_delay));
        }
        if !(1..=10).contains(&self.tx_hold_count) {
            return Err(StpConfigError::TxHoldCount(self.tx_hold_count));
        }
        let upper = 2 * (self.forward_delay as u16 - 1);
        if self.max_age as u16 > upper {
            return Err(StpConfigError::MaxAgeAboveForwardDelay {
                max_age: self.max_age,
                forward_delay: self.forward_delay,
                limit: upper,
            });
        }
        let lower = 2 * (self.hello_time as u16 + 1);
        if (self.max_age as u16) < lower {
            return Err(StpConfigError::MaxAgeBelowHelloTime {
                max_age: self.max_age,
                hello_time: self.hello_time,
                limit: lower,
            });
        }
        Ok(())
    }
}

/// Per-port parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PortStpConfig {
    /// Port Path Cost (17.13.11); `None`: [`default_cost`] of the link speed
    /// given to [`crate::stp::Bridge::add_port`]'s caller.
    pub cost: Option<u32>,
    /// Port Priority (17.13.10): 0..=240 in steps of 16, default 128.
    pub priority: u8,
    /// AdminEdge (17.13.1): an edge port forwards at once.
    pub admin_edge: bool,
    /// AutoEdge (17.13.3): become edge when no BPDU is heard within the
    /// edge delay (3 s). Default true.
    pub auto_edge: bool,
    /// A BPDU received on this port disables it until
    /// [`crate::stp::Bridge::enable_port_after_guard`].
    pub bpdu_guard: bool,
    /// operPointToPointMAC (6.4.3): the port reaches at most one other
    /// bridge port (full duplex link, TAP, veth). Proposal/agreement is used
    /// only on point-to-point links; set false for shared segments.
    pub point_to_point: bool,
}

impl Default for PortStpConfig {
    fn default() -> Self {
        PortStpConfig {
            cost: None,
            priority: 128,
            admin_edge: false,
            auto_edge: true,
            bpdu_guard: false,
            point_to_point: true,
        }
    }
}

impl PortStpConfig {
    pub fn validate(&self) -> Result<(), StpConfigError> {
        if !self.priority.is_multiple_of(16) {
            return Err(StpConfigError::PortPriority(self.priority));
        }
        if let Some(c) = self.cost
            && !(1..=200_000_000).contains(&c)
        {
            return Err(StpConfigError::PortCost(c));
        }
        Ok(())
    }
}

/// The cost used when none is configured when the link speed is unknown:
/// that of 10 Gb/s (2000).
///
/// TAP devices report no speed or the tun driver's fixed "10 Mb/s", veth
/// reports 10 Gb/s; both are in-memory links far faster than 10 Mb/s, and a
/// 10 Mb/s cost (2 000 000) would make every path through a VM port look a
/// thousand times worse than one through a veth. Pass `None` for TAPs and
/// unix-socket ports.
pub const UNKNOWN_SPEED_COST: u32 = 2000;

/// Default Port Path Cost for a link speed (802.1D-2004 17.14, Table 17-3:
/// 20 000 000 000 / speed in kb/s, i.e. 20 000 000 / speed in Mb/s), within
/// 1..=200 000 000. `None` (or 0): [`UNKNOWN_SPEED_COST`].
pub fn default_cost(speed_mbps: Option<u32>) -> u32 {
    match speed_mbps {
        None | Some(0) => UNKNOWN_SPEED_COST,
        Some(s) => (20_000_000 / s).clamp(1, 200_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        BridgeConfig::default().validate().unwrap();
        PortStpConfig::default().validate().unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        let d = BridgeConfig::default();
        let e = |c: BridgeConfig| c.validate().unwrap_err();
        assert_eq!(
            e(BridgeConfig { priority: 100, ..d }),
            StpConfigError::BridgePriority(100)
        );
        assert_eq!(
            e(BridgeConfig { hello_time: 0, ..d }),
            StpConfigError::HelloTime(0)
        );
        assert_eq!(
            e(BridgeConfig { max_age: 41, ..d }),
            StpConfigError::MaxAge(41)
        );
        assert_eq!(
            e(BridgeConfig {
                forward_delay: 3,
                ..d
            }),
            StpConfigError::ForwardDelay(3)
        );
        assert_eq!(
            e(BridgeConfig {
                tx_hold_count: 0,
                ..d
            }),
            StpConfigError::TxHoldCount(0)
        );
        let err = e(BridgeConfig {
            forward_delay: 4,
            ..d
        });
        assert!(matches!(
            err,
            StpConfigError::MaxAgeAboveForwardDelay { limit: 6, .. }
        ));
        assert!(
            err.to_string()
                .contains("2 x (forward-delay - 1) >= max-age")
        );
        let err = e(BridgeConfig {
            hello_time: 10,
            max_age: 20,
            ..d
        });
        assert!(err.to_string().contains("max-age >= 2 x (hello-time + 1)"));
        // Short timers a test might use: hello 1, max age 6, forward delay 4.
        BridgeConfig {
            hello_time: 1,
            max_age: 6,
            forward_delay: 4,
            ..d
        }
        .validate()
        .unwrap();
        let p = PortStpConfig::default();
        assert!(PortStpConfig { priority: 8, ..p }.validate().is_err());
        assert!(PortStpConfig { cost: Some(0), ..p }.validate().is_err());
    }

    #[test]
    fn costs_follow_table_17_3() {
        assert_eq!(default_cost(Some(10)), 2_000_000);
        assert_eq!(default_cost(Some(100)), 200_000);
        assert_eq!(default_cost(Some(1000)), 20_000);
        assert_eq!(default_cost(Some(10_000)), 2000);
        assert_eq!(default_cost(Some(100_000)), 200);
        assert_eq!(default_cost(Some(100_000_000)), 1);
        assert_eq!(default_cost(None), 2000);
        assert_eq!(default_cost(Some(0)), 2000);
    }
}
