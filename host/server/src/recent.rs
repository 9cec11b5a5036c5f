//! The last hour of each pipeline version's traffic, kept in memory for the
//! console's overview: per minute, requests, errors and a latency histogram
//! on log-spaced buckets (a quarter-octave apart, so a percentile read from
//! it is within ~9 % of the true value). Sixty minutes per version, a few
//! kilobytes each; nothing is stored, a restart starts afresh (Prometheus
//! keeps the long history).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes kept per version.
pub const MINUTES: usize = 60;
/// Latency buckets: bucket `k` holds latencies below `FIRST · 2^((k+1)/4)` s.
const BUCKETS: usize = 96;
const FIRST: f64 = 10e-6;

#[derive(Clone)]
struct Minute {
    /// Minutes since the epoch this slot holds (slots are reused round the ring).
    at: u64,
    requests: u64,
    errors: u64,
    latency: [u32; BUCKETS],
}

impl Minute {
    fn empty(at: u64) -> Minute {
        Minute {
            at,
            requests: 0,
            errors: 0,
            latency: [0; BUCKETS],
        }
    }
}

/// What the last hour of one version looked like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastHour {
    pub requests: u64,
    pub errors: u64,
    /// Requests per second over the hour (or since the daemon started, if
    /// that was later).
    pub rate: f64,
    /// Seconds; `None` without requests.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// Requests per minute, oldest first (the overview's sparkline).
    pub per_minute: Vec<u64>,
}

impl LastHour {
    /// Errors over requests (0 without requests).
    pub fn error_share(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Every version's ring, by `(pipeline, version)`.
pub struct Recent {
    started: u64,
    rings: Mutex<HashMap<(String, String), Vec<Minute>>>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new()
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn bucket(seconds: f64) -> usize {
    if seconds.is_nan() || seconds <= FIRST {
        return 0;
    }
    let k = ((seconds / FIRST).log2() * 4.0).floor() as usize;
    k.min(BUCKETS - 1)
}

/// The upper edge of bucket `k` (what a percentile in it reads as).
fn upper(k: usize) -> f64 {
    FIRST * 2f64.powf((k + 1) as f64 / 4.0)
}

impl Recent {
    pub fn new() -> Recent {
        Recent {
            started: now_s(),
            rings: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one answered request of `pipeline@version`.
    pub fn record(&self, pipeline: &str, version: &str, ok: bool, seconds: f64) {
        self.record_at(pipeline, version, ok, seconds, now_s());
    }

    fn record_at(&self, pipeline: &str, version: &str, ok: bool, seconds: f64, now: u64) {
        let minute = now / 60;
        let Ok(mut rings) = self.rings.lock() else {
            return;
        };
        let ring = rings
            .entry((pipeline.to_string(), version.to_string()))
            .or_insert_with(|| vec![Minute::empty(u64::MAX); MINUTES]);
        let slot = &mut ring[(minute % MINUTES as u64) as usize];
        if slot.at != minute {
            *slot = Minute::empty(minute);
        }
        slot.requests += 1;
        slot.errors += u64::from(!ok);
        slot.latency[bucket(seconds)] += 1;
    }

    /// The last hour of `pipeline@version`.
    pub fn last_hour(&self, pipeline: &str, version: &str) -> LastHour {
        self.last_hour_at(pipeline, version, now_s())
    }

    fn last_hour_at(&self, pipeline: &str, version: &str, now: u64) -> LastHour {
        let minute = now / 60;
        let first = minute + 1 - MINUTES as u64;
        let mut out = LastHour {
            per_minute: vec![0; MINUTES],
            ..LastHour::default()
        };
        let mut latency = [0u64; BUCKETS];
        if let Ok(rings) = self.rings.lock()
            && let Some(ring) = rings.get(&(pipeline.to_string(), version.to_string()))
        {
            for m in ring
                .iter()
                .filter(|m| m.at != u64::MAX && m.at >= first && m.at <= minute)
            {
                out.requests += m.requests;
                out.errors += m.errors;
                out.per_minute[(m.at - first) as usize] = m.requests;
                for (k, n) in m.latency.iter().enumerate() {
                    latency[k] += u64::from(*n);
                }
            }
        }
        let span = now.saturating_sub(self.started.max(first * 60)).max(1);
        out.rate = out.requests as f64 / span as f64;
        out.p50 = percentile(&latency, out.requests, 0.50);
        out.p99 = percentile(&latency, out.requests, 0.99);
        out
    }
}

/// The upper edge of the bucket holding the `q` quantile.
fn percentile(latency: &[u64; BUCKETS], total: u64, q: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (k, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(upper(k));
        }
    }
    Some(upper(BUCKETS - 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_rates_and_errors_over_the_last_hour() {
        let r = Recent::new();
        let t0 = r.started + 120;
        // 100 requests: 1 ms .. 100 ms, one in ten an error.
        for i in 1..=100u64 {
            r.record_at("p", "1", i % 10 != 0, i as f64 / 1000.0, t0);
        }
        let h = r.last_hour_at("p", "1", t0);
        assert_eq!((h.requests, h.errors), (100, 10));
        assert!((h.error_share() - 0.1).abs() < 1e-12);
        let (p50, p99) = (h.p50.unwrap(), h.p99.unwrap());
        // Within one quarter-octave bucket above the true 50 ms and 99 ms.
        assert!((0.050..=0.050 * 1.19).contains(&p50), "{p50}");
        assert!((0.099..=0.099 * 1.19).contains(&p99), "{p99}");
        assert_eq!(h.per_minute.iter().sum::<u64>(), 100);
        assert_eq!(*h.per_minute.last().unwrap(), 100);
        assert!((h.rate - 100.0 / 120.0).abs() < 1e-9, "{}", h.rate);
        // An hour later the minute has left the window and its slot is reused.
        let later = t0 + 3600;
        assert_eq!(r.last_hour_at("p", "1", later).requests, 0);
        r.record_at("p", "1", true, 0.001, later);
        let h = r.last_hour_at("p", "1", later);
        assert_eq!((h.requests, h.errors), (1, 0));
        assert_eq!(
            r.last_hour_at("p", "2", later),
            LastHour {
                per_minute: vec![0; MINUTES],
                ..LastHour::default()
            }
        );
    }
}
