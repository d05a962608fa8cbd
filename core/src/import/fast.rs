//! A fast path for Audience Manager outbound files of visitor ids: lines of the usual shape
//! (`<38 digits><spaces or tabs><segments>[<spaces or tabs><removed>]`, segment lists of
//! printable ASCII without empty entries) are split here; the commonest of them (one separator,
//! one segment list, nothing after it) in a single pass up to its line feed, its segment names
//! packed as they are checked, straight into the batch (as a mask line when it can be); the
//! others by [`outbound::split_plain_visitor_line`]. Any other line is handed to
//! [`outbound::read`] alone, so its record, bad record or strict error is exactly the general
//! one (line numbers shifted to the file's); a line that would be read differently alone (one
//! starting with 0x1F, a gzip magic's first byte, or 0xEF, a byte-order mark's) comes after an
//! empty line.

use super::IndexKey;
use super::index::MatchIndex;
use super::run::{Occurrence, Run};
use crate::datasource::MatchKey;
use crate::format::input::{self, Line};
use crate::format::outbound::{self, ReadSummary};
use crate::format::{FileError, ReadOptions};
use crate::id::{UserIdKind, VisitorId};
use crate::simd;

/// Reads an outbound file of visitor ids into `run` as [`outbound::read`] plus
/// `Run::outbound_record` would; `None` when the file is left to the general reader.
pub(super) fn read_visitor_outbound<I: MatchIndex>(
    file: &str,
    bytes: &[u8],
    options: ReadOptions,
    run: &mut Run<'_, I>,
) -> Result<Option<ReadSummary>, FileError>
where
    I::Key: IndexKey,
{
    let data = input::decode(file, bytes)?;
    let body = data.strip_prefix(input::BOM).unwrap_or(&data);
    let mut summary = ReadSummary::default();
    // A usual line takes at least an id, a tab, a segment and a line feed.
    run.expect_mask_lines(body.len() / (VisitorId::LEN + 3));
    let mut rest = body;
    let mut number = 0;
    let mut packed = [0; PACKED];
    while !rest.is_empty() {
        number += 1;
        // The usual line, read up to its end in the same pass (no search for the line end).
        if let Some(usual) = split_usual_line(rest, &mut packed)
            && let Some(key) = I::Key::from_match(MatchKey::Visitor(usual.id.as_u128()))
        {
            summary.records += 1;
            let raw = &rest[..VisitorId::LEN];
            run.outbound_usual(number, raw, key, usual.list, &packed[..usual.names]);
            rest = &rest[usual.taken..];
            continue;
        }
        // Any other line, as `Lines` gives it.
        let (bytes, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = Line {
            number,
            bytes: bytes.strip_suffix(b"\r").unwrap_or(bytes),
        };
        if line.bytes.iter().all(|&b| outbound::is_separator(b)) {
            summary.blank_lines += 1;
            continue;
        }
        if let Some((id, segments, removed)) = outbound::split_plain_visitor_line(line.bytes) {
            summary.records += 1;
            let occurrence = Occurrence {
                line: line.number,
                raw: &line.bytes[..38],
                key: Ok(MatchKey::Visitor(id.as_u128())),
            };
            run.outbound_record(
                &occurrence,
                outbound::split_list(segments),
                outbound::split_list(removed),
            );
            continue;
        }
        // The general reader, on this line alone (a line ending in CR gets one more, as the
        // reader drops one before a line end). A line that starts as a gzip stream or with a
        // byte-order mark would be read as one alone: it comes after an empty line then.
        let lead = matches!(line.bytes.first(), Some(0x1F | 0xEF));
        let shift = line.number - 1 - u64::from(lead);
        let owned;
        let alone = if lead || line.bytes.ends_with(b"\r") {
            let prefix: &[u8] = if lead { b"\n" } else { b"" };
            let suffix: &[u8] = if line.bytes.ends_with(b"\r") {
                b"\r\n"
            } else {
                b""
            };
            owned = [prefix, line.bytes, suffix].concat();
            &owned[..]
        } else {
            line.bytes
        };
        let result = outbound::read(file, alone, UserIdKind::VisitorId, options, |record| {
            let occurrence = run.occurrence(record.line + shift, &record.user, record.raw_user);
            run.outbound_record(&occurrence, record.segments(), record.removed());
        });
        match result {
            Ok(one) => {
                summary.records += one.records;
                summary.invalid_ids += one.invalid_ids;
                summary.blank_lines += one.blank_lines - u64::from(lead);
                summary.bad.extend(one.bad.into_iter().map(|mut bad| {
                    bad.line += shift;
                    bad
                }));
            }
            Err(mut err) => {
                err.line = err.line.map(|l| l + shift);
                if let Some(record) = &mut err.record {
                    record.line += shift;
                }
                return Err(err);
            }
        }
    }
    Ok(Some(summary))
}

/// Segment names of a usual line packed as it is split (more take the general way).
const PACKED: usize = 4;

/// A usual line: its id, its segment list, how many of its names were packed and the bytes it
/// takes.
#[derive(Debug, Clone, Copy)]
struct Usual<'a> {
    id: VisitorId,
    /// Printable ASCII (so UTF-8, made a `str` only when needed).
    list: &'a [u8],
    /// Names packed (0: not all could be).
    names: usize,
    /// Bytes of the line, its line feed included.
    taken: usize,
}

