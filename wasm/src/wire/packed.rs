//! Packed columns: recipient keys, identifiers and per-row codes as flat little-endian bytes,
//! never one JSON object per row.
//!
//! Recipient keys (`keys`):
//!
//! ```text
//! u32 tag     1 = every key is an integer, 2 = text keys
//! u32 count
//! tag 1:      count × i64
//! tag 2:      count × u32 byte lengths, then the UTF-8 bytes of every key back to back
//! ```
//!
//! Text keys are read in canonical form: `"5"` is the integer key 5 (see
//! [`RecipientKey::canonical`]). Lines (`lines`): UTF-8 text, every item followed by `\n`.
//! An import's unmatched identifiers (`unmatched`): see [`encode_unmatched`].

use std::collections::HashMap;
use std::sync::Arc;

use audlink_core::id::IdReason;
use audlink_core::import::{RecipientKeys, UnmatchedId, UnmatchedReason};
use audlink_core::recipients::RecipientKey;

/// Tag of an all-integer key column.
pub const KEYS_INT: u32 = 1;
/// Tag of a text key column.
pub const KEYS_TEXT: u32 = 2;

/// Why packed bytes cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packed {what}: {detail}")]
pub struct PackedError {
    /// What was being read (`keys`, `lines`, …).
    pub what: &'static str,
    /// What is wrong.
    pub detail: String,
}

fn error(what: &'static str, detail: impl Into<String>) -> PackedError {
    PackedError {
        what,
        detail: detail.into(),
    }
}

/// Packs recipient keys: integers when every key is one, text otherwise.
pub fn encode_keys(keys: &[RecipientKey]) -> Vec<u8> {
    let ints = keys
        .iter()
        .all(|k| matches!(k, RecipientKey::Int(_)))
        .then(|| keys.iter().filter_map(RecipientKey::as_int));
    encode(ints, keys.iter().map(ToString::to_string), keys.len())
}

/// [`encode_keys`] of an import's list of keys (integers straight from their compact form).
pub fn encode_key_list(keys: &RecipientKeys) -> Vec<u8> {
    encode(keys.ints(), keys.iter().map(|k| k.to_string()), keys.len())
}

