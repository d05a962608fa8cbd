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
//! | [`recipients`] | recipients CSV into a typed columnar table ([`crate::recipients`]) |
//! | [`links`] | visitor links CSV `recipient_id,visitor_id[,last_seen]` |
//! | [`csv`] | the RFC 4180 record splitter the CSV formats share |
//!
//! [`detect`] says which audience file a name is (onboarding, Experience Platform export or
//! Audience Manager outbound): the one place that decision is made.

pub mod aep;
pub mod csv;
pub mod input;
pub mod links;
pub mod onboarding;
pub mod outbound;
pub mod problem;
pub mod recipients;

pub use problem::{BadRecord, FileError, FileReason, ReadOptions, RecordReason};

/// An audience file kind a file name can say ([`detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// audlink's own onboarding file ([`onboarding::OnboardingFileName`], `ftp_dpm_…`).
    Onboarding,
    /// An Experience Platform destination export ([`aep::AepFileName`],
    /// `<dest>_segment<ID>_<ts>[_<part>].csv`).
    Aep,
    /// An Audience Manager outbound file ([`outbound::OutboundFileName`]).
    Outbound,
}

impl FileKind {
    /// The kind's name: `"onboarding"`, `"aep"` or `"outbound"`.
    pub fn code(self) -> &'static str {
        match self {
            FileKind::Onboarding => "onboarding",
            FileKind::Aep => "aep",
            FileKind::Outbound => "outbound",
        }
    }
}

/// What an audience file's (base) name says it is, tried in this order: an onboarding file
/// name, an Experience Platform export name, an Audience Manager outbound name (whose grammar
/// is all optional, so it goes last); `None` for any other name (a plain id list, say).
pub fn detect(name: &str) -> Option<FileKind> {
    if onboarding::OnboardingFileName::parse(name).is_ok() {
        Some(FileKind::Onboarding)
    } else if aep::AepFileName::parse(name).is_ok() {
        Some(FileKind::Aep)
    } else if outbound::OutboundFileName::parse(name).is_ok() {
        Some(FileKind::Outbound)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{FileKind, detect};

    #[test]
    fn names_are_detected_in_order() {
        for (name, kind) in [
            ("ftp_dpm_21_1767225600.sync", Some(FileKind::Onboarding)),
            (
                "ftp_dpm_21_1767225600.overwrite",
                Some(FileKind::Onboarding),
            ),
            ("Demo_segment77_20260101120000.csv", Some(FileKind::Aep)),
            ("Dest_segment1_20240229235959_2.csv", Some(FileKind::Aep)),
            (
                "S3_1234_iter_1486140844000.sync.gz",
                Some(FileKind::Outbound),
            ),
            (
                "S3_1234_20914_XYZCustomer_iter_1486140844000.sync.gz",
                Some(FileKind::Outbound),
            ),
            ("1234_1486140844000.sync", Some(FileKind::Outbound)),
            ("ids.txt", None),
            ("", None),
        ] {
            assert_eq!(detect(name), kind, "{name}");
        }
        assert_eq!(
            [FileKind::Onboarding, FileKind::Aep, FileKind::Outbound].map(FileKind::code),
            ["onboarding", "aep", "outbound"]
        );
    }
}
