//! The rate controller: a pacing clock whose rate halves on throttling and grows back
//! by a fixed step after each accepted batch (AIMD). Pure: callers pass the time.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Aimd {
    rate: f64,
    ceiling: f64,
    floor: f64,
    step: f64,
    /// Seconds (on the caller's clock) when the next send may start.
    next_free: f64,
}

impl Aimd {
    /// Start at `ceiling` messages per second.
    pub fn new(ceiling: f64) -> Self {
        let ceiling = ceiling.max(0.1);
        Self {
            rate: ceiling,
            ceiling,
            floor: (ceiling / 100.0).clamp(0.1, 1.0),
            step: (ceiling / 20.0).max(0.5),
            next_free: 0.0,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Reserve `n` messages at time `now` (seconds); returns how long to wait first.
    pub fn reserve(&mut self, n: usize, now: f64) -> Duration {
        let start = self.next_free.max(now);
        self.next_free = start + n as f64 / self.rate;
        Duration::from_secs_f64(start - now)
    }

    /// The destination throttled: halve the rate.
    pub fn throttled(&mut self) {
        self.rate = (self.rate / 2.0).max(self.floor);
    }

    /// A batch went through: grow the rate by one step, up to the ceiling.
    pub fn accepted(&mut self) {
        self.rate = (self.rate + self.step).min(self.ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_rate() {
        let mut a = Aimd::new(10.0);
        assert_eq!(a.reserve(10, 0.0), Duration::ZERO);
        // The first 10 messages occupy one second.
        assert_eq!(a.reserve(10, 0.5), Duration::from_millis(500));
        assert_eq!(a.reserve(1, 5.0), Duration::ZERO);
    }

    #[test]
    fn backs_off_multiplicatively_and_recovers_additively() {
        let mut a = Aimd::new(100.0);
        a.throttled();
        a.throttled();
        assert_eq!(a.rate(), 25.0);
        a.accepted();
        assert_eq!(a.rate(), 30.0);
        for _ in 0..100 {
            a.accepted();
        }
        assert_eq!(a.rate(), 100.0);
        for _ in 0..100 {
            a.throttled();
        }
        assert_eq!(a.rate(), 1.0);
    }
}
