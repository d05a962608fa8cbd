//! Readers and writers of the files the platforms exchange.
//!
//! Every reader works on bytes: [`input::decode`] undoes gzip (detected by its magic bytes, every
//! member read), [`input::Lines`] splits lines without allocating, and problems are reported as
//! [`BadRecord`]s (the reader goes on) or a [`FileError`] (the file cannot be read; also the first
//! bad record under [`ReadOptions::strict`]). Every writer is deterministic and byte-exact; gzip
//! output uses a fixed level and mtime 0.
//!
//! | module | file |
//! |---|---|
//! | [`onboarding`] | Audience Manager inbound (onboarding) files `ftp_dpm_<DPID>_<ts>.sync` |
//! | [`outbound`] | Audience Manager outbound files `<UUID> <segs> <removed>` |
//! | [`aep`] | Experience Platform destination exports (CSV) |
//! | [`recipients`] | recipients CSV into a typed columnar table |
//! | [`links`] | visitor links CSV `recipient_id,visitor_id[,last_seen]` |
//! | [`csv`] | the RFC 4180 record splitter the CSV formats share |

pub mod aep;
pub mod csv;
pub mod input;
pub mod links;
pub mod onboarding;
pub mod outbound;
pub mod problem;
pub mod recipients;

pub use problem::{BadRecord, FileError, FileReason, ReadOptions, RecordReason};
