//! Plans: what a front door asks the application layer ([`crate::app`]) to do, in the domain's
//! terms. The command line, the server and `audlink sync` each turn their own input (flags, a
//! JSON body, a `[[job]]` table) into one of these before any work starts, so the workflows never
//! see a flag parser, an HTTP request or TOML, and the three front doors cannot drift apart.
//!
//! This module depends on nothing of the host: plans are plain values (the configuration's job
//! tables hold them too).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use audlink_core::datasource::AmbiguityPolicy;
use audlink_core::export::ExportMode;
use audlink_core::time::Timestamp;

/// An option with a fixed set of lower-case codes, read the same way by every front door
/// (flags, JSON bodies, `[[job]]` tables).
pub trait Choice: Sized + Copy + 'static {
    /// Every value, in the order help texts list them.
    const ALL: &'static [Self];

    /// The value's code.
    fn code(self) -> &'static str;

    /// The value of `code`, or an error naming the codes there are.
    fn parse_code(code: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.code() == code)
            .ok_or_else(|| {
                let codes: Vec<&str> = Self::ALL.iter().map(|v| v.code()).collect();
                format!("{code:?} is not one of {}", codes.join(", "))
            })
    }
}

/// How an import reads its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// From the file name (outbound, Experience Platform export, onboarding).
    #[default]
    Auto,
    /// Audience Manager outbound file.
    Outbound,
    /// Experience Platform destination export.
    Aep,
    /// audlink's own onboarding file.
    Onboarding,
    /// One identifier per line, all members of one segment.
    Ids,
}

impl Choice for InputFormat {
    const ALL: &'static [InputFormat] = &[
        InputFormat::Auto,
        InputFormat::Outbound,
        InputFormat::Aep,
        InputFormat::Onboarding,
        InputFormat::Ids,
    ];

    fn code(self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Outbound => "outbound",
            InputFormat::Aep => "aep",
            InputFormat::Onboarding => "onboarding",
            InputFormat::Ids => "ids",
        }
    }
}

/// Whether an Experience Platform export is the whole segment or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AepMode {
    /// The file is the whole segment.
    Full,
    /// The file holds changes (the default).
    #[default]
    Incremental,
}

impl Choice for AepMode {
    const ALL: &'static [AepMode] = &[AepMode::Full, AepMode::Incremental];

    fn code(self) -> &'static str {
        match self {
            AepMode::Full => "full",
            AepMode::Incremental => "incremental",
        }
    }
}

impl Choice for ExportMode {
    const ALL: &'static [ExportMode] =
        &[ExportMode::Sync, ExportMode::Overwrite, ExportMode::Delta];

    fn code(self) -> &'static str {
        ExportMode::code(self)
    }
}

impl Choice for AmbiguityPolicy {
    const ALL: &'static [AmbiguityPolicy] = &[
        AmbiguityPolicy::Latest,
        AmbiguityPolicy::All,
        AmbiguityPolicy::Skip,
    ];

    fn code(self) -> &'static str {
        match self {
            AmbiguityPolicy::Latest => "latest",
            AmbiguityPolicy::All => "all",
            AmbiguityPolicy::Skip => "skip",
        }
    }
}

/// The options of an import: which data source, how the files are read, where segments go.
/// The same for `audience import`, `POST /api/imports` and a sync import job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The data source the identifiers belong to (a `[[datasource]]` of the configuration).
    pub datasource: String,
    /// Segment → list (default list name: `segment-<ID>`).
    pub mappings: Vec<(String, String)>,
    /// Ambiguity policy, overriding the data source's.
    pub policy: Option<AmbiguityPolicy>,
    /// Experience Platform exports: the identity column (default: detected).
    pub identity_column: Option<String>,
    /// Experience Platform exports: the status column (default: detected).
    pub status_column: Option<String>,
    /// Experience Platform exports: full or incremental.
    pub mode: AepMode,
    /// How the files are read.
    pub format: InputFormat,
    /// With [`InputFormat::Ids`]: the segment the ids belong to.
    pub segment: Option<String>,
}

impl ImportOptions {
    /// Options with the defaults of `audience import` for `datasource`.
    pub fn new(datasource: impl Into<String>) -> ImportOptions {
        ImportOptions {
            datasource: datasource.into(),
            mappings: Vec::new(),
            policy: None,
            identity_column: None,
            status_column: None,
            mode: AepMode::Incremental,
            format: InputFormat::Auto,
            segment: None,
        }
    }
}

