//! The framing of ABI requests and responses (layouts in `wasm/ABI.md`).
//!
//! ```text
//! request   0  "ALNQ"            response   0  "ALNR"
//!           4  u32 ABI version              4  u32 ABI version
//!           8  u32 JSON length J            8  u32 status (0 ok, 1 error)
//!          12  u32 payload count P         12  u32 total length of the response
//!          16  JSON (J bytes)              16  u32 JSON length J
//!              P × u32 payload lengths     20  JSON (J bytes)
//!              the payloads back to back       u32 blob count B
//!                                              B × (u32 length, bytes)
//! ```
//!
//! All integers little-endian. A request's payloads are raw bytes (file contents as they are,
//! packed columns); the host can write each one straight into guest memory in chunks, so a file
//! is never held twice in the guest.

use super::packed::{PackedError, Reader};

/// The ABI version this build speaks.
pub const ABI_VERSION: u32 = 1;
/// First bytes of a request.
pub const REQUEST_MAGIC: &[u8; 4] = b"ALNQ";
/// First bytes of a response.
pub const RESPONSE_MAGIC: &[u8; 4] = b"ALNR";
/// Status of a response that carries a result.
pub const STATUS_OK: u32 = 0;
/// Status of a response that carries an error.
pub const STATUS_ERROR: u32 = 1;

/// A request: its JSON and its payloads, borrowed from the request bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The ABI version the caller speaks.
    pub version: u32,
    /// The JSON text.
    pub json: &'a [u8],
    /// The payloads, in order.
    pub payloads: Vec<&'a [u8]>,
}

/// The byte length of a request with this JSON and these payload lengths.
pub fn request_len(json_len: usize, payload_lens: &[usize]) -> usize {
    16 + json_len + 4 * payload_lens.len() + payload_lens.iter().sum::<usize>()
}

/// Writes the header, JSON and length table of a request into `out` (which must be exactly
/// [`request_len`] long) and returns the offset of each payload, for the caller to fill in.
pub fn write_request_head(out: &mut [u8], json: &[u8], payload_lens: &[usize]) -> Vec<usize> {
    out[0..4].copy_from_slice(REQUEST_MAGIC);
    out[4..8].copy_from_slice(&ABI_VERSION.to_le_bytes());
    out[8..12].copy_from_slice(&(json.len() as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(payload_lens.len() as u32).to_le_bytes());
    out[16..16 + json.len()].copy_from_slice(json);
    let mut at = 16 + json.len();
    for len in payload_lens {
        out[at..at + 4].copy_from_slice(&(*len as u32).to_le_bytes());
        at += 4;
    }
    payload_lens
        .iter()
        .map(|len| {
            let start = at;
            at += len;
            start
        })
        .collect()
}

/// The head of a request (header, JSON and length table): the payloads follow it back to back.
pub fn encode_request_head(json: &[u8], payload_lens: &[usize]) -> Vec<u8> {
    let mut head = vec![0; request_len(json.len(), &[]) + 4 * payload_lens.len()];
    let zeros = vec![0; payload_lens.len()];
    write_request_head(&mut head, json, &zeros);
    for (i, len) in payload_lens.iter().enumerate() {
        let at = 16 + json.len() + 4 * i;
        head[at..at + 4].copy_from_slice(&(*len as u32).to_le_bytes());
    }
    head
}

/// A whole request in one buffer (tests and small requests; the host streams large payloads).
pub fn encode_request(json: &[u8], payloads: &[&[u8]]) -> Vec<u8> {
    let lens: Vec<usize> = payloads.iter().map(|p| p.len()).collect();
    let mut out = vec![0; request_len(json.len(), &lens)];
    let offsets = write_request_head(&mut out, json, &lens);
    for (payload, start) in payloads.iter().zip(offsets) {
        out[start..start + payload.len()].copy_from_slice(payload);
    }
    out
}

/// Reads a request's framing.
pub fn decode_request(bytes: &[u8]) -> Result<Request<'_>, PackedError> {
    let mut r = Reader::new("request", bytes);
    if r.take(4)? != REQUEST_MAGIC {
        return Err(r.error("does not start with \"ALNQ\""));
    }
    let version = r.u32()?;
    let json_len = r.u32()? as usize;
    let count = r.u32()? as usize;
    let json = r.take(json_len)?;
    let mut lens = Vec::with_capacity(count.min(r.rest() / 4));
    for _ in 0..count {
        lens.push(r.u32()? as usize);
    }
    let mut payloads = Vec::with_capacity(count);
    for len in lens {
        payloads.push(r.take(len)?);
    }
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the last payload", r.rest())));
    }
    Ok(Request {
        version,
        json,
        payloads,
    })
}

