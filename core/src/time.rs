//! Calendar dates and instants, parsed and printed without a date-time crate.
//!
//! - [`Date`]: a proleptic Gregorian day, held as days since 1970-01-01; text form exactly
//!   `YYYY-MM-DD`, years `0000..=9999`.
//! - [`Timestamp`]: an instant in UTC, held as unix microseconds; reads RFC 3339
//!   (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`), prints `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
//!
//! Rules where RFC 3339 leaves a choice:
//!
//! - `T`/`t` or one space separate date and time; `Z` or `z` means UTC.
//! - A fraction has 1 to 9 digits and is truncated (not rounded) to microseconds.
//! - A leap second (`:60`) is read as the last microsecond of its minute (`:59.999999`), so
//!   order is kept and every instant still has one text form.
//! - Offsets are `±HH:MM` with `HH <= 23`, `MM <= 59`; `-00:00` is UTC.
//! - The instant, once in UTC, must fall in years `0000..=9999` (so it prints with four
//!   digits).
//!
//! Day arithmetic uses Howard Hinnant's `days_from_civil` / `civil_from_days`. A time is always
//! an input: nothing here reads a clock.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_DAY: i64 = SECONDS_PER_DAY * MICROS_PER_SECOND;
/// Days from 1970-01-01 to 0000-01-01.
const MIN_DAYS: i32 = -719_528;
/// Days from 1970-01-01 to 9999-12-31.
const MAX_DAYS: i32 = 2_932_896;

/// Why a date or timestamp text was rejected. The message never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{detail}")]
pub struct TimeError {
    detail: &'static str,
}

impl TimeError {
    const fn new(detail: &'static str) -> TimeError {
        TimeError { detail }
    }

    /// The explanation (lower-case, no trailing period).
    pub fn detail(&self) -> &'static str {
        self.detail
    }
}

const DATE_SHAPE: TimeError = TimeError::new("expected a date YYYY-MM-DD");
const BAD_MONTH: TimeError = TimeError::new("month must be 01 to 12");
const BAD_DAY: TimeError = TimeError::new("day does not exist in that month");
const TS_SHAPE: TimeError =
    TimeError::new("expected an rfc 3339 date-time YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM)");
const BAD_TIME: TimeError = TimeError::new("hour, minute or second out of range");
const BAD_FRACTION: TimeError = TimeError::new("a fraction has 1 to 9 digits");
const BAD_OFFSET: TimeError = TimeError::new("offset must be Z or +HH:MM / -HH:MM up to 23:59");
const OUT_OF_RANGE: TimeError = TimeError::new("instant outside years 0000 to 9999 in utc");

