//! Retry timing shared by the provers that call HTTP APIs from the host (hosted provers,
//! samplers): capped exponential backoff with jitter, the wait a server asks for
//! (`Retry-After`), and a deadline no retry may pass.
//!
//! Invariant: [`Backoff::next`] never returns a wait that ends after the deadline, and never
//! more than `max_attempts` attempts in all — so no retry loop built on it is unbounded.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt (before jitter).
    pub first: Duration,
    /// The largest wait between two attempts (before a server's `Retry-After`).
    pub cap: Duration,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s doubling, capped at 30 s, 5 attempts (Harmonic's client's schedule).
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

impl Backoff {
    /// The wait after `failed` (≥ 1) failed attempts: `first × 2^(failed−1) × U(1,2)`, at most
    /// `cap`; raised to `retry_after + U(0,1) s` when the server asked for a wait.
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        let exp = failed.saturating_sub(1).min(30);
        let base = self.first.saturating_mul(1u32 << exp).min(self.cap);
        let jittered = base.mul_f64(1.0 + fastrand::f64()).min(self.cap.max(base));
        match retry_after {
            Some(ra) => jittered.max(ra + Duration::from_secs_f64(fastrand::f64())),
            None => jittered,
        }
    }

    /// The wait before the next attempt after `failed` failed attempts, or `None` when no
    /// attempt is left or the wait would end after `deadline`.
    pub fn next(
        &self,
        failed: u32,
        retry_after: Option<Duration>,
        deadline: Instant,
    ) -> Option<Duration> {
        if failed >= self.max_attempts.max(1) {
            return None;
        }
        let wait = self.delay(failed, retry_after);
        (Instant::now() + wait <= deadline).then_some(wait)
    }
}

/// The wait a `Retry-After` header value asks for: delta-seconds (`"7"`, also `"1.5"`) or an
/// HTTP date (a date in the past is no wait). `None` for anything else.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its sources on one line (`a: b: c`), skipping a source whose text its parent
/// already shows — how transport errors (reqwest → hyper → io) are reported.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    crate::one_line(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_stop_at_the_cap() {
        let b = Backoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 5,
        };
        for _ in 0..50 {
            let d1 = b.delay(1, None);
            assert!(
                d1 >= Duration::from_secs(1) && d1 <= Duration::from_secs(2),
                "{d1:?}"
            );
            let d3 = b.delay(3, None);
            assert!(
                d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8),
                "{d3:?}"
            );
            assert!(b.delay(9, None) <= Duration::from_secs(10));
            let ra = b.delay(1, Some(Duration::from_secs(20)));
            assert!(
                ra >= Duration::from_secs(20) && ra <= Duration::from_secs(21),
                "{ra:?}"
            );
        }
    }

    #[tokio::test]
    async fn next_respects_attempts_and_the_deadline() {
        let b = Backoff {
            first: Duration::from_millis(10),
            cap: Duration::from_millis(10),
            max_attempts: 3,
        };
        let far = Instant::now() + Duration::from_secs(60);
        assert!(b.next(1, None, far).is_some());
        assert!(b.next(2, None, far).is_some());
        assert!(b.next(3, None, far).is_none(), "3 attempts in all");
        let near = Instant::now() + Duration::from_millis(5);
        assert!(
            b.next(1, None, near).is_none(),
            "the wait would pass the deadline"
        );
        assert!(b.next(1, Some(Duration::from_secs(120)), far).is_none());
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let d = parse_retry_after(&later).expect("a date");
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }
}