/// A response: its status, JSON and blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The ABI version of the guest.
    pub version: u32,
    /// [`STATUS_OK`] or [`STATUS_ERROR`].
    pub status: u32,
    /// The JSON text.
    pub json: Vec<u8>,
    /// The blobs the JSON refers to by index.
    pub blobs: Vec<Vec<u8>>,
}

/// Writes a response.
pub fn encode_response(status: u32, json: &[u8], blobs: &[Vec<u8>]) -> Vec<u8> {
    let total = 24 + json.len() + blobs.iter().map(|b| 4 + b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(RESPONSE_MAGIC);
    out.extend_from_slice(&ABI_VERSION.to_le_bytes());
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    for blob in blobs {
        out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        out.extend_from_slice(blob);
    }
    debug_assert_eq!(out.len(), total);
    out
}

/// The total length a response header announces (its first 16 bytes are enough).
pub fn response_len(head: &[u8]) -> Result<usize, PackedError> {
    let mut r = Reader::new("response", head);
    if r.take(4)? != RESPONSE_MAGIC {
        return Err(r.error("does not start with \"ALNR\""));
    }
    r.take(8)?;
    Ok(r.u32()? as usize)
}

/// Reads a response.
pub fn decode_response(bytes: &[u8]) -> Result<Response, PackedError> {
    let total = response_len(bytes)?;
    let mut r = Reader::new("response", bytes);
    if total != bytes.len() {
        return Err(r.error(format!("announces {total} bytes, has {}", bytes.len())));
    }
    r.take(4)?;
    let version = r.u32()?;
    let status = r.u32()?;
    r.u32()?;
    let json_len = r.u32()? as usize;
    let json = r.take(json_len)?.to_vec();
    let count = r.u32()? as usize;
    let mut blobs = Vec::with_capacity(count.min(r.rest() / 4));
    for _ in 0..count {
        let len = r.u32()? as usize;
        blobs.push(r.take(len)?.to_vec());
    }
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the last blob", r.rest())));
    }
    Ok(Response {
        version,
        status,
        json,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_reads_back() {
        let bytes = encode_request(b"{\"abi\":1}", &[b"a,b\n", b"", b"xyz"]);
        assert_eq!(&bytes[..4], b"ALNQ");
        let head = encode_request_head(b"{\"abi\":1}", &[4, 0, 3]);
        assert_eq!(&bytes[..head.len()], &head[..]);
        let request = decode_request(&bytes).unwrap();
        assert_eq!(request.version, ABI_VERSION);
        assert_eq!(request.json, b"{\"abi\":1}");
        assert_eq!(request.payloads, vec![&b"a,b\n"[..], b"", b"xyz"]);
    }

    #[test]
    fn a_response_reads_back_and_announces_its_length() {
        let bytes = encode_response(STATUS_ERROR, b"{}", &[vec![1, 2], vec![]]);
        assert_eq!(response_len(&bytes[..16]).unwrap(), bytes.len());
        let response = decode_response(&bytes).unwrap();
        assert_eq!(response.status, STATUS_ERROR);
        assert_eq!(response.json, b"{}");
        assert_eq!(response.blobs, vec![vec![1, 2], vec![]]);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        let bytes = encode_request(b"{}", &[b"abc"]);
        let err = decode_request(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("3 bytes needed"), "{err}");
        assert!(
            decode_request(b"GET / HTTP/1.1")
                .unwrap_err()
                .to_string()
                .contains("ALNQ")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
