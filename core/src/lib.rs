//! `audlink-core`: the pure logic of audlink.
//!
//! Everything that decides what an identifier *is* lives here, so that the native host, the
//! wasmtime guest and the browser build give byte-identical answers:
//!
//! - [`id`]: the identifier kinds the platforms exchange — [`VisitorId`] (38-digit ECID / MID /
//!   AAM UUID, held as a `u128`), [`DeclaredId`] (DPUUID) and [`HashedId`] (a SHA-256 digest) —
//!   with parsers that reject bad values with an [`IdError`] carrying a stable reason code.
//! - [`normalize`]: named, versioned [`Profile`]s (`adobe-v1`, `google-v1`, `uid2-v1`,
//!   `meta-v1`) that turn raw emails and phone numbers into the exact normalized string and
//!   SHA-256 digest a platform expects, or into a reason why they cannot.
//! - [`format`](mod@format): readers and writers of the files the platforms exchange — Audience Manager
//!   onboarding and outbound files, Experience Platform destination exports, recipients and
//!   visitor links CSV — over bytes (gzip detected and undone here), reporting every bad record
//!   with its line, column and reason.
//! - [`recipients`]: the recipients table every part shares — typed columns, typed recipient
//!   ids ([`recipients::RecipientKey`]); [`format::recipients`] reads and writes it as CSV.
//! - [`time`]: calendar dates and UTC timestamps parsed from text; a time is always an input.
//!
//! The crate does no I/O and reads no clock, environment or randomness: every input is bytes or
//! plain values, every failure is a typed error. It builds for `wasm32-unknown-unknown`.

pub mod datasource;
mod digits;
pub mod export;
pub mod format;
pub mod id;
pub mod import;
pub mod normalize;
mod prefetch;
pub mod recipients;
pub mod rule;
#[cfg(feature = "gen")]
pub mod sample;
mod simd;
mod sort;
mod sorted;
pub mod time;

pub use id::{DeclaredId, HashedId, IdError, IdKind, IdReason, UserId, UserIdKind, VisitorId};
pub use normalize::{CountryCode, DigestEncoding, Normalized, PhoneOptions, Profile};
