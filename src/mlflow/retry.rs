//! Retries as plain data: which failures are transient, which requests may be repeated, and how
//! long to wait (exponential backoff with decorrelated jitter, capped, honouring `Retry-After`).

use std::time::Duration;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// How a request may be repeated after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Repeating it has the same effect as sending it once (reads, updates that set a value,
    /// deletes, artifact uploads of the same bytes).
    Safe,
    /// Repeating it after the server may have acted could duplicate something (creates, metric
    /// inserts). Such a request is repeated only when it certainly did not reach the server
    /// (no connection could be opened) or was refused before it was acted on (429 Too Many
    /// Requests, 503 Service Unavailable: what proxies and load balancers answer when they do not
    /// forward a request); otherwise the
    /// caller gets [`crate::Error::Ambiguous`] or the error and reconciles by lookup.
    Unsafe,
}

/// True for the HTTP statuses that say "try again later": 408, 429, 500, 502, 503, 504.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Retry settings. Defaults: 6 retries, first wait 200 ms, waits capped at 15 s, `Retry-After`
/// honoured up to 60 s.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// How many times a failed request is sent again (0 disables retries).
    pub max_retries: u32,
    /// The first wait.
    pub initial_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
    /// The longest `Retry-After` that is honoured; a longer one fails the request.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The state of one request's retries: decorrelated jitter (each wait is drawn between the first
/// wait and three times the previous one, capped).
#[derive(Debug)]
pub(crate) struct Backoff {
    config: RetryConfig,
    previous: Duration,
    attempts: u32,
}

impl Backoff {
    /// Starts counting for one request.
    pub fn new(config: &RetryConfig) -> Self {
        Backoff {
            config: config.clone(),
            previous: config.initial_backoff,
            attempts: 0,
        }
    }

    /// How many retries were used so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before the next try, or `None` when the retries are used up. A server's
    /// `Retry-After` replaces the computed wait (never below it, never above the configured cap).
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempts >= self.config.max_retries {
            return None;
        }
        self.attempts += 1;
        let low = self.config.initial_backoff.as_secs_f64();
        let high = (self.previous.as_secs_f64() * 3.0).max(low);
        let drawn = if high > low {
            low + (high - low) * unit_random()
        } else {
            low
        };
        let computed = Duration::from_secs_f64(drawn).min(self.config.max_backoff);
        self.previous = computed;
        match retry_after {
            Some(ra) if ra > self.config.max_retry_after => None,
            Some(ra) => Some(ra.max(computed.min(ra + Duration::from_millis(250)))),
            None => Some(computed),
        }
    }
}

/// A number in [0, 1) from the standard library's randomly seeded hasher (jitter needs no better).
fn unit_random() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` header value given in seconds. (HTTP dates are not used by MLflow or the
/// proxies in front of it; they are ignored and the computed backoff applies.)
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_stays_in_bounds_and_stops() {
        let cfg = RetryConfig {
            max_retries: 20,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        };
        let mut b = Backoff::new(&cfg);
        for _ in 0..20 {
            let d = b.next_delay(None).unwrap();
            assert!(d >= cfg.initial_backoff && d <= cfg.max_backoff, "{d:?}");
        }
        assert_eq!(b.next_delay(None), None);
        assert_eq!(b.attempts(), 20);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let cfg = RetryConfig::default();
        let mut b = Backoff::new(&cfg);
        let d = b.next_delay(Some(Duration::from_secs(3))).unwrap();
        assert!(
            d >= Duration::from_secs(3) && d <= Duration::from_millis(3250),
            "{d:?}"
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(3600))), None);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
