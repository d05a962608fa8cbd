//! Packed tables: visitor links and recipients tables as flat little-endian columns, so the host
//! can hand the guest what it keeps in its database (and take back what the guest read from a
//! file) without one JSON object per row.
//!
//! Links (`links`):
//!
//! ```text
//! u32 count N
//! N × 16 bytes   visitor ids, u128 little-endian
//! N × 8 bytes    last seen, unix microseconds as i64; i64::MIN = unknown
//! …              the recipients, packed keys (see `packed`)
//! ```
//!
//! Recipients table (`table`):
//!
//! ```text
//! u32 rows N, u32 columns C
//! u32 L, then L bytes: the ids, packed keys
//! C × column: u32 name length, name (UTF-8), u32 type tag, then
//!     ⌈N/8⌉ bytes   null bitmap (bit i of byte i/8 set: row i is null)
//!     values        bool 1: ⌈N/8⌉ bytes bitmap; int 2: N × i64; float 3: N × f64;
//!                   date 4: N × i32 days since 1970-01-01; date-time 5: N × i64 µs;
//!                   string 6: N × u32 byte lengths, then the UTF-8 bytes
//! ```
//!
//! Values of null rows are zero (strings: empty) and ignored when read.

use audlink_core::format::links::VisitorLink;
use audlink_core::id::VisitorId;
use audlink_core::recipients::{
    Column, ColumnData, RecipientIds, RecipientKey, RecipientsTable, Strings,
};
use audlink_core::time::{Date, Timestamp};

use super::packed::{self, PackedError, Reader};

/// Packs visitor links.
pub fn encode_links(links: &[VisitorLink]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + links.len() * 32);
    out.extend_from_slice(&(links.len() as u32).to_le_bytes());
    for link in links {
        out.extend_from_slice(&link.visitor.as_u128().to_le_bytes());
    }
    for link in links {
        let seen = link.last_seen.map_or(i64::MIN, Timestamp::unix_micros);
        out.extend_from_slice(&seen.to_le_bytes());
    }
    let keys: Vec<RecipientKey> = links.iter().map(|l| l.recipient.clone()).collect();
    out.extend_from_slice(&packed::encode_keys(&keys));
    out
}

fn sized(r: &Reader<'_>, count: usize, width: usize) -> Result<usize, PackedError> {
    count
        .checked_mul(width)
        .ok_or_else(|| r.error("count too large"))
}

/// Reads packed visitor links.
pub fn decode_links(bytes: &[u8]) -> Result<Vec<VisitorLink>, PackedError> {
    let mut r = Reader::new("links", bytes);
    let count = r.u32()? as usize;
    let ids = r.take(sized(&r, count, 16)?)?;
    let seen = r.take(sized(&r, count, 8)?)?;
    let keys = packed::decode_keys(r.take(r.rest())?)?;
    if keys.len() != count {
        return Err(r.error(format!("{count} links but {} recipients", keys.len())));
    }
    ids.chunks_exact(16)
        .zip(seen.chunks_exact(8))
        .zip(keys)
        .enumerate()
        .map(|(i, ((id, seen), recipient))| {
            let value = u128::from_le_bytes(id.try_into().expect("16 bytes"));
            let visitor = VisitorId::from_u128(value)
                .ok_or_else(|| r.error(format!("link {i}: visitor id out of range")))?;
            let micros = i64::from_le_bytes(seen.try_into().expect("8 bytes"));
            let last_seen = match micros {
                i64::MIN => None,
                m => Some(
                    Timestamp::from_unix_micros(m)
                        .ok_or_else(|| r.error(format!("link {i}: last seen out of range")))?,
                ),
            };
            Ok(VisitorLink {
                recipient,
                visitor,
                last_seen,
            })
        })
        .collect()
}

const BOOL: u32 = 1;
const INT: u32 = 2;
const FLOAT: u32 = 3;
const DATE: u32 = 4;
const DATE_TIME: u32 = 5;
const STRING: u32 = 6;

