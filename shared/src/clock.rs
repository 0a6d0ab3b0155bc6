//! Time, in one place: wall-clock milliseconds since the epoch (decision records, bake
//! windows, metric timestamps), deadlines on tokio's monotonic clock (so that a test can
//! pause it and let a bake of an hour pass in no time), and the one retry backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// The monotonic instant every deadline and budget is measured in: tokio's, which is the
/// system's in production and a paused, self-advancing one under `start_paused` tests.
pub use tokio::time::Instant;

/// Wall-clock time, injected where a decision depends on it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        epoch_ms()
    }
}

/// Milliseconds since the Unix epoch on the system clock (0 if it is set before 1970).
pub fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `ms` since the epoch as UTC, `2026-12-04T09:30:00Z` (to the second), the way the
/// announcements and the CLI write times. Days to a civil date by H. Hinnant's algorithm.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A wall clock that moves with tokio's: from `base_ms` when made, forward as tokio's
/// time advances. With tokio's time paused, sleeps advance it at once, so a test can run
/// a bake of many rounds in milliseconds and still see windows move as on AWS.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_ms: i64,
    start: Instant,
}

impl TokioClock {
    pub fn starting_at(base_ms: i64) -> Self {
        TokioClock {
            base_ms,
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64
    }
}

/// How long to wait before retry `attempt` (1-based): exponential from `first`, at most
/// `cap`, with jitter over the upper half so that concurrent callers (smoke tests, redrive
/// workers) do not retry in lockstep.
pub fn backoff(attempt: u32, first: Duration, cap: Duration) -> Duration {
    let ceiling = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(fastrand::u64(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverse of the ledger's timestamp reader, at the edges of the calendar.
    #[test]
    fn utc_writes_dates_as_aws_does() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_570_035_880_985), "2019-10-02T17:04:40Z");
        assert_eq!(utc(1_709_164_800_000), "2024-02-29T00:00:00Z");
        assert_eq!(utc(951_868_799_000), "2000-02-29T23:59:59Z");
        assert_eq!(utc(-1_000), "1969-12-31T23:59:59Z");
        for ms in [0, 1_709_164_800_000, 4_102_444_800_000, 1_234_567_890_123] {
            let back = crate::rollback::run::timestamp_ms(&utc(ms)).unwrap();
            assert_eq!(back, ms - ms.rem_euclid(1000), "{ms}");
        }
    }

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap_with_jitter_in_the_upper_half() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_millis(2_000);
        for _ in 0..200 {
            let one = backoff(1, first, cap);
            assert!((50..=100).contains(&(one.as_millis() as u64)), "{one:?}");
            let three = backoff(3, first, cap);
            assert!(
                (200..=400).contains(&(three.as_millis() as u64)),
                "{three:?}"
            );
            let late = backoff(40, first, cap);
            assert!(
                (1_000..=2_000).contains(&(late.as_millis() as u64)),
                "{late:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now_ms(), 91_000);
    }
}
