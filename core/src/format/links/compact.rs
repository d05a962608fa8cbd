//! Visitor links in 32 bytes each ([`read_compact`]): the same file, rules, bad records and
//! merge as [`super::read`], without one [`VisitorLink`] (and one [`RecipientKey`] enum) per row.
//!
//! When every accepted `recipient_id` is a canonical decimal i64 a link holds the id itself
//! ([`CompactRecipients::Int`]); otherwise the file is read as [`super::read`] does and a link
//! holds the index of its key among the distinct keys. The order is the same as
//! [`super::read`]'s: by visitor id, then recipient key, one link per (visitor, recipient) pair.
//! The sort is a bucket pass on the high bits of the visitor id (ids are spread over
//! their range) followed by a sort of each bucket, so it stays correct for any distribution;
//! links are parsed straight into their final vector (no second copy). Files of the usual
//! column order (`recipient_id,visitor_id,last_seen`, integer times) are read a row at a time
//! in one pass; any row that does not fit that shape takes the field-by-field path. A file with
//! a quote or a CR (where a record may not be one line) is read record by record from the
//! first row once one is met: nothing but the usual rows' own bytes is scanned for them first.

use super::{Columns, LinksFile, LinksStats, VisitorLink, cells, columns};
use crate::digits;
use crate::format::csv::{CsvReader, Header};
use crate::format::input;
use crate::format::problem::{BadRecord, FileError, Problems, ReadOptions};
use crate::id::VisitorId;
use crate::recipients::{RecipientKey, canonical_i64};
use crate::sort;
use crate::time::Timestamp;

/// How the `recipient` field of [`CompactLink`]s is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactRecipients {
    /// Every recipient id is a canonical decimal i64: the field is the id.
    Int,
    /// Some are not: the field is an index into these keys (distinct, sorted).
    Keys(Vec<RecipientKey>),
}

/// One link in 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactLink {
    /// The visitor id as the (high, low) 64-bit halves of its `u128` value.
    pub visitor: [u64; 2],
    /// The recipient id, or an index into [`CompactRecipients::Keys`].
    pub recipient: i64,
    /// Last seen, unix microseconds; `i64::MIN` when unknown.
    pub last_seen: i64,
}

/// Visitor links, 32 bytes each, sorted by (visitor, recipient), one per pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactLinks {
    /// The links.
    pub links: Vec<CompactLink>,
    /// How to read their recipients.
    pub recipients: CompactRecipients,
    /// Rejected rows.
    pub bad: Vec<BadRecord>,
    /// Counts.
    pub stats: LinksStats,
}

impl CompactLinks {
    /// Number of links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The recipient of link `i`.
    pub fn recipient(&self, i: usize) -> RecipientKey {
        let field = self.links[i].recipient;
        match &self.recipients {
            CompactRecipients::Int => RecipientKey::Int(field),
            CompactRecipients::Keys(keys) => keys[field as usize].clone(),
        }
    }

    /// The links as [`VisitorLink`]s (what [`super::read`] gives).
    pub fn to_links(&self) -> Vec<VisitorLink> {
        (0..self.len())
            .map(|i| {
                let link = &self.links[i];
                let [hi, lo] = link.visitor;
                VisitorLink {
                    recipient: self.recipient(i),
                    visitor: VisitorId::from_u128(u128::from(hi) << 64 | u128::from(lo))
                        .expect("a parsed visitor id"),
                    last_seen: Timestamp::from_unix_micros(link.last_seen),
                }
            })
            .collect()
    }

    /// Converts read links.
    pub fn from_file(file: LinksFile) -> CompactLinks {
        let all_ints = file
            .links
            .iter()
            .all(|l| matches!(l.recipient, RecipientKey::Int(_)));
        let mut keys: Vec<RecipientKey> = Vec::new();
        if !all_ints {
            keys = file.links.iter().map(|l| l.recipient.clone()).collect();
            keys.sort_unstable();
            keys.dedup();
        }
        let links = file
            .links
            .iter()
            .map(|link| CompactLink {
                visitor: split(link.visitor),
                recipient: match (&link.recipient, all_ints) {
                    (RecipientKey::Int(v), true) => *v,
                    (key, _) => keys.binary_search(key).expect("collected above") as i64,
                },
                last_seen: link.last_seen.map_or(i64::MIN, Timestamp::unix_micros),
            })
            .collect();
        CompactLinks {
            links,
            recipients: if all_ints {
                CompactRecipients::Int
            } else {
                CompactRecipients::Keys(keys)
            },
            bad: file.bad,
            stats: file.stats,
        }
    }
}