fn bitmap(bits: impl Iterator<Item = bool>, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n.div_ceil(8)];
    for (i, bit) in bits.enumerate() {
        if bit {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

fn fixed<T: Copy, const W: usize>(
    values: &[Option<T>],
    zero: T,
    bytes: impl Fn(T) -> [u8; W],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&bitmap(values.iter().map(Option::is_none), values.len()));
    for value in values {
        out.extend_from_slice(&bytes(value.unwrap_or(zero)));
    }
}

/// Packs a recipients table.
pub fn encode_table(table: &RecipientsTable) -> Vec<u8> {
    let n = table.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(table.columns.len() as u32).to_le_bytes());
    let ids: Vec<RecipientKey> = (0..n).filter_map(|row| table.ids.key(row)).collect();
    let ids = packed::encode_keys(&ids);
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    out.extend_from_slice(&ids);
    for column in &table.columns {
        out.extend_from_slice(&(column.name.len() as u32).to_le_bytes());
        out.extend_from_slice(column.name.as_bytes());
        match &column.data {
            ColumnData::Bool(v) => {
                out.extend_from_slice(&BOOL.to_le_bytes());
                out.extend_from_slice(&bitmap(v.iter().map(Option::is_none), n));
                out.extend_from_slice(&bitmap(v.iter().map(|b| b.unwrap_or(false)), n));
            }
            ColumnData::Int(v) => {
                out.extend_from_slice(&INT.to_le_bytes());
                fixed(v, 0, i64::to_le_bytes, &mut out);
            }
            ColumnData::Float(v) => {
                out.extend_from_slice(&FLOAT.to_le_bytes());
                fixed(v, 0.0, f64::to_le_bytes, &mut out);
            }
            ColumnData::Date(v) => {
                out.extend_from_slice(&DATE.to_le_bytes());
                let days: Vec<Option<i32>> = v.iter().map(|d| d.map(Date::days)).collect();
                fixed(&days, 0, i32::to_le_bytes, &mut out);
            }
            ColumnData::DateTime(v) => {
                out.extend_from_slice(&DATE_TIME.to_le_bytes());
                let micros: Vec<Option<i64>> =
                    v.iter().map(|t| t.map(Timestamp::unix_micros)).collect();
                fixed(&micros, 0, i64::to_le_bytes, &mut out);
            }
            ColumnData::String(v) => {
                out.extend_from_slice(&STRING.to_le_bytes());
                out.extend_from_slice(&bitmap(v.iter().map(|s| s.is_none()), n));
                for value in v.iter() {
                    out.extend_from_slice(&(value.unwrap_or("").len() as u32).to_le_bytes());
                }
                for value in v.iter() {
                    out.extend_from_slice(value.unwrap_or("").as_bytes());
                }
            }
        }
    }
    out
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap[i / 8] & (1 << (i % 8)) != 0
}

fn read_fixed<T, const W: usize>(
    r: &mut Reader<'_>,
    n: usize,
    nulls: &[u8],
    value: impl Fn([u8; W]) -> Option<T>,
    what: &str,
) -> Result<Vec<Option<T>>, PackedError> {
    let data = r.take(sized(r, n, W)?)?;
    data.chunks_exact(W)
        .enumerate()
        .map(|(i, chunk)| {
            if bit(nulls, i) {
                return Ok(None);
            }
            value(chunk.try_into().expect("W bytes"))
                .map(Some)
                .ok_or_else(|| r.error(format!("row {i}: {what} out of range")))
        })
        .collect()
}

