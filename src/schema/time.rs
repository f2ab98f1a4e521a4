//! Timestamps as the APIs send them, to UTC microseconds.
//!
//! Accepted: ISO 8601 with or without fraction and zone (`2020-08-12T11:00:18.071Z`,
//! `2023-10-03T15:00:00`, `...+02:00`), `YYYY-MM-DD HH:MM:SS`, and bare dates. A value
//! without a zone is local time in the job's `source_timezone`: in the autumn overlap the
//! earlier instant is taken, and a time inside the spring gap is moved forward by the gap,
//! as java.time and pandas (`shift_forward`) do. A bare date is local midnight.

use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// Parses timestamps, reading zone-less values in the source time zone.
#[derive(Clone, Copy, Debug)]
pub struct TimeParser {
    tz: Tz,
}

impl Default for TimeParser {
    fn default() -> Self {
        TimeParser {
            tz: chrono_tz::Europe::Madrid,
        }
    }
}

impl From<Tz> for TimeParser {
    fn from(tz: Tz) -> Self {
        TimeParser { tz }
    }
}

impl TimeParser {
    /// A parser for `source_timezone` (an IANA name such as `Europe/Madrid`).
    pub fn new(source_timezone: &str) -> Result<Self, String> {
        source_timezone
            .parse::<Tz>()
            .map(|tz| TimeParser { tz })
            .map_err(|_| format!("unknown time zone {source_timezone:?}"))
    }

    /// The source time zone.
    pub fn zone(&self) -> Tz {
        self.tz
    }

    /// Microseconds since the epoch (UTC) of `text`, or why it is not a timestamp.
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        let s = text.trim();
        // The reason names the expected form, never the value (it may be personal data).
        let fail = || "not a timestamp (ISO 8601, YYYY-MM-DD HH:MM:SS or a date)".to_string();
        let b = s.as_bytes();
        if b.len() < 10 {
            return Err(fail());
        }
        let date = parse_date(&b[..10]).ok_or_else(fail)?;
        if b.len() == 10 {
            return Ok(self.local_to_utc(date.and_time(NaiveTime::MIN)));
        }
        if b[10] != b'T' && b[10] != b' ' && b[10] != b't' {
            return Err(fail());
        }
        let rest = &b[11..];
        let (time, used) = parse_time(rest).ok_or_else(fail)?;
        let naive = date.and_time(time);
        let zone = &rest[used..];
        match parse_zone(zone) {
            Some(None) => Ok(self.local_to_utc(naive)),
            Some(Some(offset_secs)) => Ok((naive - Duration::seconds(offset_secs as i64))
                .and_utc()
                .timestamp_micros()),
            None => Err(fail()),
        }
    }

    /// A `start - end` range, as the `validForAppointment` role sends it.
    pub fn parse_range(&self, text: &str) -> Result<(i64, i64), String> {
        let (a, b) = text
            .split_once(" - ")
            .or_else(|| text.split_once('/'))
            .ok_or_else(|| "not a time range \"start - end\"".to_string())?;
        Ok((self.parse(a)?, self.parse(b)?))
    }

    /// Local wall time in the source zone to UTC microseconds.
    pub fn local_to_utc(&self, naive: NaiveDateTime) -> i64 {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.timestamp_micros(),
            LocalResult::Ambiguous(early, _) => early.timestamp_micros(),
            LocalResult::None => {
                // Inside a spring-forward gap: shift forward by the gap (one hour in Europe).
                let later = naive + Duration::hours(1);
                match self.tz.from_local_datetime(&later) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_micros(),
                    LocalResult::None => later.and_utc().timestamp_micros(),
                }
            }
        }
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn parse_date(b: &[u8]) -> Option<NaiveDate> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// `HH:MM[:SS[.fraction]]`; returns the time and the bytes used.
fn parse_time(b: &[u8]) -> Option<(NaiveTime, usize)> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h = digits(&b[..2])?;
    let m = digits(&b[3..5])?;
    let mut used = 5;
    let mut s = 0;
    let mut nanos = 0u32;
    if b.len() >= 8 && b[5] == b':' {
        s = digits(&b[6..8])?;
        used = 8;
        if b.len() > 8 && (b[8] == b'.' || b[8] == b',') {
            let frac = &b[9..];
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let kept = &frac[..n.min(9)];
            nanos = digits(kept)? * 10u32.pow(9 - kept.len() as u32);
            used = 9 + n;
        }
    }
    // A leap second is clamped to the last representable instant of the minute.
    let s = s.min(59);
    Some((NaiveTime::from_hms_nano_opt(h, m, s, nanos)?, used))
}

/// `""` → no zone; `Z` → 0; `±HH[:MM]` / `±HHMM` → offset in seconds east of UTC.
fn parse_zone(b: &[u8]) -> Option<Option<i32>> {
    match b {
        [] => Some(None),
        [b'Z'] | [b'z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some(Some(if *sign == b'-' { -secs } else { secs }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn iso_with_zone_and_fraction() {
        let p = TimeParser::default();
        assert_eq!(
            p.parse("2020-08-12T11:00:18.071Z").unwrap(),
            utc("2020-08-12T11:00:18.071Z")
        );
        assert_eq!(
            p.parse("2020-08-12T13:00:18+02:00").unwrap(),
            utc("2020-08-12T11:00:18Z")
        );
        assert_eq!(
            p.parse("2020-08-12T13:00:18+0200").unwrap(),
            utc("2020-08-12T11:00:18Z")
        );
        assert_eq!(
            p.parse("2020-08-15T07:00:00.000Z").unwrap(),
            utc("2020-08-15T07:00:00Z")
        );
    }

    #[test]
    fn zoneless_values_are_source_local() {
        let p = TimeParser::default();
        // Madrid is UTC+2 in summer, UTC+1 in winter.
        assert_eq!(p.parse("2023-10-03T15:00:00").unwrap(), utc("2023-10-03T13:00:00Z"));
        assert_eq!(p.parse("2023-05-02 11:00:09").unwrap(), utc("2023-05-02T09:00:09Z"));
        assert_eq!(p.parse("2020-01-31").unwrap(), utc("2020-01-30T23:00:00Z"));
        let lisbon = TimeParser::new("Europe/Lisbon").unwrap();
        assert_eq!(lisbon.parse("2020-01-31").unwrap(), utc("2020-01-31T00:00:00Z"));
    }

    #[test]
    fn daylight_saving_edges() {
        let p = TimeParser::default();
        // 2023-10-29 02:30 happens twice in Madrid: the earlier (CEST) instant is taken.
        assert_eq!(p.parse("2023-10-29 02:30:00").unwrap(), utc("2023-10-29T00:30:00Z"));
        // 2023-03-26 02:30 does not exist: moved forward to 03:30 CEST.
        assert_eq!(p.parse("2023-03-26 02:30:00").unwrap(), utc("2023-03-26T01:30:00Z"));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        let p = TimeParser::default();
        for bad in [
            "",
            "string",
            "2020-13-01",
            "2020-02-30",
            "2020-08-12T25:00:00Z",
            "2020-08-12X10:00",
        ] {
            assert!(p.parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let p = TimeParser::default();
        let (a, b) = p.parse_range("2023-10-03T15:00:00 - 2023-10-03T18:00:00").unwrap();
        assert_eq!(b - a, 3 * 3600 * 1_000_000);
        assert!(p.parse_range("2023-10-03T15:00:00").is_err());
    }
}
