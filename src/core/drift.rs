//! Drift correction without fighting: dagw restores what someone undoes, but if
//! something keeps undoing it, dagw backs off exponentially and alerts once,
//! instead of racing another tool in a tight loop.

use std::time::{Duration, Instant};

/// More than this many corrections inside `WINDOW` is a fight.
const FIGHT_THRESHOLD: u32 = 20;
const WINDOW: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct DriftGuard {
    pub corrections: u64,
    /// Boxed: every one of up to 4094 gateways has a guard, few ever drift.
    recent: Option<Box<Recent>>,
}

/// The corrections of the current window and the back-off they earned.
#[derive(Debug, Clone, Default)]
struct Recent {
    window_start: Option<Instant>,
    in_window: u32,
    backoff: Duration,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Correct now.
    Correct,
    /// Correct now; this correction starts a back-off (alert once).
    CorrectAndBackOff(Duration),
    /// In back-off: try again at this time.
    Wait(Instant),
}

impl DriftGuard {
    /// Ask before correcting drift at `now`.
    pub fn admit(&mut self, now: Instant) -> Verdict {
        let r = self.recent.get_or_insert_default();
        if let Some(t) = r.blocked_until
            && now < t
        {
            return Verdict::Wait(t);
        }
        match r.window_start {
            Some(s) if now.duration_since(s) < WINDOW => r.in_window += 1,
            _ => {
                r.window_start = Some(now);
                r.in_window = 1;
                if r.blocked_until
                    .is_some_and(|t| now.duration_since(t) >= WINDOW)
                {
                    r.backoff = Duration::ZERO; // calm for a whole window: forgive
                }
            }
        }
        self.corrections += 1;
        if r.in_window > FIGHT_THRESHOLD {
            r.backoff = if r.backoff.is_zero() {
                FIRST_BACKOFF
            } else {
                (r.backoff * 2).min(MAX_BACKOFF)
            };
            r.blocked_until = Some(now + r.backoff);
            r.window_start = None;
            return Verdict::CorrectAndBackOff(r.backoff);
        }
        Verdict::Correct
    }

    pub fn blocked_until(&self) -> Option<Instant> {
        self.recent.as_ref().and_then(|r| r.blocked_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fight_backs_off_exponentially() {
        let t0 = Instant::now();
        let mut g = DriftGuard::default();
        for i in 0..FIGHT_THRESHOLD {
            assert_eq!(
                g.admit(t0 + Duration::from_millis(i as u64)),
                Verdict::Correct
            );
        }
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(g.admit(t1), Verdict::CorrectAndBackOff(FIRST_BACKOFF));
        assert_eq!(
            g.admit(t1 + Duration::from_millis(5)),
            Verdict::Wait(t1 + FIRST_BACKOFF)
        );
        let t2 = t1 + FIRST_BACKOFF;
        for i in 0..FIGHT_THRESHOLD {
            assert_eq!(
                g.admit(t2 + Duration::from_millis(i as u64)),
                Verdict::Correct
            );
        }
        assert_eq!(
            g.admit(t2 + Duration::from_millis(9)),
            Verdict::CorrectAndBackOff(FIRST_BACKOFF * 2)
        );
        assert_eq!(g.corrections, 2 * (FIGHT_THRESHOLD as u64 + 1));
    }

    #[test]
    fn occasional_drift_is_always_corrected() {
        let t0 = Instant::now();
        let mut g = DriftGuard::default();
        for i in 0..100 {
            assert_eq!(g.admit(t0 + WINDOW * i), Verdict::Correct);
        }
    }
}