/// The usual line at the start of `rest`, split in one pass up to its end (a line feed, or
/// the end of `rest`): 38 digits, one space or tab, then one segment list of printable ASCII
/// (no space) without empty entries; when there are at most [`PACKED`] names of under 8 bytes,
/// each packed by [`super::names::pack`] into `packed`. `None` for any other line. For the
/// lines it accepts, [`outbound::split_plain_visitor_line`] gives the same id and list and no
/// removed segments. (The names go to the caller's array, not into the result: a small result
/// stays in registers.)
#[inline(always)]
fn split_usual_line<'a>(rest: &'a [u8], packed: &mut [u64; PACKED]) -> Option<Usual<'a>> {
    let (digits, after) = rest.split_first_chunk::<{ VisitorId::LEN }>()?;
    let (&separator, tail) = after.split_first()?;
    if !outbound::is_separator(separator) {
        return None;
    }
    let id = VisitorId::from_digits(digits)?;
    // Most lists end within 16 bytes: read as one word, no branch per byte.
    let split = match tail.first_chunk::<16>() {
        Some(window) => split_short_list(window, packed),
        None => None,
    };
    let (end, names) = match split {
        Some(split) => split?,
        None => split_list_bytes(tail, packed)?,
    };
    Some(Usual {
        id,
        list: &tail[..end],
        names,
        taken: VisitorId::LEN + 1 + end + usize::from(end < tail.len()),
    })
}

/// [`split_usual_line`]'s reading of the segment list `tail` starts with, a byte at a time: the
/// list's length (up to a line feed or the end) and the number of names packed into `packed` (0
/// when not all could be); `None` for a list the usual line does not take (a byte that is not
/// printable ASCII, or an empty entry).
fn split_list_bytes(tail: &[u8], packed: &mut [u64; PACKED]) -> Option<(usize, usize)> {
    // A comma before the first byte: a leading comma, two in a row or a trailing one (or an
    // empty list) is an empty entry. Names are packed as they go (bytes, then the length in
    // the top byte), until one is too long or there are too many.
    let mut previous = b',';
    let (mut name, mut len, mut packable, mut names) = (0u64, 0usize, true, 0);
    let mut end = tail.len();
    for (i, &b) in tail.iter().enumerate() {
        if b == b'\n' {
            end = i;
            break;
        }
        if !(0x21..=0x7E).contains(&b) || (b == b',' && previous == b',') {
            return None;
        }
        if b == b',' {
            packable &= names < PACKED;
            if packable {
                packed[names] = name | (len as u64) << 56;
                names += 1;
            }
            (name, len) = (0, 0);
        } else {
            packable &= len < 7;
            name |= u64::from(b) << (8 * (len & 7));
            len += 1;
        }
        previous = b;
    }
    if previous == b',' {
        return None;
    }
    packable &= names < PACKED;
    if packable {
        packed[names] = name | (len as u64) << 56;
        names += 1;
    } else {
        names = 0;
    }
    Some((end, names))
}