/// Whether `year` is a Gregorian leap year.
fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` (1..=12) of `year`.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid civil date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // In range for every year 0000..=9999 (and far beyond).
    (era * 146_097 + doe - 719_468) as i32
}

/// Civil date of days since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

/// The value of exactly `N` ASCII digits.
fn digits<const N: usize>(bytes: &[u8]) -> Option<u32> {
    if bytes.len() != N {
        return None;
    }
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// A calendar day (proleptic Gregorian), years `0000..=9999`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// 0000-01-01.
    pub const MIN: Date = Date(MIN_DAYS);
    /// 9999-12-31.
    pub const MAX: Date = Date(MAX_DAYS);
    /// 1970-01-01.
    pub const EPOCH: Date = Date(0);

    /// The date `days` after 1970-01-01 (negative: before); `None` outside years 0000..=9999.
    pub fn from_days(days: i32) -> Option<Date> {
        (MIN_DAYS..=MAX_DAYS).contains(&days).then_some(Date(days))
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.0
    }

    /// The date of a year (0..=9999), month (1..=12) and day; `None` if it does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(0..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    /// Year, month (1..=12) and day (1..=31).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// Parses exactly `YYYY-MM-DD` (ASCII digits, real month and day, leap years honoured).
    pub fn parse(bytes: &[u8]) -> Result<Date, TimeError> {
        let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *bytes else {
            return Err(DATE_SHAPE);
        };
        let (Some(year), Some(month), Some(day)) = (
            digits::<4>(&[y0, y1, y2, y3]),
            digits::<2>(&[m0, m1]),
            digits::<2>(&[d0, d1]),
        ) else {
            return Err(DATE_SHAPE);
        };
        if !(1..=12).contains(&month) {
            return Err(BAD_MONTH);
        }
        // At most 9999: fits an i32.
        Date::from_ymd(year as i32, month, day).ok_or(BAD_DAY)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Date, TimeError> {
        Date::parse(s.as_bytes())
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Date::parse(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// An instant, as microseconds since 1970-01-01T00:00:00Z, within years `0000..=9999`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp(MIN_DAYS as i64 * MICROS_PER_DAY);
    /// 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp((MAX_DAYS as i64 + 1) * MICROS_PER_DAY - 1);
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The instant `micros` after the epoch; `None` outside [`Timestamp::MIN`]..=[`Timestamp::MAX`].
    pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&micros)
            .then_some(Timestamp(micros))
    }

    /// The instant `seconds` after the epoch; `None` outside years 0000..=9999.
    pub fn from_unix_seconds(seconds: i64) -> Option<Timestamp> {
        Self::from_unix_micros(seconds.checked_mul(MICROS_PER_SECOND)?)
    }

    /// Microseconds since the epoch.
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SECOND)
    }

    /// The instant of a UTC date and time of day; `None` when a field is out of range
    /// (`hour < 24`, `minute < 60`, `second < 60`, `micros < 1_000_000`).
    pub fn from_date_time(
        date: Date,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    ) -> Option<Timestamp> {
        if hour > 23 || minute > 59 || second > 59 || micros > 999_999 {
            return None;
        }
        let seconds = i64::from(hour * 3600 + minute * 60 + second);
        Some(Timestamp(
            i64::from(date.0) * MICROS_PER_DAY + seconds * MICROS_PER_SECOND + i64::from(micros),
        ))
    }

    /// The UTC date.
    pub fn date(self) -> Date {
        // Within MIN..=MAX the day count fits an i32.
        Date(self.0.div_euclid(MICROS_PER_DAY) as i32)
    }

    /// UTC hour, minute, second and microsecond.
    pub fn time_of_day(self) -> (u32, u32, u32, u32) {
        let micros = self.0.rem_euclid(MICROS_PER_DAY);
        let seconds = (micros / MICROS_PER_SECOND) as u32;
        (
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            (micros % MICROS_PER_SECOND) as u32,
        )
    }

    /// Parses an RFC 3339 date-time (see the module documentation for the accepted forms).
    pub fn parse(bytes: &[u8]) -> Result<Timestamp, TimeError> {
        let (Some(date), Some(&sep), Some(time)) =
            (bytes.get(..10), bytes.get(10), bytes.get(11..))
        else {
            return Err(TS_SHAPE);
        };
        let date = Date::parse(date).map_err(|e| if e == DATE_SHAPE { TS_SHAPE } else { e })?;
        if !matches!(sep, b'T' | b't' | b' ') {
            return Err(TS_SHAPE);
        }
        let Some([h0, h1, b':', m0, m1, b':', s0, s1]) = time.first_chunk::<8>().copied() else {
            return Err(TS_SHAPE);
        };
        let (Some(hour), Some(minute), Some(second)) = (
            digits::<2>(&[h0, h1]),
            digits::<2>(&[m0, m1]),
            digits::<2>(&[s0, s1]),
        ) else {
            return Err(TS_SHAPE);
        };
        if hour > 23 || minute > 59 || second > 60 {
            return Err(BAD_TIME);
        }
        let mut rest = &time[8..];
        let mut micros = 0u32;
        if let Some(fraction) = rest.strip_prefix(b".") {
            let len = fraction
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(fraction.len());
            if len == 0 || len > 9 {
                return Err(BAD_FRACTION);
            }
            for i in 0..6 {
                let digit = fraction.get(i).filter(|_| i < len).map_or(0, |b| b - b'0');
                micros = micros * 10 + u32::from(digit);
            }
            rest = &fraction[len..];
        }
        let offset_seconds: i64 = match rest {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h0, h1, b':', m0, m1] => {
                let (Some(oh), Some(om)) = (digits::<2>(&[*h0, *h1]), digits::<2>(&[*m0, *m1]))
                else {
                    return Err(BAD_OFFSET);
                };
                if oh > 23 || om > 59 {
                    return Err(BAD_OFFSET);
                }
                let magnitude = i64::from(oh * 3600 + om * 60);
                if *sign == b'-' { -magnitude } else { magnitude }
            }
            _ => return Err(BAD_OFFSET),
        };
        let (second, micros) = if second == 60 {
            (59, 999_999)
        } else {
            (second, micros)
        };
        let local =
            Timestamp::from_date_time(date, hour, minute, second, micros).ok_or(BAD_TIME)?;
        // |offset| < 1 day and local is within range: no overflow.
        Timestamp::from_unix_micros(local.0 - offset_seconds * MICROS_PER_SECOND)
            .ok_or(OUT_OF_RANGE)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s, micros) = self.time_of_day();
        write!(f, "{}T{h:02}:{m:02}:{s:02}", self.date())?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Timestamp, TimeError> {
        Timestamp::parse(s.as_bytes())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Timestamp::parse(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn dates_parse_and_print() {
        assert_eq!(Date::parse(b"1970-01-01"), Ok(Date::EPOCH));
        assert_eq!(Date::parse(b"1970-01-02").unwrap().days(), 1);
        assert_eq!(Date::parse(b"1969-12-31").unwrap().days(), -1);
        assert_eq!(Date::parse(b"2000-03-01").unwrap().days(), 11_017);
        assert_eq!(Date::parse(b"0000-01-01"), Ok(Date::MIN));
        assert_eq!(Date::parse(b"9999-12-31"), Ok(Date::MAX));
        assert_eq!(Date::MIN.to_string(), "0000-01-01");
        assert_eq!(Date::MAX.to_string(), "9999-12-31");
        assert_eq!(
            Date::from_ymd(2024, 2, 29).unwrap().to_string(),
            "2024-02-29"
        );
        assert_eq!(Date::from_days(MAX_DAYS + 1), None);
        assert_eq!(Date::from_days(MIN_DAYS - 1), None);
    }

    #[test]
    fn dates_reject_bad_shapes_and_days() {
        assert_eq!(Date::parse(b"2023-02-29"), Err(BAD_DAY));
        assert_eq!(Date::parse(b"1900-02-29"), Err(BAD_DAY));
        assert!(Date::parse(b"2000-02-29").is_ok());
        assert!(Date::parse(b"0000-02-29").is_ok());
        assert_eq!(Date::parse(b"2024-04-31"), Err(BAD_DAY));
        assert_eq!(Date::parse(b"2024-00-10"), Err(BAD_MONTH));
        assert_eq!(Date::parse(b"2024-13-10"), Err(BAD_MONTH));
        assert_eq!(Date::parse(b"2024-01-00"), Err(BAD_DAY));
        for bad in [
            &b"2024-1-01"[..],
            b"2024-01-1",
            b"24-01-01",
            b"2024/01/01",
            b"2024-01-01 ",
            b" 2024-01-01",
            b"+024-01-01",
            b"",
            "２０２４-01-01".as_bytes(),
        ] {
            assert_eq!(Date::parse(bad), Err(DATE_SHAPE), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_parse_rfc3339() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), Timestamp::EPOCH);
        assert_eq!(ts("1970-01-01t00:00:01z").unix_micros(), 1_000_000);
        assert_eq!(ts("1970-01-01 00:00:01Z").unix_seconds(), 1);
        assert_eq!(ts("2026-01-31T12:00:00+01:00"), ts("2026-01-31T11:00:00Z"));
        assert_eq!(ts("2026-01-31T00:30:00-02:30"), ts("2026-01-31T03:00:00Z"));
        assert_eq!(ts("2026-01-31T12:00:00-00:00"), ts("2026-01-31T12:00:00Z"));
        assert_eq!(ts("1970-01-01T00:00:00.5Z").unix_micros(), 500_000);
        assert_eq!(ts("1970-01-01T00:00:00.123456789Z").unix_micros(), 123_456);
        assert_eq!(ts("1969-12-31T23:59:59.999999Z").unix_micros(), -1);
        // Leap second: the last microsecond of the minute.
        assert_eq!(
            ts("2016-12-31T23:59:60Z"),
            ts("2016-12-31T23:59:59.999999Z")
        );
        assert_eq!(ts("0000-01-01T00:00:00Z"), Timestamp::MIN);
        assert_eq!(ts("9999-12-31T23:59:59.999999Z"), Timestamp::MAX);
    }

    #[test]
    fn timestamps_reject_what_rfc3339_does_not_allow() {
        for (bad, err) in [
            ("2026-01-31T12:00:00", BAD_OFFSET),
            ("2026-01-31T12:00:00+0100", BAD_OFFSET),
            ("2026-01-31T12:00:00+24:00", BAD_OFFSET),
            ("2026-01-31T12:00:00+01:60", BAD_OFFSET),
            ("2026-01-31T12:00:00ZZ", BAD_OFFSET),
            ("2026-01-31T12:00:00.Z", BAD_FRACTION),
            ("2026-01-31T12:00:00.1234567890Z", BAD_FRACTION),
            ("2026-01-31T24:00:00Z", BAD_TIME),
            ("2026-01-31T12:60:00Z", BAD_TIME),
            ("2026-01-31T12:00:61Z", BAD_TIME),
            ("2026-01-31X12:00:00Z", TS_SHAPE),
            ("2026-01-31T12:00Z", TS_SHAPE),
            ("2026-01-31", TS_SHAPE),
            ("2026-01-31T1:00:00Z", TS_SHAPE),
            ("2026-02-30T12:00:00Z", BAD_DAY),
            ("0000-01-01T00:00:00+00:01", OUT_OF_RANGE),
            ("9999-12-31T23:59:59-00:01", OUT_OF_RANGE),
            ("", TS_SHAPE),
        ] {
            assert_eq!(Timestamp::parse(bad.as_bytes()), Err(err), "{bad}");
        }
    }

    #[test]
    fn timestamps_print_canonical_utc() {
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            ts("2026-01-31T12:00:00.120+01:00").to_string(),
            "2026-01-31T11:00:00.120000Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(-1).unwrap().to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn unix_seconds_are_range_checked() {
        assert_eq!(
            Timestamp::from_unix_seconds(1_769_860_800)
                .unwrap()
                .to_string(),
            "2026-01-31T12:00:00Z"
        );
        assert_eq!(Timestamp::from_unix_seconds(i64::MAX), None);
        assert_eq!(Timestamp::from_unix_seconds(i64::MIN), None);
        assert_eq!(Timestamp::from_unix_seconds(253_402_300_800), None);
        assert!(Timestamp::from_unix_seconds(253_402_300_799).is_some());
        assert_eq!(Timestamp::from_unix_micros(Timestamp::MAX.0 + 1), None);
        assert_eq!(Timestamp::from_unix_micros(Timestamp::MIN.0 - 1), None);
        assert_eq!(Timestamp::from_date_time(Date::EPOCH, 24, 0, 0, 0), None);
    }

    #[test]
    fn serde_uses_the_text_forms() {
        let t = ts("2026-01-31T12:00:00Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-01-31T12:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        let d: Date = serde_json::from_str("\"2024-02-29\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2024-02-29\"");
        assert!(serde_json::from_str::<Date>("\"2023-02-29\"").is_err());
    }

    proptest! {
        #[test]
        fn civil_days_round_trip(days in MIN_DAYS..=MAX_DAYS) {
            let date = Date(days);
            let (y, m, d) = date.ymd();
            prop_assert_eq!(Date::from_ymd(y, m, d), Some(date));
            prop_assert_eq!(Date::parse(date.to_string().as_bytes()), Ok(date));
        }

        #[test]
        fn timestamps_round_trip(micros in Timestamp::MIN.0..=Timestamp::MAX.0) {
            let t = Timestamp(micros);
            let text = t.to_string();
            prop_assert_eq!(Timestamp::parse(text.as_bytes()), Ok(t));
            prop_assert_eq!(Timestamp::parse(text.replace('T', " ").to_lowercase().as_bytes()), Ok(t));
        }

        #[test]
        fn offsets_shift_the_instant(
            seconds in 0i64..253_402_300_799 - 86_400,
            hours in 0u32..24,
            minutes in 0u32..60,
        ) {
            let utc = Timestamp::from_unix_seconds(seconds + 86_400).unwrap();
            let shift = i64::from(hours * 3600 + minutes * 60);
            let local = Timestamp::from_unix_seconds(seconds + 86_400 + shift).unwrap();
            let text = format!("{}+{hours:02}:{minutes:02}", &local.to_string()[..19]);
            prop_assert_eq!(Timestamp::parse(text.as_bytes()), Ok(utc));
        }

        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Date::parse(&bytes);
            let _ = Timestamp::parse(&bytes);
        }

        #[test]
        fn near_miss_text_never_panics(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            if let Ok(t) = Timestamp::parse(text.as_bytes()) {
                prop_assert!(t >= Timestamp::MIN && t <= Timestamp::MAX);
            }
        }
    }
}