/// Reads a packed recipients table.
pub fn decode_table(bytes: &[u8]) -> Result<RecipientsTable, PackedError> {
    let mut r = Reader::new("table", bytes);
    let n = r.u32()? as usize;
    let columns = r.u32()? as usize;
    let ids_len = r.u32()? as usize;
    let keys = packed::decode_keys(r.take(ids_len)?)?;
    if keys.len() != n {
        return Err(r.error(format!("{n} rows but {} ids", keys.len())));
    }
    let ids = if keys.iter().all(|k| matches!(k, RecipientKey::Int(_))) {
        RecipientIds::Int(keys.iter().filter_map(RecipientKey::as_int).collect())
    } else {
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        RecipientIds::String(texts.iter().map(|s| Some(s.as_str())).collect())
    };
    let mut table = RecipientsTable {
        ids,
        columns: Vec::with_capacity(columns.min(r.rest())),
    };
    for c in 0..columns {
        let name_len = r.u32()? as usize;
        let name = std::str::from_utf8(r.take(name_len)?)
            .map_err(|_| r.error(format!("column {c}: name is not UTF-8")))?
            .to_owned();
        let tag = r.u32()?;
        let nulls = r.take(n.div_ceil(8))?.to_vec();
        let data = match tag {
            BOOL => {
                let values = r.take(n.div_ceil(8))?;
                ColumnData::Bool(
                    (0..n)
                        .map(|i| (!bit(&nulls, i)).then(|| bit(values, i)))
                        .collect(),
                )
            }
            INT => ColumnData::Int(read_fixed(
                &mut r,
                n,
                &nulls,
                |b| Some(i64::from_le_bytes(b)),
                "integer",
            )?),
            FLOAT => ColumnData::Float(read_fixed(
                &mut r,
                n,
                &nulls,
                |b| Some(f64::from_le_bytes(b)).filter(|x| x.is_finite()),
                "float",
            )?),
            DATE => ColumnData::Date(read_fixed(
                &mut r,
                n,
                &nulls,
                |b| Date::from_days(i32::from_le_bytes(b)),
                "date",
            )?),
            DATE_TIME => ColumnData::DateTime(read_fixed(
                &mut r,
                n,
                &nulls,
                |b| Timestamp::from_unix_micros(i64::from_le_bytes(b)),
                "date-time",
            )?),
            STRING => {
                let lengths = r.take(sized(&r, n, 4)?)?;
                let mut strings = Strings::new();
                for (i, len) in lengths.chunks_exact(4).enumerate() {
                    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                    let text = std::str::from_utf8(r.take(len)?)
                        .map_err(|_| r.error(format!("column {name:?} row {i}: not UTF-8")))?;
                    strings.push((!bit(&nulls, i)).then_some(text));
                }
                ColumnData::String(strings)
            }
            other => return Err(r.error(format!("column {name:?}: unknown type tag {other}"))),
        };
        table.columns.push(Column { name, data });
    }
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the last column", r.rest())));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audlink_core::format::recipients::{self, write};
    use audlink_core::format::{ReadOptions, links};
    use audlink_core::sample;

    #[test]
    fn a_generated_table_round_trips() {
        let table = sample::recipients_table(3, 500);
        let back = decode_table(&encode_table(&table)).unwrap();
        assert_eq!(write(&back), write(&table));
        assert_eq!(back, table);
    }

    #[test]
    fn text_ids_and_every_type_round_trip() {
        let csv = b"id,flag,n,x,day,at,name\nb,true,1,1.5,2024-01-02,2024-01-02T03:04:05Z,\xc3\xa9\na,,,,,,\n";
        let table = recipients::read("r.csv", csv, ReadOptions::default())
            .unwrap()
            .table;
        assert!(matches!(table.ids, RecipientIds::String(_)));
        let back = decode_table(&encode_table(&table)).unwrap();
        assert_eq!(back, table);
    }

    #[test]
    fn links_round_trip() {
        let sample = sample::visitor_sample(5, 300);
        let read = links::read("l.csv", &sample.links_csv, ReadOptions::default()).unwrap();
        let back = decode_links(&encode_links(&read.links)).unwrap();
        assert_eq!(back, read.links);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let table = sample::recipients_table(3, 20);
        let bytes = encode_table(&table);
        for cut in [0, 4, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_table(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let links = encode_links(&[]);
        assert!(decode_links(&links[..2]).is_err());
    }
}
