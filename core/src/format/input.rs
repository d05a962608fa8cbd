//! Raw input handling shared by every reader: gzip detection and decompression, and a line
//! splitter that borrows from the input (no allocation per line).

use std::borrow::Cow;
use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::problem::{FileError, FileReason};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The UTF-8 byte-order mark, skipped at the start of an input.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Compression level of every gzip file audlink writes: fixed, so output is byte-identical on
/// every platform.
pub const GZIP_LEVEL: u32 = 6;

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The file's content: `bytes` as they are, or decompressed when they start like gzip. Every
/// gzip member is read (concatenated `.gz` parts are one file).
pub fn decode<'a>(file: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, FileError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    // A guess at the ratio, capped so a large input does not reserve gigabytes up front.
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(1 << 26));
    match MultiGzDecoder::new(bytes).read_to_end(&mut out) {
        Ok(_) => Ok(Cow::Owned(out)),
        Err(e) => Err(gzip_error(file, &e)),
    }
}

/// The error of file `file` for a failure to decompress it (also for a host that decompresses
/// a large file as a stream: the same words).
pub fn gzip_error(file: &str, error: &std::io::Error) -> FileError {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        FileError::new(
            file,
            FileReason::TruncatedGzip,
            "gzip stream ends early (truncated file)",
        )
    } else {
        FileError::new(file, FileReason::BadGzip, "not a valid gzip stream")
    }
}

/// Gzips `bytes` deterministically: fixed level, mtime 0, no file name.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    // Writing into a Vec cannot fail.
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// Returns a gzip encoder with the same fixed settings as [`gzip`], for streaming writers.
pub fn gzip_writer(out: Vec<u8>) -> GzEncoder<Vec<u8>> {
    flate2::GzBuilder::new()
        .mtime(0)
        .write(out, Compression::new(GZIP_LEVEL))
}

/// One line of an input, without its line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// The line's bytes, without `\n` or `\r\n` (and without a leading BOM on line 1).
    pub bytes: &'a [u8],
}

/// Iterator over the lines of a decoded input.
///
/// Lines end at `\n`; a `\r` right before it is dropped; a last line without `\n` is a line; a
/// UTF-8 byte-order mark at the very start is skipped. Empty lines are yielded (readers decide).
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    number: u64,
}

impl<'a> Lines<'a> {
    /// Lines of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Lines<'a> {
        Lines {
            rest: bytes.strip_prefix(BOM).unwrap_or(bytes),
            number: 0,
        }
    }

    /// Number of the last line returned (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.number
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        self.number += 1;
        let bytes = line.strip_suffix(b"\r").unwrap_or(line);
        Some(Line {
            number: self.number,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn lines(bytes: &[u8]) -> Vec<(u64, &[u8])> {
        Lines::new(bytes).map(|l| (l.number, l.bytes)).collect()
    }

    #[test]
    fn line_endings_bom_and_last_line() {
        assert_eq!(lines(b""), []);
        assert_eq!(lines(b"a"), [(1, &b"a"[..])]);
        assert_eq!(lines(b"a\n"), [(1, &b"a"[..])]);
        assert_eq!(
            lines(b"a\r\nb\n\nc"),
            [(1, &b"a"[..]), (2, b"b"), (3, b""), (4, b"c")]
        );
        assert_eq!(lines(b"\xEF\xBB\xBFa\nb"), [(1, &b"a"[..]), (2, b"b")]);
        // A lone CR is not a line ending.
        assert_eq!(lines(b"a\rb\n"), [(1, &b"a\rb"[..])]);
    }

    #[test]
    fn gzip_round_trip_and_multi_member() {
        let one = gzip(b"line 1\n");
        let two = gzip(b"line 2\n");
        assert!(is_gzip(&one));
        assert_eq!(decode("x.gz", &one).unwrap().as_ref(), b"line 1\n");
        let both = [one.clone(), two].concat();
        assert_eq!(decode("x.gz", &both).unwrap().as_ref(), b"line 1\nline 2\n");
        // Deterministic: same bytes every time, mtime zero.
        assert_eq!(gzip(b"line 1\n"), one);
        assert_eq!(&one[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn broken_gzip_is_a_file_error() {
        let full = gzip(&b"0123456789".repeat(1000));
        let truncated = &full[..full.len() / 2];
        let err = decode("audience.sync.gz", truncated).unwrap_err();
        assert_eq!(
            (err.reason, err.file.as_str()),
            (FileReason::TruncatedGzip, "audience.sync.gz")
        );
        let err = decode("x.gz", &full[..full.len() - 4]).unwrap_err();
        assert_eq!(err.reason, FileReason::TruncatedGzip);
        let mut garbage = full.clone();
        garbage[3] = 0xff; // reserved flag bits
        assert_eq!(
            decode("x.gz", &garbage).unwrap_err().reason,
            FileReason::BadGzip
        );
        assert_eq!(
            decode("x.gz", &[0x1f, 0x8b]).unwrap_err().reason,
            FileReason::TruncatedGzip
        );
    }

    #[test]
    fn plain_input_is_borrowed() {
        let bytes = b"plain";
        assert!(matches!(decode("x", bytes).unwrap(), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn lines_rejoin_to_the_input(text in "[a-z\r\n]{0,40}") {
            let joined: Vec<u8> = Lines::new(text.as_bytes()).flat_map(|l| [l.bytes, b"\n"].concat()).collect();
            let mut expected = text.replace("\r\n", "\n");
            if !expected.is_empty() && !expected.ends_with('\n') {
                if expected.ends_with('\r') {
                    expected.pop();
                }
                expected.push('\n');
            }
            prop_assert_eq!(String::from_utf8(joined).unwrap(), expected);
        }

        #[test]
        fn gzip_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let packed = gzip(&bytes);
            prop_assert_eq!(decode("x", &packed).unwrap().into_owned(), bytes);
        }
    }
}