fn split(visitor: VisitorId) -> [u64; 2] {
    let v = visitor.as_u128();
    [(v >> 64) as u64, v as u64]
}

/// Reads a visitor links CSV (plain or gzip) compactly; the same rules, bad records and merge
/// as [`super::read`].
pub fn read_compact(
    file: &str,
    bytes: &[u8],
    options: ReadOptions,
) -> Result<CompactLinks, FileError> {
    let data = input::decode(file, bytes)?;
    let mut reader = CsvReader::new(&data);
    let header = Header::read(file, &mut reader)?;
    let columns: Columns = columns(file, &header)?;
    let mut problems = Problems::new(file, options);
    let rows = match simple_rows(&data, &columns, reader.empty_lines(), &mut problems)? {
        Simple::Rows(links, empty_lines) => Some((links, empty_lines)),
        Simple::Text => None,
        Simple::Quoted => {
            // Record by record from the first row: the rows before the quote or CR read the
            // same; their bad records are found again.
            problems = Problems::new(file, options);
            csv_rows(&mut reader, &columns, data.len(), &mut problems)?
        }
    };
    let Some((mut links, empty_lines)) = rows else {
        // A text recipient id: read the general way.
        return super::read(file, bytes, options).map(CompactLinks::from_file);
    };
    let accepted = links.len() as u64;
    if sort_links(&mut links) {
        links.dedup_by(|later, kept| {
            let same = same_pair(later, kept);
            if same {
                kept.last_seen = kept.last_seen.max(later.last_seen);
            }
            same
        });
    }
    links.shrink_to_fit();
    let stats = LinksStats {
        rows: accepted,
        merged: accepted - links.len() as u64,
        rejected: problems.bad.len() as u64,
        empty_lines,
    };
    Ok(CompactLinks {
        links,
        recipients: CompactRecipients::Int,
        bad: problems.bad,
        stats,
    })
}

/// The rows of a file, record by record with `reader` (after the header): the links and the
/// number of empty lines; `None` when a recipient id is text. `len` is the file's size.
fn csv_rows(
    reader: &mut CsvReader<'_>,
    columns: &Columns,
    len: usize,
    problems: &mut Problems<'_>,
) -> Result<Option<(Vec<CompactLink>, u64)>, FileError> {
    // A valid row takes at least 40 bytes (id, comma, 38 digits): never a reallocation, and
    // pages reserved but not written cost nothing.
    let mut links = Vec::with_capacity(len / 40 + 1);
    while let Some(next) = reader.next_record() {
        match next.and_then(|record| cells(&record, columns)) {
            Ok((recipient, visitor, last_seen)) => {
                let Some(rid) = canonical_i64(recipient.as_bytes()) else {
                    return Ok(None);
                };
                links.push(CompactLink {
                    visitor: split(visitor),
                    recipient: rid,
                    last_seen: last_seen.map_or(i64::MIN, Timestamp::unix_micros),
                });
            }
            Err(bad) => problems.push(bad)?,
        }
    }
    Ok(Some((links, reader.empty_lines())))
}

/// What [`simple_rows`] made of a file.
enum Simple {
    /// Its links and empty lines.
    Rows(Vec<CompactLink>, u64),
    /// A recipient id is text (or a line starts with a byte-order mark): read the general way.
    Text,
    /// A quote or a CR: read record by record.
    Quoted,
}

