//! RFC 3339 timestamps in UTC, written with a fixed width so that string order is time order.
//!
//! A small civil-calendar conversion (Howard Hinnant's algorithms) is enough
//! here; it saves a date-time crate for the two functions the store needs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::StoreError;

/// Now, as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, UTC).
/// Times before 1970 are clamped to the epoch: the store never records them.
pub fn format_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Parses RFC 3339 (`2026-01-31T12:00:00Z`, fractional seconds and `±HH:MM`
/// offsets allowed, `T` or a space between date and time) or a bare date
/// (`2026-01-31`, meaning midnight UTC).
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, StoreError> {
    let bad = || StoreError::BadTime(s.to_owned());
    let b = s.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, StoreError> {
        let part = b.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        part.iter()
            .try_fold(0i64, |acc, d| {
                acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
            })
            .ok_or_else(bad)
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos: u32 = 0;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return Err(bad());
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || se > 60 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + se;
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 9 {
                    nanos += u32::from(b[i] - b'0') * 10u32.pow(8 - (i - start) as u32);
                }
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
        }
        match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => {}
            Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
                let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
                // A local time ahead of UTC is later on the clock face than the UTC instant.
                secs += if *sign == b'+' { -off } else { off };
            }
            _ => return Err(bad()),
        }
    }
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Nanoseconds since the Unix epoch (0 for earlier times, saturating far in the future).
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_nanos`].
pub(crate) fn from_unix_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_known_instants() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 123_456_789); // 2000-02-29
        assert_eq!(format_rfc3339(t), "2000-02-29T01:01:01.123456Z");
    }

    #[test]
    fn parse_round_trips_and_offsets() {
        let t = UNIX_EPOCH + Duration::new(1_767_225_600, 500_000_000); // 2026-01-01
        assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
        assert_eq!(
            parse_rfc3339("2026-01-01").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_767_225_600)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T02:00:00+02:00").unwrap(),
            parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_rfc3339("2025-12-31T22:30:00-01:30").unwrap(),
            parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00",
            "yesterday",
            "2026-01-01T00:00:00.Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