/// One input of an import: a file streamed into the guest, and the name the core reads it by
/// (names carry the format, segment and delivery time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInput {
    /// The name (a file's base name, an object key's last segment, an upload's name).
    pub name: String,
    /// Where the bytes are.
    pub path: PathBuf,
}

impl ImportInput {
    /// The input of a file on disk, named by its base name.
    pub fn file(path: impl Into<PathBuf>) -> ImportInput {
        let path = path.into();
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ImportInput { name, path }
    }
}

/// An import: its options and its inputs (all applied in one transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    /// How the inputs are read and applied.
    pub options: ImportOptions,
    /// The files.
    pub inputs: Vec<ImportInput>,
}

/// Who an export sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportMembers {
    /// A list's members.
    List(String),
    /// The recipients a segment rule selects, with the value of its `now()` (absent: the
    /// current time when the export runs).
    Rule {
        /// The rule's text.
        rule: String,
        /// The value of `now()`.
        now: Option<Timestamp>,
    },
}

/// An export of a list or a rule's recipients as a shared audience's onboarding files. Where
/// the files go (a folder, the exchange, a job's folder) is the front door's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPlan {
    /// Who is exported.
    pub members: ExportMembers,
    /// The audience's name (its snapshot is kept under it).
    pub audience: String,
    /// The data source whose identifiers are sent.
    pub datasource: String,
    /// The trait the members are added to.
    pub trait_id: u64,
    /// How the audience changes.
    pub mode: ExportMode,
    /// Gzip the files.
    pub gzip: bool,
    /// At most this many lines per file (default: the onboarding limit).
    pub max_lines: Option<u64>,
    /// The unix timestamp in the file names (default: now; a resumed run reuses its own).
    pub timestamp: Option<u64>,
    /// Deliver nothing when the audience would not change (sync's export jobs).
    pub skip_unchanged: bool,
}

impl ExportPlan {
    /// The audience name an export of `members` gets without an explicit one: the list's.
    /// A rule has none (the front doors ask for one).
    pub fn default_audience(members: &ExportMembers) -> Option<&str> {
        match members {
            ExportMembers::List(list) => Some(list),
            ExportMembers::Rule { .. } => None,
        }
    }
}

/// A segment rule's preview: count, sample and breakdown in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPlan {
    /// The rule's text.
    pub rule: String,
    /// Recipients to show at most.
    pub sample: usize,
    /// A column to break the selection down by.
    pub by: Option<String>,
    /// The value of `now()`.
    pub now: Timestamp,
    /// How long each database query may run.
    pub deadline: Duration,
}

/// Reads `text` as a `T` ([`Choice::parse_code`]); the shape `FromStr` callers expect.
pub fn parse<T: Choice>(text: &str) -> Result<T, String> {
    T::parse_code(text)
}

impl FromStr for InputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<InputFormat, String> {
        InputFormat::parse_code(s)
    }
}

impl FromStr for AepMode {
    type Err = String;

    fn from_str(s: &str) -> Result<AepMode, String> {
        AepMode::parse_code(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_its_value() {
        fn round_trip<T: Choice + PartialEq + std::fmt::Debug>() {
            for &value in T::ALL {
                assert_eq!(T::parse_code(value.code()), Ok(value));
            }
        }
        round_trip::<InputFormat>();
        round_trip::<AepMode>();
        round_trip::<ExportMode>();
        round_trip::<AmbiguityPolicy>();
    }

    #[test]
    fn an_unknown_code_names_the_known_ones() {
        let err = InputFormat::parse_code("csv").unwrap_err();
        assert_eq!(
            err,
            "\"csv\" is not one of auto, outbound, aep, onboarding, ids"
        );
        assert!(
            AmbiguityPolicy::parse_code("Latest").is_err(),
            "codes are case-sensitive"
        );
    }

    #[test]
    fn an_input_is_named_by_its_base_name() {
        let input = ImportInput::file("/data/in/S3_1_iter_1.sync");
        assert_eq!(input.name, "S3_1_iter_1.sync");
        assert_eq!(input.path, PathBuf::from("/data/in/S3_1_iter_1.sync"));
    }
}