/// The rows of a file while there is no quote or CR (every record is one line, every field its
/// raw bytes), after the header. The usual rows take no quote or CR (only digits, commas and
/// the line feed), so only the others are searched for one. Rows that fail a check are re-read
/// alone with [`CsvReader`] so their bad record is exactly the general one.
fn simple_rows(
    data: &[u8],
    columns: &Columns,
    empty_before: u64,
    problems: &mut Problems<'_>,
) -> Result<Simple, FileError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let body = data.strip_prefix(BOM).unwrap_or(data);
    // Skip the empty lines before the header and the header line.
    let leading = body.iter().take_while(|&&b| b == b'\n').count();
    let mut pos = match memchr::memchr(b'\n', &body[leading..]) {
        Some(end) => leading + end + 1,
        None => body.len(),
    };
    if memchr::memchr2(b'"', b'\r', &body[..pos]).is_some() {
        return Ok(Simple::Quoted);
    }
    let mut line = leading as u64 + 2;
    let mut empty = empty_before;
    let mut links = Vec::with_capacity(body.len() / 40 + 1);
    let mut commas = [0usize; 4];
    // The usual file: `recipient_id,visitor_id,last_seen` in that order.
    let usual = columns.width == 3
        && columns.recipient == 0
        && columns.visitor == 1
        && columns.last_seen == Some(2);
    while pos < body.len() {
        let rest = &body[pos..];
        if usual && let Some((link, taken)) = usual_row(rest) {
            links.push(link);
            pos += taken;
            line += 1;
            continue;
        }
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let raw = &rest[..end];
        if memchr::memchr2(b'"', b'\r', raw).is_some() {
            return Ok(Simple::Quoted);
        }
        pos += end + 1;
        let number = line;
        line += 1;
        if raw.is_empty() {
            empty += 1;
            continue;
        }
        if raw.starts_with(BOM) {
            return Ok(Simple::Text);
        }
        // Field boundaries.
        let mut count = 0;
        for at in memchr::memchr_iter(b',', raw) {
            if count == commas.len() {
                count += 1;
                break;
            }
            commas[count] = at;
            count += 1;
        }
        let fast = (count + 1 == columns.width).then(|| {
            let field = |i: usize| {
                let start = if i == 0 { 0 } else { commas[i - 1] + 1 };
                let end = if i == count { raw.len() } else { commas[i] };
                &raw[start..end]
            };
            let rid = digits_i64(field(columns.recipient))?;
            let visitor = visitor_halves(field(columns.visitor))?;
            let last_seen = match columns.last_seen.map(field) {
                None | Some(b"") => i64::MIN,
                Some(cell) => match digits_i64(cell) {
                    Some(seconds) => Timestamp::from_unix_seconds(seconds)?.unix_micros(),
                    None => super::last_seen(cell)?.unix_micros(),
                },
            };
            Some(CompactLink {
                visitor,
                recipient: rid,
                last_seen,
            })
        });
        match fast.flatten() {
            Some(link) => links.push(link),
            None => {
                // The general path, on this line alone.
                let mut reader = CsvReader::new(raw);
                let record = reader.next_record().expect("a non-empty line is a record");
                match record.and_then(|record| cells(&record, columns)) {
                    Ok((recipient, visitor, last_seen)) => {
                        match canonical_i64(recipient.as_bytes()) {
                            Some(rid) => links.push(CompactLink {
                                visitor: split(visitor),
                                recipient: rid,
                                last_seen: last_seen.map_or(i64::MIN, Timestamp::unix_micros),
                            }),
                            None => return Ok(Simple::Text),
                        }
                    }
                    Err(mut bad) => {
                        bad.line += number - 1;
                        problems.push(bad)?;
                    }
                }
            }
        }
    }
    Ok(Simple::Rows(links, empty))
}

/// The usual row at the start of `rest`, read in one pass: a recipient id, a visitor id and a
/// last-seen time in seconds, each as [`digits_i64`] and [`visitor_halves`] accept them,
/// separated by single commas, up to a line feed or the end of the input. The link and the bytes
/// taken (the line feed included); `None` for anything else (the general line reading then
/// decides, and gives the same link for the rows this accepts).
#[inline(always)]
fn usual_row(rest: &[u8]) -> Option<(CompactLink, usize)> {
    let (recipient, mut at) = leading_digits_i64(rest)?;
    if rest.get(at) != Some(&b',') {
        return None;
    }
    at += 1;
    let visitor = visitor_halves(rest.get(at..at + VisitorId::LEN)?)?;
    at += VisitorId::LEN;
    if rest.get(at) != Some(&b',') {
        return None;
    }
    at += 1;
    let (seconds, len) = leading_digits_i64(&rest[at..])?;
    at += len;
    if rest.get(at).is_some_and(|&b| b != b'\n') {
        return None;
    }
    let last_seen = Timestamp::from_unix_seconds(seconds)?.unix_micros();
    Some((
        CompactLink {
            visitor,
            recipient,
            last_seen,
        },
        at + 1,
    ))
}

