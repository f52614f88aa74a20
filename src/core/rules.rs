//! The seed's timing rules, each stated once. Config validation and the state
//! machines both call these; nothing else restates them.

use std::time::Duration;

/// Seed: "the delay after which the Layer 3 protocol status changes to up is 1s
/// for a VLANIF interface and 0s for a VBDIF interface".
pub const VLANIF_DEFAULT_UP_DELAY: Duration = Duration::from_secs(1);
pub const VBDIF_DEFAULT_UP_DELAY: Duration = Duration::from_secs(0);
/// Seed: `protocol up-delay-time` range.
pub const MAX_UP_DELAY: Duration = Duration::from_secs(7200);
/// Seed: "an M-LAG member interface reports the up state after a delay of 240s by default".
pub const DEFAULT_MEMBER_UP_DELAY: Duration = Duration::from_secs(240);
/// Seed: "you are advised to set the delay in reporting the up state to 30s or
/// longer on M-LAG member interfaces".
pub const ADVISED_MIN_MEMBER_UP_DELAY: Duration = Duration::from_secs(30);

/// Seed: "ensure that the delay after which an M-LAG member interface reports the
/// up state is longer than the delay configured on the VLANIF or VBDIF interface.
/// Otherwise, the device is triggered to learn ND entries that fail to be
/// synchronized only when ND Miss messages are generated."
///
/// `longest_l3_delay` is the longest gateway up-delay (in dynamic mode, the
/// dynamic `max`). Returns true when the rule holds.
pub fn member_up_delay_exceeds_l3_up_delay(
    member_up_delay: Duration,
    longest_l3_delay: Duration,
) -> bool {
    member_up_delay > longest_l3_delay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_delay_must_be_strictly_longer() {
        let s = Duration::from_secs;
        assert!(member_up_delay_exceeds_l3_up_delay(s(240), s(1)));
        assert!(!member_up_delay_exceeds_l3_up_delay(s(10), s(10)));
        assert!(!member_up_delay_exceeds_l3_up_delay(s(5), s(10)));
    }
}
