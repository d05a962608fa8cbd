//! The framing of ABI requests and responses (layouts in `wasm/ABI.md`).
//!
//! ```text
//! request   0  "ALNQ"            response   0  "ALNR"
//!           4  u32 ABI version              4  u32 ABI version
//!           8  u32 JSON length J            8  u32 status (0 ok, 1 error)
//!          12  u32 payload count P         12  u32 total length of the response
//!          16  JSON (J bytes)              16  u32 JSON length J
//!              P × (u32 address,           20  JSON (J bytes)
//!                   u32 length)                u32 blob count B
//!                                              B × (u32 length, bytes)
//! ```
//!
//! All integers little-endian. A request's payloads (file contents as they are, packed columns)
//! are separate buffers from `audlink_alloc`, which the caller fills — in chunks, straight from a
//! file — and hands over with the call: the module frees each one as soon as the last op that
//! reads it is done, so a file is never held twice and a loaded file does not stay resident while
//! later ops run.

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

/// The head of a request: its JSON and where its payloads are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The ABI version the caller speaks.
    pub version: u32,
    /// The JSON text.
    pub json: &'a [u8],
    /// `(address, length)` of each payload buffer, in order.
    pub payloads: Vec<(u32, u32)>,
}

/// The byte length of a request head with this JSON and this many payloads.
pub fn request_head_len(json_len: usize, payloads: usize) -> usize {
    16 + json_len + 8 * payloads
}

/// Writes a request head: header, JSON and the `(address, length)` of each payload.
pub fn encode_request_head(json: &[u8], payloads: &[(u32, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(request_head_len(json.len(), payloads.len()));
    out.extend_from_slice(REQUEST_MAGIC);
    out.extend_from_slice(&ABI_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    for (address, len) in payloads {
        out.extend_from_slice(&address.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

/// Reads a request head.
pub fn decode_request_head(bytes: &[u8]) -> Result<RequestHead<'_>, PackedError> {
    let mut r = Reader::new("request", bytes);
    if r.take(4)? != REQUEST_MAGIC {
        return Err(r.error("does not start with \"ALNQ\""));
    }
    let version = r.u32()?;
    let json_len = r.u32()? as usize;
    let count = r.u32()? as usize;
    let json = r.take(json_len)?;
    let mut payloads = Vec::with_capacity(count.min(r.rest() / 8));
    for _ in 0..count {
        payloads.push((r.u32()?, r.u32()?));
    }
    if r.rest() != 0 {
        return Err(r.error(format!("{} bytes after the payload table", r.rest())));
    }
    Ok(RequestHead {
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
    fn a_request_head_reads_back() {
        let head = encode_request_head(b"{\"abi\":1}", &[(64, 4), (1, 0), (1024, 3)]);
        assert_eq!(&head[..4], b"ALNQ");
        assert_eq!(head.len(), request_head_len(9, 3));
        let request = decode_request_head(&head).unwrap();
        assert_eq!(request.version, ABI_VERSION);
        assert_eq!(request.json, b"{\"abi\":1}");
        assert_eq!(request.payloads, vec![(64, 4), (1, 0), (1024, 3)]);
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
        let bytes = encode_request_head(b"{}", &[(8, 3)]);
        let err = decode_request_head(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("4 bytes needed"), "{err}");
        assert!(
            decode_request_head(b"GET / HTTP/1.1")
                .unwrap_err()
                .to_string()
                .contains("ALNQ")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request_head(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