/// The run of ASCII digits `bytes` starts with, as [`digits_i64`] reads it, and its length;
/// `None` when there is no digit or [`digits_i64`] would refuse the run. Read eight bytes at a
/// time (ids and times have up to 16 digits); longer runs and the last bytes of the input go
/// byte by byte.
#[inline(always)]
fn leading_digits_i64(bytes: &[u8]) -> Option<(i64, usize)> {
    const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let Some(first) = word(0) else {
        return leading_digits_bytewise(bytes);
    };
    let len = digits::leading_digits8(first);
    if len == 0 || (len > 1 && bytes[0] == b'0') {
        return None;
    }
    if len < 8 {
        return Some((digits::value_of_first(first, len) as i64, len));
    }
    let head = digits::value8(first);
    let Some(second) = word(8) else {
        return leading_digits_bytewise(bytes);
    };
    match digits::leading_digits8(second) {
        0 => Some((head as i64, 8)),
        8 => leading_digits_bytewise(bytes),
        more => {
            let tail = digits::value_of_first(second, more);
            Some(((head * POW10[more] + tail) as i64, 8 + more))
        }
    }
}

/// [`leading_digits_i64`] a byte at a time.
fn leading_digits_bytewise(bytes: &[u8]) -> Option<(i64, usize)> {
    // 19 digits never overflow a u64; 18 always fit an i64.
    let mut value = 0u64;
    let mut len = 0;
    for &b in bytes.iter().take(19) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value * 10 + u64::from(d);
        len += 1;
    }
    let leading_zero = len > 1 && bytes[0] == b'0';
    (len > 0 && len <= 18 && !leading_zero).then_some((value as i64, len))
}

