//! Per-socket flood limits: token buckets for events and bytes, and the
//! strikes that end in a disconnect. Plain data, driven by the socket
//! layer with the clock passed in.

use std::time::{Duration, Instant};

use crate::config::FloodLimits;

/// A token bucket: `rate` tokens a second, at most `burst` held.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64, burst: u64, now: Instant) -> Option<Bucket> {
        (rate > 0).then_some(Bucket {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: now,
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    fn has(&self, cost: f64) -> bool {
        // An event larger than the whole burst still passes when the
        // bucket is full (the payload limit bounds it), so that no single
        // allowed event is refused forever.
        self.tokens >= cost.min(self.burst)
    }

    fn take(&mut self, cost: f64) {
        self.tokens -= cost.min(self.burst);
    }
}

/// What to do with an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Handle it.
    Yes,
    /// Drop it; `warn`: tell the sender (at most once a second).
    Drop {
        /// Whether to send the `Error:` line now.
        warn: bool,
        /// Which limit.
        limit: &'static str,
    },
    /// Drop it and disconnect the sender: it kept flooding.
    Disconnect {
        /// Which limit.
        limit: &'static str,
    },
}

/// One socket's flood state.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    events: Option<Bucket>,
    bytes: Option<Bucket>,
    strikes: u32,
    max_strikes: u32,
    last_warning: Option<Instant>,
}

const WARN_EVERY: Duration = Duration::from_secs(1);

impl Limiter {
    pub(crate) fn new(limits: &FloodLimits, now: Instant) -> Limiter {
        Limiter {
            events: Bucket::new(
                u64::from(limits.events_per_sec),
                u64::from(limits.event_burst),
                now,
            ),
            bytes: Bucket::new(limits.bytes_per_sec, limits.byte_burst, now),
            strikes: 0,
            max_strikes: limits.strikes,
            last_warning: None,
        }
    }

    /// Whether there is no limit to check.
    pub(crate) fn is_off(&self) -> bool {
        self.events.is_none() && self.bytes.is_none()
    }

    /// The limit an event of `size` bytes arriving `now` would go over,
    /// if any (nothing is taken).
    pub(crate) fn over(&mut self, now: Instant, size: usize) -> Option<&'static str> {
        if let Some(b) = self.events.as_mut() {
            b.refill(now);
            if !b.has(1.0) {
                return Some("events per second");
            }
        }
        if let Some(b) = self.bytes.as_mut() {
            b.refill(now);
            if !b.has(size as f64) {
                return Some("bytes per second");
            }
        }
        None
    }

    /// Takes an admitted event of `size` bytes (after [`Limiter::over`]
    /// said `None`): its tokens, and the strikes are forgiven.
    pub(crate) fn take(&mut self, size: usize) {
        if let Some(b) = self.events.as_mut() {
            b.take(1.0);
        }
        if let Some(b) = self.bytes.as_mut() {
            b.take(size as f64);
        }
        self.strikes = 0;
    }

    /// Decides about an event of `size` bytes arriving `now`.
    #[cfg(test)]
    pub(crate) fn admit(&mut self, now: Instant, size: usize) -> Admit {
        let mut over = None;
        if let Some(b) = self.events.as_mut() {
            b.refill(now);
            if !b.has(1.0) {
                over = Some("events per second");
            }
        }
        if let Some(b) = self.bytes.as_mut() {
            b.refill(now);
            if over.is_none() && !b.has(size as f64) {
                over = Some("bytes per second");
            }
        }
        match over {
            None => {
                if let Some(b) = self.events.as_mut() {
                    b.take(1.0);
                }
                if let Some(b) = self.bytes.as_mut() {
                    b.take(size as f64);
                }
                self.strikes = 0;
                Admit::Yes
            }
            Some(limit) => self.strike(now, limit),
        }
    }

    /// Counts a dropped event (over a limit, or a full queue).
    pub(crate) fn strike(&mut self, now: Instant, limit: &'static str) -> Admit {
        self.strikes += 1;
        if self.max_strikes > 0 && self.strikes >= self.max_strikes {
            return Admit::Disconnect { limit };
        }
        let warn = self
            .last_warning
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        if warn {
            self.last_warning = Some(now);
        }
        Admit::Drop { warn, limit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(events: u32, burst: u32) -> FloodLimits {
        FloodLimits {
            events_per_sec: events,
            event_burst: burst,
            bytes_per_sec: 0,
            byte_burst: 0,
            strikes: 3,
            max_queued_events: 10,
        }
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&limits(10, 5), t0);
        for _ in 0..5 {
            assert_eq!(l.admit(t0, 1), Admit::Yes);
        }
        assert_eq!(
            l.admit(t0, 1),
            Admit::Drop {
                warn: true,
                limit: "events per second"
            }
        );
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.admit(t1, 1), Admit::Yes);
        assert!(
            matches!(l.admit(t1, 1), Admit::Drop { warn: false, .. }),
            "one warning a second"
        );
    }

    #[test]
    fn strikes_in_a_row_disconnect_and_compliance_forgives() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&limits(1, 1), t0);
        assert_eq!(l.admit(t0, 1), Admit::Yes);
        assert!(matches!(l.admit(t0, 1), Admit::Drop { .. }));
        assert!(matches!(l.admit(t0, 1), Admit::Drop { .. }));
        // A good event resets the strikes.
        assert_eq!(l.admit(t0 + Duration::from_secs(1), 1), Admit::Yes);
        let t = t0 + Duration::from_secs(1);
        assert!(matches!(l.admit(t, 1), Admit::Drop { .. }));
        assert!(matches!(l.admit(t, 1), Admit::Drop { .. }));
        assert_eq!(
            l.admit(t, 1),
            Admit::Disconnect {
                limit: "events per second"
            }
        );
    }

    #[test]
    fn bytes_are_limited_too_and_big_events_still_pass_when_full() {
        let t0 = Instant::now();
        let l = FloodLimits {
            bytes_per_sec: 100,
            byte_burst: 100,
            ..limits(0, 0)
        };
        let mut l = Limiter::new(&l, t0);
        assert_eq!(
            l.admit(t0, 500),
            Admit::Yes,
            "larger than the burst, bucket full"
        );
        assert!(matches!(
            l.admit(t0, 10),
            Admit::Drop {
                limit: "bytes per second",
                ..
            }
        ));
        assert_eq!(l.admit(t0 + Duration::from_secs(1), 10), Admit::Yes);
    }

    #[test]
    fn off_is_off() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&FloodLimits::off(), t0);
        assert!(l.is_off());
        for _ in 0..10_000 {
            assert_eq!(l.admit(t0, 1_000_000), Admit::Yes);
        }
    }
}