/// [`split_usual_line`]'s reading of a segment list whose line feed is among the 16 bytes of
/// `window`: `None` when it is not; else the list's length and the number of names packed into
/// `packed` (0 when not all could be), or `None` for a list the usual line does not take (a
/// byte that is not printable ASCII, or an empty entry).
#[inline(always)]
fn split_short_list(
    window: &[u8; 16],
    packed: &mut [u64; PACKED],
) -> Option<Option<(usize, usize)>> {
    let classes = simd::classes16(window);
    if classes.feeds == 0 {
        return None;
    }
    let end = classes.feeds.trailing_zeros() as usize;
    // The bytes before the line feed.
    let list = (1u32 << end) - 1;
    if !classes.printable & list != 0 {
        return Some(None);
    }
    let commas = classes.commas & list;
    // Empty entries: an empty list, a comma first or last, or two in a row.
    if end == 0 || commas & 1 != 0 || commas >> (end - 1) != 0 || commas & (commas >> 1) != 0 {
        return Some(None);
    }
    // Each name up to the next comma (or the line feed), while they pack.
    let word = u128::from_le_bytes(*window);
    let (mut start, mut rest) = (0, commas);
    for (names, slot) in packed.iter_mut().enumerate() {
        let stop = if rest == 0 {
            end
        } else {
            rest.trailing_zeros() as usize
        };
        let len = stop - start;
        if len >= 8 {
            break;
        }
        let bytes = (word >> (8 * start)) as u64 & ((1u64 << (8 * len)) - 1);
        *slot = bytes | (len as u64) << 56;
        if rest == 0 {
            return Some(Some((end, names + 1)));
        }
        rest &= rest - 1;
        start = stop + 1;
    }
    // A name of 8 bytes or more, or more than `PACKED` names.
    Some(Some((end, 0)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::super::{
        AudienceFile, AudienceFormat, ImportOptions, ImportRequest, import, import_general,
    };
    use crate::datasource::AmbiguityPolicy;
    use crate::format::links::VisitorLink;
    use crate::id::VisitorId;
    use crate::recipients::RecipientKey;
    use crate::time::Timestamp;

    fn fragment() -> impl Strategy<Value = String> {
        let id = |n: u128| VisitorId::from_u128(n).unwrap().to_string();
        prop_oneof![
            4 => (1u128..6).prop_map(id),
            1 => Just("1234567890123456789012345678901234567X".to_owned()),
            1 => Just("123".to_owned()),
            3 => Just(" ".to_owned()),
            1 => Just("\t".to_owned()),
            3 => prop_oneof![Just("7"), Just("8"), Just("7,8"), Just("a,b,7")].prop_map(str::to_owned),
            1 => prop_oneof![Just(","), Just("7,,8"), Just("7,"), Just("\u{1}"), Just("é"), Just("\r")]
                .prop_map(str::to_owned),
            2 => Just("\n".to_owned()),
        ]
    }

    pub(super) fn run_both(
        body: &[u8],
        strict: bool,
        list_unmatched: bool,
        full: bool,
    ) -> (
        Result<super::super::ImportResult, super::super::ImportError>,
        Result<super::super::ImportResult, super::super::ImportError>,
    ) {
        let links: Vec<VisitorLink> = (1..5u128)
            .map(|n| VisitorLink {
                recipient: RecipientKey::Int(n as i64 * 10),
                visitor: VisitorId::from_u128(n).unwrap(),
                last_seen: Timestamp::from_unix_seconds(0),
            })
            .collect();
        let format = AudienceFormat::Outbound { mode: None };
        let name = if full {
            "S3_full_1700000000000.sync"
        } else {
            "S3_iter_1700000000000.sync"
        };
        let files = [AudienceFile {
            name,
            bytes: body,
            format: &format,
        }];
        let options = ImportOptions {
            list_unmatched,
            strict,
            ..ImportOptions::default()
        };
        both_ways(
            &links,
            &files,
            AmbiguityPolicy::Latest,
            &options,
            &BTreeMap::new(),
        )
    }

    type Outcome = Result<super::super::ImportResult, super::super::ImportError>;

    /// The import of `files` against `links` (no recipients table, no current lists), with the
    /// fast path and without it.
    fn both_ways(
        links: &[VisitorLink],
        files: &[AudienceFile<'_>],
        policy: AmbiguityPolicy,
        options: &ImportOptions,
        last_applied: &BTreeMap<String, i64>,
    ) -> (Outcome, Outcome) {
        let source = super::super::tests::visitor_source(policy);
        let current = BTreeMap::new();
        let request = ImportRequest {
            data_source: &source,
            recipients: None,
            links,
            files,
            options,
            current: &current,
            last_applied,
        };
        (import(&request), import_general(&request))
    }

    /// The import of one iter file `body` against `links` (default options), with the fast
    /// path and without it; both must succeed.
    fn one_iter_file(
        links: &[VisitorLink],
        body: &str,
    ) -> (super::super::ImportResult, super::super::ImportResult) {
        let format = AudienceFormat::Outbound { mode: None };
        let files = [AudienceFile {
            name: "S3_iter_1700000000000.sync",
            bytes: body.as_bytes(),
            format: &format,
        }];
        let (fast, general) = both_ways(
            links,
            &files,
            AmbiguityPolicy::Latest,
            &ImportOptions::default(),
            &BTreeMap::new(),
        );
        (fast.unwrap(), general.unwrap())
    }

    #[test]
    fn lines_ending_in_cr_and_other_edges() {
        let id = "00000000000000000000000000000000000001";
        for body in [
            format!("{id} \r\r\n"),
            format!("{id}\r\r"),
            format!("{id} 7\r\n{id}\t8,9 7\n {id} 7\n{id} 7 8 9\n\t \n{id} ,7\n{id}7 8"),
            format!("\u{feff}{id} 7\n\u{feff}{id} 7\n"),
            format!("{id} 7\n\u{1f}\n"),
        ] {
            for strict in [false, true] {
                let (fast, general) = run_both(body.as_bytes(), strict, true, false);
                assert_eq!(fast, general, "{body:?}");
            }
        }
    }

    #[test]
    fn lines_that_would_read_as_a_file_alone() {
        // Lines starting as a gzip stream or with a byte-order mark, inside the file: records
        // with an invalid id there, as the general reader sees them, not a gzip error or a mark
        // to skip.
        let id = b"00000000000000000000000000000000000001";
        let gzip = [0x1F, 0x8B, 0x08, 0x00];
        let bom = [0xEF, 0xBB, 0xBF];
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for lead in [&gzip[..], &bom[..], &[0x1F][..], &[0xEF][..]] {
            for tail in [&b""[..], &b" 7"[..], &b"\r"[..]] {
                let mut body = [&id[..], b" 7\n"].concat();
                body.extend_from_slice(lead);
                body.extend_from_slice(id);
                body.extend_from_slice(tail);
                body.extend_from_slice(b"\n\n");
                body.extend_from_slice(id);
                body.extend_from_slice(b" 8\n");
                bodies.push(body);
            }
        }
        for body in &bodies {
            for strict in [false, true] {
                for list_unmatched in [false, true] {
                    let (fast, general) = run_both(body, strict, list_unmatched, false);
                    assert_eq!(fast, general, "{body:?}");
                    if !strict {
                        // A record with an invalid id, not a file of its own.
                        let totals = fast.unwrap().report.totals;
                        assert_eq!((totals.lines, totals.records), (4, 3), "{body:?}");
                        assert_eq!(totals.blank_lines, 1, "{body:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn usual_lines_and_the_others() {
        let id = "00000000000000000000000000000000000001";
        for (line, list) in [
            (format!("{id} 7"), Some("7")),
            (format!("{id}\t7,a_b,~!"), Some("7,a_b,~!")),
            (format!("{id} 7 8"), None),
            (format!("{id}  7"), None),
            (format!("{id} 7,"), None),
            (format!("{id} ,7"), None),
            (format!("{id} 7,,8"), None),
            (format!("{id} "), None),
            (id.to_owned(), None),
            (format!("{id} 7\r"), None),
            (format!("{id} 7\u{1}"), None),
            (format!("{id} é"), None),
            (format!("{id}7 8"), None),
            ("123456789012345678901234567890123456X8 7".to_owned(), None),
        ] {
            let split = super::split_usual_line(line.as_bytes(), &mut [0; super::PACKED]);
            assert_eq!(split.map(|u| u.list), list.map(str::as_bytes), "{line:?}");
            // The same line followed by another takes its line feed too.
            let two = format!("{line}\n{line}");
            let first = super::split_usual_line(two.as_bytes(), &mut [0; super::PACKED]);
            assert_eq!(
                first.map(|u| (u.list, u.taken)),
                split.map(|u| (u.list, line.len() + 1))
            );
            if let Some(usual) = split {
                assert_eq!(usual.taken, line.len());
                assert_eq!(
                    super::outbound::split_plain_visitor_line(line.as_bytes()),
                    Some((usual.id, std::str::from_utf8(usual.list).unwrap(), ""))
                );
            }
        }
    }

    proptest! {
        #[test]
        fn a_short_list_splits_as_byte_by_byte(
            bytes in proptest::collection::vec(
                prop_oneof![
                    8 => prop_oneof![Just(b'7'), Just(b'a'), Just(b'~'), Just(b'!')],
                    2 => Just(b','),
                    1 => Just(b'\n'),
                    1 => prop_oneof![Just(b' '), Just(0x7F), Just(0x80), Just(0xFF), Just(0)],
                ],
                16..24,
            ),
        ) {
            let window: [u8; 16] = bytes[..16].try_into().unwrap();
            let (mut short, mut slow) = ([0; super::PACKED], [0; super::PACKED]);
            let split = super::split_short_list(&window, &mut short);
            // Undecided exactly when the line feed is not among the 16 bytes.
            prop_assert_eq!(split.is_none(), !window.contains(&b'\n'));
            if let Some(split) = split {
                prop_assert_eq!(split, super::split_list_bytes(&bytes, &mut slow));
                if let Some((_, names)) = split {
                    prop_assert_eq!(&short[..names], &slow[..names]);
                }
            }
        }

        #[test]
        fn the_usual_line_splits_as_the_plain_split(
            prefixed in any::<bool>(),
            fragments in proptest::collection::vec(fragment(), 0..12),
        ) {
            // Half the lines start like a usual one, so both answers are exercised.
            let prefix = if prefixed { "00000000000000000000000000000000000001 " } else { "" };
            let text = format!("{prefix}{}", fragments.concat());
            let mut names = [0; super::PACKED];
            if let Some(usual) = super::split_usual_line(text.as_bytes(), &mut names) {
                let taken = usual.taken;
                // It reads the first line, and takes it with its line feed.
                let line = text.split('\n').next().unwrap();
                prop_assert_eq!(taken, (line.len() + 1).min(text.len()));
                prop_assert_eq!(
                    super::outbound::split_plain_visitor_line(line.as_bytes()),
                    Some((usual.id, std::str::from_utf8(usual.list).unwrap(), ""))
                );
                // Packed names are those of the list, when all of them pack.
                let packed: Option<Vec<u64>> =
                    usual.list.split(|&b| b == b',').map(super::super::names::pack).collect();
                match packed {
                    Some(packed) if packed.len() <= super::PACKED => {
                        prop_assert_eq!(&names[..usual.names], &packed[..]);
                    }
                    _ => prop_assert_eq!(usual.names, 0),
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn many_spread_ids_count_as_the_general_path(seed in any::<u64>(), pool in 50u64..900) {
            // Thousands of lines of ids spread over the whole range (a few hundred distinct,
            // a third of them linked): duplicates of unlinked ids are told apart across every
            // bucket of the partition, as the general path tells them.
            let mut x = seed | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let id = |n: u64| {
                let v = u128::from(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64 | u128::from(n);
                VisitorId::from_u128(v % (VisitorId::MAX.as_u128() + 1)).unwrap()
            };
            let links: Vec<VisitorLink> = (0..pool)
                .filter(|n| n % 3 == 0)
                .map(|n| VisitorLink {
                    recipient: RecipientKey::Int(n as i64),
                    visitor: id(n),
                    last_seen: Timestamp::from_unix_seconds(0),
                })
                .collect();
            let mut body = String::new();
            for _ in 0..3000 {
                let n = next() % pool;
                let segments = ["a", "b", "c", "a,b", "b,c", "a,c", "a,a"][(next() % 7) as usize];
                body.push_str(&format!("{} {segments}\n", id(n)));
            }
            let (fast, general) = one_iter_file(&links, &body);
            prop_assert!(fast.report.segments["a"].unmatched.len() >= 2);
            prop_assert_eq!(fast, general);
        }
    }

    #[test]
    fn bunched_ids_flush_a_full_region_early_and_count_as_the_general_path() {
        // Every id in one region of the batch: it fills long before the batch does, and each
        // time it does the batch is probed. Many small batches, their unlinked keys counted
        // together at the end.
        let links: Vec<VisitorLink> = (0..300u128)
            .filter(|n| n % 3 == 0)
            .map(|n| VisitorLink {
                recipient: RecipientKey::Int(n as i64),
                visitor: VisitorId::from_u128(n).unwrap(),
                last_seen: Timestamp::from_unix_seconds(0),
            })
            .collect();
        let mut body = String::new();
        let mut x = 7u64;
        for _ in 0..6000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (x >> 33) % 300;
            let segments = ["a", "b", "a,b", "c,a", "b,c,a"][((x >> 20) % 5) as usize];
            body.push_str(&format!(
                "{} {segments}\n",
                VisitorId::from_u128(u128::from(n)).unwrap()
            ));
        }
        let (fast, general) = one_iter_file(&links, &body);
        let a = &fast.report.segments["a"];
        assert!(a.unmatched.values().sum::<u64>() > 1000, "{a:?}");
        assert_eq!(fast, general);
    }

    /// A usual line (id `1..=7`, segments from a small set) or, now and then, one with a
    /// removed column.
    fn usual_line() -> impl Strategy<Value = String> {
        let id = |n: u128| VisitorId::from_u128(n).unwrap().to_string();
        let segment = prop_oneof![Just("1"), Just("2"), Just("3"), Just("x"), Just("y")];
        (
            1u128..8,
            proptest::collection::vec(segment.clone(), 1..4),
            proptest::option::weighted(0.1, segment),
        )
            .prop_map(move |(n, segments, removed)| match removed {
                Some(removed) => format!("{} {} {removed}", id(n), segments.join(",")),
                None => format!("{} {}", id(n), segments.join(",")),
            })
    }

    proptest! {
        #[test]
        fn the_fast_path_changes_nothing_across_deliveries(
            files in proptest::collection::vec(proptest::collection::vec(usual_line(), 0..12), 1..4),
            policy in prop_oneof![
                Just(AmbiguityPolicy::Latest),
                Just(AmbiguityPolicy::All),
                Just(AmbiguityPolicy::Skip),
            ],
            many in any::<bool>(),
            stale in any::<bool>(),
            list_unmatched in any::<bool>(),
        ) {
            // Ids 1-5 linked; 3 to two recipients seen at different times, 4 to two at once.
            let link = |n: u128, rid: i64, seen: i64| VisitorLink {
                recipient: RecipientKey::Int(rid),
                visitor: VisitorId::from_u128(n).unwrap(),
                last_seen: Timestamp::from_unix_seconds(seen),
            };
            let mut links: Vec<VisitorLink> = (1..6u128).map(|n| link(n, n as i64 * 10, 5)).collect();
            links.push(link(3, 31, 9));
            links.push(link(4, 41, 5));
            let mut bodies: Vec<String> = files.iter().map(|lines| lines.join("\n")).collect();
            if many {
                // 70 segments seen early: later ones get dense indices from 64 on.
                let names: Vec<String> = (0..70).map(|i| format!("m{i}")).collect();
                let line = format!("{} {}", VisitorId::from_u128(6).unwrap(), names.join(","));
                let first = &mut bodies[0];
                let at = first.find('\n').map_or(first.len(), |i| i + 1);
                first.insert_str(at, &format!("{line}\n"));
            }
            let names: Vec<String> = (0..bodies.len())
                .map(|k| format!("S3_iter_{}.sync", 1_700_000_000_000u64 + k as u64 * 1000))
                .collect();
            let format = AudienceFormat::Outbound { mode: None };
            let audience: Vec<AudienceFile<'_>> = names
                .iter()
                .zip(&bodies)
                .map(|(name, body)| AudienceFile { name, bytes: body.as_bytes(), format: &format })
                .collect();
            let options = ImportOptions { list_unmatched, ..ImportOptions::default() };
            // Segment 1's last delivery is the second file's: the first is refused for it.
            let last_applied: BTreeMap<String, i64> = if stale {
                BTreeMap::from([("1".to_owned(), 1_700_000_001_000)])
            } else {
                BTreeMap::new()
            };
            let (fast, general) = both_ways(&links, &audience, policy, &options, &last_applied);
            prop_assert_eq!(fast, general);
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_changes_nothing(
            fragments in proptest::collection::vec(fragment(), 0..40),
            strict in any::<bool>(),
            list_unmatched in any::<bool>(),
            full in any::<bool>(),
        ) {
            let body: String = fragments.concat();
            let (fast, general) = run_both(body.as_bytes(), strict, list_unmatched, full);
            prop_assert_eq!(fast, general);
        }
    }
}