/// A canonical non-negative integer of at most 18 digits (what [`canonical_i64`] gives for
/// it); `None` for anything else (which may still be canonical: ask [`canonical_i64`]).
#[inline]
fn digits_i64(cell: &[u8]) -> Option<i64> {
    if cell.is_empty() || cell.len() > 18 || (cell[0] == b'0' && cell.len() > 1) {
        return None;
    }
    let mut value = 0i64;
    for &b in cell {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(value)
}

/// The (high, low) halves of a valid visitor id (38 ASCII digits); `None` for anything else
/// (which [`VisitorId::parse`] then explains).
#[inline(always)]
pub(crate) fn visitor_halves(cell: &[u8]) -> Option<[u64; 2]> {
    let digits: &[u8; VisitorId::LEN] = cell.try_into().ok()?;
    VisitorId::from_digits(digits).map(VisitorId::halves)
}

/// Exclusive bound of the high half of a visitor id.
const HI_BOUND: u64 = ((10u128.pow(38) - 1) >> 64) as u64 + 1;

/// Whether two links are of the same (visitor, recipient) pair.
fn same_pair(a: &CompactLink, b: &CompactLink) -> bool {
    a.visitor == b.visitor && a.recipient == b.recipient
}

/// Whether sorted `links` hold a pair twice.
fn has_repeats(links: &[CompactLink]) -> bool {
    links.windows(2).any(|w| same_pair(&w[0], &w[1]))
}

/// Sorts links by (visitor, recipient) in place: an in-place MSD radix pass on the high bits of
/// the visitor id into at most 1024 buckets ([`sort::distribute`]; few enough for their write
/// heads to stay in cache and in the TLB), then [`sort_bucket`] on each. No second vector:
/// fresh pages cost more than the swaps. Whether a pair is there twice (noted by each bucket's
/// sort: no other pass when none is).
fn sort_links(links: &mut [CompactLink]) -> bool {
    let n = links.len();
    if n < 1024 {
        links.sort_unstable_by_key(link_order);
        return has_repeats(links);
    }
    let buckets = (n / 16384).next_power_of_two().min(1 << 10);
    // bucket(hi) = floor(hi * buckets / HI_BOUND), monotone in hi and below `buckets`.
    let scale = ((buckets as u128) << 64) / u128::from(HI_BOUND);
    let bucket = |link: &CompactLink| ((u128::from(link.visitor[0]) * scale) >> 64) as usize;
    let starts = sort::distribute(links, buckets, bucket);
    let (mut scratch, mut counts) = (Vec::new(), Vec::new());
    let mut repeats = false;
    for w in starts.windows(2) {
        repeats |= sort_bucket(&mut links[w[0]..w[1]], scale, &mut scratch, &mut counts);
    }
    // A pair's links share a visitor, so a bucket: no repeat spans two.
    repeats
}

/// The order of links: by visitor (as one integer: a two-instruction comparison), then
/// recipient.
#[inline]
fn link_order(r: &CompactLink) -> (u128, i64) {
    (
        u128::from(r.visitor[0]) << 64 | u128::from(r.visitor[1]),
        r.recipient,
    )
}

/// Runs of [`sort_bucket`] up to this many links are left to its insertion sort.
const SHORT_RUN: usize = 32;

/// Sorts links by (visitor, recipient), whose high halves are within `(min, max)`: a counting
/// pass on the high half (scaled over that range, so order preserving) into `scratch`, one
/// insertion sort over those short runs (a link only moves within its run) and the copy back;
/// a comparison sort when a run is long (ids bunched together). Whether a pair is there
/// twice (noted as the insertion sort meets it). `scratch` and `counts` are reused from call to
/// call.
fn sort_bucket(
    part: &mut [CompactLink],
    scale: u128,
    scratch: &mut Vec<CompactLink>,
    counts: &mut Vec<u32>,
) -> bool {
    if part.len() <= 64 {
        part.sort_unstable_by_key(link_order);
        return has_repeats(part);
    }
    // About two links per run: most runs need no sorting at all.
    let runs = (part.len() / 2).next_power_of_two();
    // The bits of `hi * scale` below the bucket's: monotone in `hi` within the bucket.
    let shift = 64 - runs.trailing_zeros();
    let run = |r: &CompactLink| ((u128::from(r.visitor[0]) * scale) as u64 >> shift) as usize;
    counts.clear();
    counts.resize(runs, 0);
    for r in part.iter() {
        counts[run(r)] += 1;
    }
    let mut sum = 0;
    let mut longest = 0;
    for count in counts.iter_mut() {
        longest = longest.max(*count);
        (*count, sum) = (sum, sum + *count);
    }
    if longest as usize > SHORT_RUN {
        part.sort_unstable_by_key(link_order);
        return has_repeats(part);
    }
    if scratch.len() < part.len() {
        scratch.resize(part.len(), part[0]);
    }
    let out = &mut scratch[..part.len()];
    for r in part.iter() {
        let head = &mut counts[run(r)];
        out[*head as usize] = *r;
        *head += 1;
    }
    let mut repeats = false;
    for i in 1..out.len() {
        let item = out[i];
        let k = link_order(&item);
        let mut j = i;
        while j > 0 && link_order(&out[j - 1]) > k {
            out[j] = out[j - 1];
            j -= 1;
        }
        out[j] = item;
        // A pair's second link lands right after the first.
        repeats |= j > 0 && link_order(&out[j - 1]) == k;
    }
    part.copy_from_slice(out);
    repeats
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{read, write};
    use super::*;

    fn compact_agrees(bytes: &[u8], options: ReadOptions) {
        let general = read("l.csv", bytes, options);
        let compact = read_compact("l.csv", bytes, options);
        match (general, compact) {
            (Ok(general), Ok(compact)) => {
                assert_eq!(compact.to_links(), general.links);
                assert_eq!(compact.bad, general.bad);
                assert_eq!(compact.stats, general.stats);
                let back = CompactLinks::from_file(general);
                assert_eq!(back, compact);
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("disagree: {a:?} / {b:?}"),
        }
    }

    #[test]
    fn agrees_on_a_large_sorted_input() {
        // Above the bucket threshold, with repeats, shared visitors and text-free ids.
        let mut out = b"recipient_id,visitor_id,last_seen\n".to_vec();
        let mut x: u64 = 7;
        for i in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = u128::from(x % 3000) * 33_333_333_333_333_333_333_333_333_333_333_u128;
            let v = VisitorId::from_u128(v % (VisitorId::MAX.as_u128() + 1)).unwrap();
            out.extend_from_slice(
                format!("{},{},{}\n", i % 700, v, 1_700_000_000 + (x >> 40) % 1000).as_bytes(),
            );
        }
        out.extend_from_slice(b"1,2,3\n");
        compact_agrees(&out, ReadOptions::default());
        let compact = read_compact("l.csv", &out, ReadOptions::default()).unwrap();
        assert_eq!(compact.recipients, CompactRecipients::Int);
        assert_eq!(compact.bad.len(), 1);
    }

    #[test]
    fn the_simple_path_agrees_on_bad_rows_and_edges() {
        let v = "12345678901234567890123456789012345678";
        let inputs = [
            format!(
                "\u{feff}\n\nrecipient_id,visitor_id,last_seen\n\n1,{v},\n2,{v}\n,{v},\n3,{v},x\n\
                 4,{v}9,\n5,{v},2026-01-31T12:00:00Z\n6,{v},99999999999999\n07,{v},\n8,{v},1,\n\n9,{v},5"
            ),
            format!("last_seen,visitor_id,recipient_id\n0,{v},-1\n\n\n"),
            format!("recipient_id,visitor_id\n1,{v}\n\u{feff}2,{v}\n"),
            format!("recipient_id,visitor_id\n1,{v}\n2,{v},\n1,{v}"),
            format!("recipient_id,visitor_id\n1,{v}\nb,{v}\n"),
            "recipient_id,visitor_id".to_owned(),
        ];
        for input in &inputs {
            for strict in [false, true] {
                compact_agrees(input.as_bytes(), ReadOptions { strict });
            }
        }
    }

    proptest! {
        #[test]
        fn fast_parsers_agree(value in 0..=VisitorId::MAX.as_u128(), n in any::<i64>(),
                              bytes in proptest::collection::vec(
                                  prop_oneof![Just(b'0'), Just(b'9'), Just(b'/'), Just(b':'), any::<u8>()],
                                  38..=38)) {
            let digits = VisitorId::from_u128(value).unwrap().to_digits();
            prop_assert_eq!(visitor_halves(&digits), Some(split(VisitorId::from_u128(value).unwrap())));
            prop_assert_eq!(visitor_halves(&bytes), VisitorId::parse(&bytes).ok().map(split));
            let text = n.to_string();
            if let Some(v) = digits_i64(text.as_bytes()) {
                prop_assert_eq!(Some(v), canonical_i64(text.as_bytes()));
            }
            if let Some(v) = digits_i64(&bytes[..(n.rem_euclid(20)) as usize]) {
                prop_assert_eq!(Some(v), canonical_i64(&bytes[..(n.rem_euclid(20)) as usize]));
            }
        }
    }

    proptest! {
        /// Eight bytes at a time reads what a byte at a time does: runs of 0 to 24 digits,
        /// leading zeros, and inputs that end anywhere.
        #[test]
        fn leading_digits_agree_with_the_bytewise_reading(
            bytes in proptest::collection::vec(
                prop_oneof![8 => b'0'..=b'9', 1 => Just(b','), 1 => any::<u8>()],
                0..26,
            ),
        ) {
            prop_assert_eq!(leading_digits_i64(&bytes), leading_digits_bytewise(&bytes));
        }
    }

    #[test]
    fn leading_digits_edges() {
        let read = |b: &[u8]| leading_digits_i64(b);
        assert_eq!(read(b"1700000000,x"), Some((1_700_000_000, 10)));
        assert_eq!(
            read(b"123456789012345678,"),
            Some((123_456_789_012_345_678, 18))
        );
        assert_eq!(read(b"1234567890123456789,"), None);
        assert_eq!(read(b"12345678,1234567890"), Some((12_345_678, 8)));
        assert_eq!(read(b"0,00000000000"), Some((0, 1)));
        assert_eq!(read(b"01,0000000000"), None);
        assert_eq!(read(b"12"), Some((12, 2)));
    }

    fn usual_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("12345678901234567890123456789012345678".to_owned()),
            1 => Just("1234567890123456789012345678901234567".to_owned()),
            4 => (0u64..30).prop_map(|n| n.to_string()),
            1 => Just("1700000000".to_owned()),
            1 => prop_oneof![Just("0"), Just("007"), Just("123456789012345678"),
                Just("1234567890123456789"), Just("99999999999999"), Just("-1"), Just("x"),
                Just(" "), Just("2026-01-31T12:00:00Z")].prop_map(str::to_owned),
            4 => Just(",".to_owned()),
            2 => Just("\n".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn the_usual_row_path_agrees_with_read(
            rows in proptest::collection::vec(
                (0u64..40, 0u64..2_000_000_000, proptest::collection::vec(usual_fragment(), 0..8)),
                0..30,
            ),
            strict in any::<bool>(),
        ) {
            // Usual rows, and rows of fragments around them.
            let mut bytes = b"recipient_id,visitor_id,last_seen\n".to_vec();
            for (recipient, seen, fragments) in rows {
                bytes.extend_from_slice(
                    format!("{recipient},12345678901234567890123456789012345678,{seen}\n").as_bytes(),
                );
                bytes.extend_from_slice(fragments.concat().as_bytes());
            }
            compact_agrees(&bytes, ReadOptions { strict });
        }

        #[test]
        fn leading_digits_read_as_digits_i64(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'0'), Just(b'7'), Just(b'9'), Just(b','), Just(b'\n'), any::<u8>()],
                0..24,
            ),
        ) {
            let run = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            prop_assert_eq!(
                leading_digits_i64(&bytes),
                digits_i64(&bytes[..run]).map(|v| (v, run))
            );
        }
    }

    #[test]
    fn usual_rows() {
        let v = "12345678901234567890123456789012345678";
        let row = |text: &str| {
            usual_row(text.as_bytes()).map(|(l, taken)| (l.recipient, l.last_seen, taken))
        };
        assert_eq!(row(&format!("7,{v},5\nmore")), Some((7, 5_000_000, 43)));
        // At the end of the input: one past it, as if a line feed followed.
        assert_eq!(
            row(&format!("0,{v},1700000000")),
            Some((0, 1_700_000_000_000_000, 52))
        );
        for other in [
            format!("07,{v},5\n"),
            format!("7,{v},\n"),
            format!("7,{v}\n"),
            format!("7,{v},5,\n"),
            format!("7,{v}1,5\n"),
            format!("7,{v},5 \n"),
            format!("7,{v},5\r\n"),
            format!("-7,{v},5\n"),
            format!("1234567890123456789,{v},5\n"),
            format!("7,{v},2026-01-31T12:00:00Z\n"),
        ] {
            assert_eq!(row(&other), None, "{other:?}");
        }
    }

    #[test]
    fn text_ids_keep_their_keys() {
        let v = "12345678901234567890123456789012345678";
        let input = format!("recipient_id,visitor_id\n7,{v}\nb,{v}\n");
        compact_agrees(input.as_bytes(), ReadOptions::default());
        let compact = read_compact("l.csv", input.as_bytes(), ReadOptions::default()).unwrap();
        assert_eq!(
            compact.recipients,
            CompactRecipients::Keys(vec![RecipientKey::Int(7), RecipientKey::String("b".into())])
        );
        assert_eq!(compact.recipient(1), RecipientKey::String("b".into()));
    }

    fn rows() -> impl Strategy<Value = Vec<(RecipientKey, u128, Option<i64>)>> {
        let recipient = prop_oneof![
            4 => (0i64..4).prop_map(RecipientKey::Int),
            2 => any::<i64>().prop_map(RecipientKey::Int),
            1 => "[a-c0-9]{1,3}".prop_map(|s| RecipientKey::parse(&s)),
        ];
        let visitor = prop_oneof![0u128..3, 0..=VisitorId::MAX.as_u128()];
        let seen =
            proptest::option::of(Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros());
        proptest::collection::vec((recipient, visitor, seen), 0..40)
    }

    proptest! {
        #[test]
        fn agrees_with_read(rows in rows(), noise in proptest::collection::vec(
            prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'\r'), Just(b'1'), Just(b'x')], 0..20,
        ), at in any::<proptest::sample::Index>(), strict in any::<bool>()) {
            let links: Vec<VisitorLink> = rows
                .into_iter()
                .map(|(recipient, v, seen)| VisitorLink {
                    recipient,
                    visitor: VisitorId::from_u128(v).unwrap(),
                    last_seen: seen.and_then(Timestamp::from_unix_micros),
                })
                .collect();
            // The noise anywhere: a quote or a CR after rows already read makes the reader
            // start again record by record.
            let mut bytes = write(&links);
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, noise);
            compact_agrees(&bytes, ReadOptions { strict });
        }
    }
    #[test]
    fn agrees_across_many_buckets_with_bad_and_odd_rows() {
        // Enough rows for several buckets, clustered ids (one bucket far fuller than the
        // rest), rejected rows, a negative recipient id (the general path) and padded ids.
        let mut out = b"recipient_id,visitor_id,last_seen\n".to_vec();
        let mut x: u64 = 11;
        for i in 0..60_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = if i % 3 == 0 {
                u128::from(x >> 50)
            } else {
                u128::from(x) * u128::from(x >> 7) % (VisitorId::MAX.as_u128() + 1)
            };
            let v = VisitorId::from_u128(v).unwrap();
            out.extend_from_slice(format!("{},{},{}\n", i % 5000, v, x >> 34).as_bytes());
            if i % 9973 == 0 {
                out.extend_from_slice(format!("x{i},{v},\n{i},{v},bad\n").as_bytes());
            }
        }
        let compact = read_compact("l.csv", &out, ReadOptions::default()).unwrap();
        assert!(compact.bad.len() > 5);
        compact_agrees(&out, ReadOptions::default());
        out.extend_from_slice(b"-5,00000000000000000000000000000000000007,\n");
        compact_agrees(&out, ReadOptions::default());
        out.extend_from_slice(b"6, 00000000000000000000000000000000000007 ,\n7,0,\n");
        compact_agrees(&out, ReadOptions::default());
    }

    #[test]
    fn a_quote_or_cr_after_many_rows_reads_as_the_general_way() {
        // Usual rows and bad ones (their bad records must not be counted twice), then a quoted
        // field across a line end, or CRLF line ends, or a quoted header.
        let mut rows = String::new();
        for i in 0..3000u64 {
            let v = VisitorId::from_u128(u128::from(i) * 0x9e37_79b9_7f4a_7c15_f39c).unwrap();
            rows.push_str(&format!("{i},{v},{}\n", 100 + i));
            if i % 1000 == 0 {
                rows.push_str(&format!("{i},{v},bad\n"));
            }
        }
        let v = "00000000000000000000000000000000000007";
        let header = "recipient_id,visitor_id,last_seen\n";
        for (head, tail) in [
            (header.to_owned(), format!("\"5\",{v},\"1\n2\"\n6,{v},7\n")),
            (header.to_owned(), format!("5,{v},1\r\n6,{v},7\r\n")),
            (
                header.replace("visitor_id", "\"visitor_id\""),
                format!("5,{v},1\n"),
            ),
            (header.replace('\n', "\r\n"), String::new()),
        ] {
            let text = format!("{head}{rows}{tail}");
            for strict in [false, true] {
                compact_agrees(text.as_bytes(), ReadOptions { strict });
            }
            let compact = read_compact("l.csv", text.as_bytes(), ReadOptions::default()).unwrap();
            assert!(compact.bad.len() >= 3, "{tail:?}");
        }
    }

    #[test]
    fn repeated_pairs_merge_in_a_large_file() {
        // Past the small-input sort: every pair twice (the later time wins), one pair thrice.
        let mut out = b"recipient_id,visitor_id,last_seen\n".to_vec();
        for round in 0..2u64 {
            for i in 0..3000u64 {
                let v = VisitorId::from_u128(u128::from(i) * 0x9e37_79b9_7f4a_7c15_f39c).unwrap();
                out.extend_from_slice(
                    format!("{},{v},{}\n", i % 700, 100 + round * 10 + i % 3).as_bytes(),
                );
            }
        }
        out.extend_from_slice(b"0,00000000000000000000000000000000000000,999\n");
        let compact = read_compact("l.csv", &out, ReadOptions::default()).unwrap();
        assert_eq!(compact.len(), 3000);
        assert_eq!(compact.stats.merged, 3001);
        assert!(compact.links.iter().all(|l| l.last_seen >= 110_000_000));
        compact_agrees(&out, ReadOptions::default());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_radix_sort_agrees_with_a_sort(
            rows in proptest::collection::vec((any::<u16>(), 0u64..3, 0i64..3), 1000..5000),
            shape in 0u8..3,
        ) {
            // Ids over the whole range (short runs, the insertion sort), bunched into a few
            // high halves (long runs, the comparison sort), or half and half. Drawn from 2^16
            // values: some pairs come twice.
            let hi = |k: u16| {
                let spread = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15) % HI_BOUND;
                match shape {
                    0 => spread,
                    1 => u64::from(k % 40),
                    _ if k.is_multiple_of(2) => spread,
                    _ => HI_BOUND / 2 + u64::from(k % 40),
                }
            };
            let mut links: Vec<CompactLink> = rows
                .iter()
                .map(|&(k, lo, recipient)| CompactLink { visitor: [hi(k), lo], recipient, last_seen: 0 })
                .collect();
            let mut expected = links.clone();
            expected.sort_by_key(|r| (r.visitor, r.recipient));
            let repeats = sort_links(&mut links);
            prop_assert_eq!(&links, &expected);
            prop_assert_eq!(repeats, has_repeats(&expected));
        }
    }

    #[test]
    fn the_radix_sort_tells_whether_a_pair_repeats() {
        let link = |k: u64, recipient: i64| CompactLink {
            visitor: [k.wrapping_mul(0x9e37_79b9_7f4a_7c15) % HI_BOUND, k],
            recipient,
            last_seen: 0,
        };
        let mut links: Vec<CompactLink> = (0..20_000).map(|k| link(k, 1)).collect();
        // The same visitor with another recipient is no repeat.
        links.push(link(7, 2));
        assert!(!sort_links(&mut links.clone()));
        links.push(link(12_345, 1));
        let mut sorted = links.clone();
        assert!(sort_links(&mut sorted));
        assert!(
            sorted
                .windows(2)
                .all(|w| link_order(&w[0]) <= link_order(&w[1]))
        );
    }
}