/// The packed form of `count` keys: `ints` when every key is an integer, else `texts`.
fn encode(
    ints: Option<impl Iterator<Item = i64>>,
    texts: impl Iterator<Item = String>,
    count: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + count * 8);
    let tag = if ints.is_some() { KEYS_INT } else { KEYS_TEXT };
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    if let Some(ints) = ints {
        for v in ints {
            out.extend_from_slice(&v.to_le_bytes());
        }
    } else {
        let texts: Vec<String> = texts.collect();
        for text in &texts {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        }
        for text in &texts {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

/// A little-endian reader over a byte slice that reports short input as a [`PackedError`].
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Reader<'a> {
        Reader { what, bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], PackedError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            error(
                self.what,
                format!(
                    "{} bytes needed at offset {}, {} left",
                    n,
                    self.at,
                    self.rest()
                ),
            )
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, PackedError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub(crate) fn rest(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn error(&self, detail: impl Into<String>) -> PackedError {
        error(self.what, detail)
    }
}

/// Reads packed recipient keys.
pub fn decode_keys(bytes: &[u8]) -> Result<Vec<RecipientKey>, PackedError> {
    let mut r = Reader::new("keys", bytes);
    let tag = r.u32()?;
    let count = r.u32()? as usize;
    let keys = match tag {
        KEYS_INT => {
            let data = r.take(
                count
                    .checked_mul(8)
                    .ok_or_else(|| r.error("count too large"))?,
            )?;
            data.chunks_exact(8)
                .map(|c| RecipientKey::Int(i64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect()
        }
        KEYS_TEXT => {
            let lengths = r.take(
                count
                    .checked_mul(4)
                    .ok_or_else(|| r.error("count too large"))?,
            )?;
            let mut keys = Vec::with_capacity(count);
            for (i, len) in lengths.chunks_exact(4).enumerate() {
                let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                let text = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| r.error(format!("key {i} is not UTF-8")))?;
                keys.push(RecipientKey::parse(text));
            }
            keys
        }
        other => return Err(r.error(format!("unknown tag {other}"))),
    };
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the last key", r.rest())));
    }
    Ok(keys)
}

/// Packs text items one per line.
pub fn encode_lines<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|s| s.as_ref().len() + 1).sum());
    for item in items {
        out.extend_from_slice(item.as_ref().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Reads text items packed one per line.
pub fn decode_lines(bytes: &[u8]) -> Result<Vec<String>, PackedError> {
    let text = std::str::from_utf8(bytes).map_err(|_| error("lines", "not UTF-8"))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| error("lines", "the last item has no line end"))?;
    Ok(body.split('\n').map(str::to_owned).collect())
}

/// Packs an import's unmatched identifiers (see the module documentation of
/// [`crate::wire`]'s `unmatched`): file and segment names once each, then one fixed-size row
/// per identifier and the identifiers' bytes.
///
/// ```text
/// u32 files,    then per file:    u32 byte length, UTF-8 name
/// u32 segments, then per segment: u32 byte length, UTF-8 name
/// u32 rows,     then per row:     u32 file, u32 segment, u64 line, u8 reason, u8 rule (0: none),
///                                 u32 byte length of the identifier
/// the identifiers' bytes back to back
/// ```
///
/// `reason` is the index in [`UnmatchedReason::ALL`], `rule` one more than the index in
/// [`IdReason::ALL`].
pub fn encode_unmatched(rows: &[UnmatchedId]) -> Vec<u8> {
    /// Numbers names in order of first appearance; rows share their names' `Arc`s, so a
    /// repeat of the previous row's name costs a pointer comparison, not a hash.
    #[derive(Default)]
    struct Names<'r> {
        order: Vec<&'r str>,
        index: HashMap<&'r str, u32>,
        last: Option<(&'r Arc<str>, u32)>,
    }
    impl<'r> Names<'r> {
        fn number(&mut self, name: &'r Arc<str>) -> u32 {
            if let Some((last, i)) = self.last
                && Arc::ptr_eq(last, name)
            {
                return i;
            }
            let order = &mut self.order;
            let i = *self.index.entry(name).or_insert_with(|| {
                order.push(name);
                order.len() as u32 - 1
            });
            self.last = Some((name, i));
            i
        }
    }
    let mut files = Names::default();
    let mut segments = Names::default();
    let numbered: Vec<(u32, u32)> = rows
        .iter()
        .map(|r| (files.number(&r.file), segments.number(&r.segment)))
        .collect();
    let (files, segments) = (files.order, segments.order);
    let ids: usize = rows.iter().map(|r| r.id.len()).sum();
    let mut out = Vec::with_capacity(12 + rows.len() * 22 + ids);
    for names in [&files, &segments] {
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for name in names.iter() {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
    }
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (row, (file, segment)) in rows.iter().zip(numbered) {
        out.extend_from_slice(&file.to_le_bytes());
        out.extend_from_slice(&segment.to_le_bytes());
        out.extend_from_slice(&row.line.to_le_bytes());
        let reason = UnmatchedReason::ALL.iter().position(|&r| r == row.reason);
        out.push(reason.expect("every reason is listed") as u8);
        let rule = row
            .rule
            .and_then(|rule| IdReason::ALL.iter().position(|&r| r == rule));
        out.push(rule.map_or(0, |i| i as u8 + 1));
        out.extend_from_slice(&(row.id.len() as u32).to_le_bytes());
    }
    for row in rows {
        out.extend_from_slice(row.id.as_bytes());
    }
    out
}

/// Reads unmatched identifiers packed by [`encode_unmatched`].
pub fn decode_unmatched(bytes: &[u8]) -> Result<Vec<UnmatchedId>, PackedError> {
    let mut r = Reader::new("unmatched", bytes);
    let mut names = || -> Result<Vec<Arc<str>>, PackedError> {
        let count = r.u32()? as usize;
        let mut names = Vec::with_capacity(count.min(r.rest()));
        for _ in 0..count {
            let len = r.u32()? as usize;
            let name =
                std::str::from_utf8(r.take(len)?).map_err(|_| r.error("a name is not UTF-8"))?;
            names.push(Arc::from(name));
        }
        Ok(names)
    };
    let files = names()?;
    let segments = names()?;
    let count = r.u32()? as usize;
    let fixed = r.take(
        count
            .checked_mul(22)
            .ok_or_else(|| r.error("count too large"))?,
    )?;
    let mut rows = Vec::with_capacity(count);
    for (i, row) in fixed.chunks_exact(22).enumerate() {
        let u32_at = |at: usize| u32::from_le_bytes(row[at..at + 4].try_into().expect("4 bytes"));
        let name = |names: &[Arc<str>], index: u32, what: &str| {
            names
                .get(index as usize)
                .cloned()
                .ok_or_else(|| r.error(format!("row {i}: {what} {index} does not exist")))
        };
        let file = name(&files, u32_at(0), "file")?;
        let segment = name(&segments, u32_at(4), "segment")?;
        let line = u64::from_le_bytes(row[8..16].try_into().expect("8 bytes"));
        let reason = *UnmatchedReason::ALL
            .get(row[16] as usize)
            .ok_or_else(|| r.error(format!("row {i}: unknown reason {}", row[16])))?;
        let rule = match row[17] {
            0 => None,
            n => Some(
                *IdReason::ALL
                    .get(n as usize - 1)
                    .ok_or_else(|| r.error(format!("row {i}: unknown rule {n}")))?,
            ),
        };
        let len = u32_at(18) as usize;
        rows.push((file, segment, line, reason, rule, len));
    }
    let mut out = Vec::with_capacity(count);
    for (file, segment, line, reason, rule, len) in rows {
        let id = String::from_utf8_lossy(r.take(len)?).into_owned();
        out.push(UnmatchedId {
            file,
            line,
            segment,
            id,
            reason,
            rule,
        });
    }
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the last identifier", r.rest())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unmatched_rows_round_trip() {
        let rows = vec![
            UnmatchedId {
                file: "a.sync".into(),
                line: 7,
                segment: "77".into(),
                id: "not-an-id".into(),
                reason: UnmatchedReason::InvalidFormat,
                rule: Some(IdReason::ALL[3]),
            },
            UnmatchedId {
                file: "b.sync".into(),
                line: u64::MAX,
                segment: "77".into(),
                id: String::new(),
                reason: UnmatchedReason::ALL[1],
                rule: None,
            },
            UnmatchedId {
                file: "a.sync".into(),
                line: 1,
                segment: "é".into(),
                id: "12345678901234567890123456789012345678".into(),
                reason: UnmatchedReason::ALL[3],
                rule: None,
            },
        ];
        let bytes = encode_unmatched(&rows);
        assert_eq!(decode_unmatched(&bytes).unwrap(), rows);
        assert_eq!(decode_unmatched(&encode_unmatched(&[])).unwrap(), []);
        for cut in 0..bytes.len() {
            assert!(decode_unmatched(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_unmatched(&extra).is_err());
    }

    #[test]
    fn integer_keys_pack_as_i64() {
        let keys = vec![RecipientKey::Int(5), RecipientKey::Int(-1)];
        let bytes = encode_keys(&keys);
        assert_eq!(bytes.len(), 8 + 16);
        assert_eq!(&bytes[..4], &KEYS_INT.to_le_bytes());
        assert_eq!(decode_keys(&bytes).unwrap(), keys);
    }

    #[test]
    fn text_keys_read_back_canonical() {
        let keys = vec![
            RecipientKey::String("a".into()),
            RecipientKey::Int(7),
            RecipientKey::String("é".into()),
        ];
        let bytes = encode_keys(&keys);
        assert_eq!(&bytes[..4], &KEYS_TEXT.to_le_bytes());
        assert_eq!(decode_keys(&bytes).unwrap(), keys);
    }

    #[test]
    fn short_or_trailing_bytes_are_errors() {
        let bytes = encode_keys(&[RecipientKey::Int(1)]);
        let err = decode_keys(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("8 bytes needed"), "{err}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(
            decode_keys(&long)
                .unwrap_err()
                .to_string()
                .contains("after the last key")
        );
        let mut bad_tag = bytes;
        bad_tag[0] = 9;
        assert!(
            decode_keys(&bad_tag)
                .unwrap_err()
                .to_string()
                .contains("unknown tag 9")
        );
    }

    #[test]
    fn lines_round_trip_and_need_a_final_newline() {
        let items = vec!["a".to_owned(), String::new(), "c".to_owned()];
        assert_eq!(decode_lines(&encode_lines(&items)).unwrap(), items);
        assert_eq!(decode_lines(b"").unwrap(), Vec::<String>::new());
        assert!(decode_lines(b"a").is_err());
    }

    proptest! {
        #[test]
        fn keys_round_trip(keys in proptest::collection::vec(
            prop_oneof![any::<i64>().prop_map(RecipientKey::Int),
                        "[a-z0-9]{0,6}".prop_map(|s| RecipientKey::parse(&s))], 0..20)) {
            prop_assert_eq!(decode_keys(&encode_keys(&keys)).unwrap(), keys);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_keys(&bytes);
            let _ = decode_lines(&bytes);
        }
    }
}
