//! Uplink tracking (Huawei monitor-link; SONiC link-state tracking): when a
//! switch loses its uplinks, its server-facing M-LAG members go down so the
//! servers use the peer instead of sending traffic into a switch that can
//! forward it nowhere. Released only after enough uplinks have stayed up for
//! `recover_delay`, so a flapping uplink does not flap the servers.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkState {
    /// Enough uplinks are up: members may serve.
    Up,
    /// Fewer than `min_up` are oper-up: members are held (`uplinks-down`).
    Down,
    /// Enough are up again, for less than `recover_delay`: still held.
    Recovering { since: Instant },
}

impl UplinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            UplinkState::Up => "up",
            UplinkState::Down => "down",
            UplinkState::Recovering { .. } => "recovering",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UplinkTracker {
    pub min_up: u32,
    pub recover_delay: Duration,
    pub state: UplinkState,
    /// Oper-up uplinks as last counted.
    pub up: u32,
}

impl UplinkTracker {
    /// At start, no recovery wait: what is up now decides.
    pub fn new(min_up: u32, recover_delay: Duration, up: u32) -> UplinkTracker {
        UplinkTracker {
            min_up,
            recover_delay,
            state: if up >= min_up {
                UplinkState::Up
            } else {
                UplinkState::Down
            },
            up,
        }
    }

    /// Members are held while uplinks are down or recovering.
    pub fn holds_members(&self) -> bool {
        self.state != UplinkState::Up
    }

    /// A new count of oper-up uplinks (from link events). Returns the new
    /// state when it changed.
    pub fn update(&mut self, up: u32, now: Instant) -> Option<UplinkState> {
        self.up = up;
        let enough = up >= self.min_up;
        let next = match (self.state, enough) {
            // losing them takes the members down at once
            (_, false) => UplinkState::Down,
            (UplinkState::Down, true) if self.recover_delay.is_zero() => UplinkState::Up,
            (UplinkState::Down, true) => UplinkState::Recovering { since: now },
            (s, true) => s,
        };
        self.set(next)
    }

    /// Time passes: a recovery that lasted `recover_delay` releases.
    pub fn tick(&mut self, now: Instant) -> Option<UplinkState> {
        match self.state {
            UplinkState::Recovering { since } if now >= since + self.recover_delay => {
                self.set(UplinkState::Up)
            }
            _ => None,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            UplinkState::Recovering { since } => Some(since + self.recover_delay),
            _ => None,
        }
    }

    pub fn recover_remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline().map(|d| d.saturating_duration_since(now))
    }

    fn set(&mut self, next: UplinkState) -> Option<UplinkState> {
        if next == self.state {
            return None;
        }
        self.state = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_at_once_up_after_the_recovery_delay() {
        let t0 = Instant::now();
        let d = Duration::from_secs(60);
        let mut u = UplinkTracker::new(1, d, 2);
        assert_eq!(u.state, UplinkState::Up);
        assert_eq!(u.update(1, t0), None, "one of two is enough");
        assert_eq!(u.update(0, t0), Some(UplinkState::Down));
        assert!(u.holds_members());
        assert_eq!(
            u.update(1, t0 + Duration::from_secs(5)),
            Some(UplinkState::Recovering {
                since: t0 + Duration::from_secs(5)
            })
        );
        assert!(u.holds_members());
        assert_eq!(u.tick(t0 + Duration::from_secs(64)), None);
        // a flap during recovery starts it again
        assert_eq!(
            u.update(0, t0 + Duration::from_secs(30)),
            Some(UplinkState::Down)
        );
        assert!(matches!(
            u.update(2, t0 + Duration::from_secs(31)),
            Some(UplinkState::Recovering { .. })
        ));
        assert_eq!(u.tick(t0 + Duration::from_secs(91)), Some(UplinkState::Up));
        assert!(!u.holds_members());
    }

    #[test]
    fn zero_delay_and_start_states() {
        let t0 = Instant::now();
        let mut u = UplinkTracker::new(2, Duration::ZERO, 1);
        assert_eq!(u.state, UplinkState::Down, "too few at start");
        assert_eq!(u.update(2, t0), Some(UplinkState::Up));
    }
}
