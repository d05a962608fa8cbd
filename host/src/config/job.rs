//! `[[job]]` tables of `audlink.toml`: what `audlink sync` runs, and how often.
//!
//! ```toml
//! [[job]]
//! name = "segments-in"          # unique; `audlink sync --job segments-in`
//! kind = "import"               # outbound audience files of the exchange → lists
//! every = "15m"                 # s, m, h, d, combined largest first: "1h30m"
//! datasource = "ecid"
//! prefix = "outbound/"          # the objects listed under it, each imported once
//! map = { "4321" = "vip" }      # segment → list (default list name: segment-<ID>)
//! # format = "auto"             # auto | outbound | aep | onboarding | ids (with segment)
//! # policy, identity_column, status_column, mode = "incremental" | "full": as `audience import`
//!
//! [[job]]
//! name = "vip-out"
//! kind = "export"               # a list or a rule's recipients → onboarding files uploaded
//! every = "1h"
//! datasource = "ecid"
//! list = "vip"                  # or: where = "age >= 30" with audience = "…"
//! trait_id = 4242
//! # mode = "sync"               # sync | overwrite | delta
//! # audience = "vip"            # default: the list's name
//! # gzip = false, max_lines = 1000000
//! # remote = true               # find or create trait and segment (default: with [remote])
//! ```
//!
//! Unknown keys are errors with their line, as elsewhere in the file; so is a key of the other
//! kind of job, a duplicate name, a data source the file does not define and an interval that is
//! not one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use audlink_core::datasource::{AmbiguityPolicy, DataSource};
use audlink_core::export::ExportMode;
use serde::Deserialize;

use super::ConfigError;
use crate::plan::{AepMode, Choice, ExportMembers, ExportPlan, ImportOptions, InputFormat};

/// The longest interval a job may have.
const MAX_EVERY: Duration = Duration::from_secs(366 * 86_400);

/// One `[[job]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobToml {
    name: String,
    kind: JobKind,
    every: String,
    datasource: String,
    // Import jobs.
    prefix: Option<String>,
    format: Option<String>,
    segment: Option<String>,
    map: Option<BTreeMap<String, String>>,
    policy: Option<AmbiguityPolicy>,
    identity_column: Option<String>,
    status_column: Option<String>,
    // Both (values differ per kind).
    mode: Option<String>,
    // Export jobs.
    list: Option<String>,
    #[serde(rename = "where")]
    rule: Option<String>,
    audience: Option<String>,
    trait_id: Option<u64>,
    gzip: Option<bool>,
    max_lines: Option<u64>,
    remote: Option<bool>,
}

/// Which way a job moves audiences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Exchange objects → lists.
    Import,
    /// A list or rule → onboarding files in the exchange.
    Export,
}

impl JobKind {
    /// `import` or `export`.
    pub fn code(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Export => "export",
        }
    }
}

/// A validated job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its unique name.
    pub name: String,
    /// How long after a run starts the next one is due.
    pub every: Duration,
    /// The line of its `[[job]]` header.
    pub line: usize,
    /// What it does.
    pub work: JobWork,
}

impl Job {
    /// Import or export.
    pub fn kind(&self) -> JobKind {
        match self.work {
            JobWork::Import(_) => JobKind::Import,
            JobWork::Export(_) => JobKind::Export,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWork {
    /// Import new objects under a prefix.
    Import(ImportJob),
    /// Export a list or a rule's recipients.
    Export(ExportJob),
}

/// An import job: the options of `audience import`, objects from the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    /// The key prefix listed.
    pub prefix: String,
    /// How objects are read (`auto`: from the name; other names are ignored) and applied.
    pub options: ImportOptions,
}

/// An export job: the plan of `audience export`, files uploaded to the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    /// What is exported and how (a rule's `now()` is the run's time; unchanged audiences
    /// are not sent again).
    pub plan: ExportPlan,
    /// Find or create the trait and segment on the platform.
    pub remote: bool,
}

/// Parses an interval: one or more `<number><unit>` with units `d`, `h`, `m`, `s`, largest
/// first, each once (`30s`, `15m`, `1h30m`, `1d`); positive, at most 366 days.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "every = {text:?} is not an interval ({why}; e.g. \"30s\", \"15m\", \"1h30m\", \"1d\")"
        ))
    };
    if text.is_empty() {
        return bad("it is empty");
    }
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_rank = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return bad("expected a whole number");
        }
        let Ok(n) = rest[..digits].parse::<u64>() else {
            return bad("the number is too large");
        };
        let (seconds, rank) = match rest[digits..].chars().next() {
            Some('d') => (86_400, 1),
            Some('h') => (3_600, 2),
            Some('m') => (60, 3),
            Some('s') => (1, 4),
            Some(_) => return bad("units are s, m, h and d"),
            None => return bad("a number needs a unit: s, m, h or d"),
        };
        if rank <= last_rank {
            return bad("units go largest first, each once");
        }
        last_rank = rank;
        match n.checked_mul(seconds).and_then(|s| total.checked_add(s)) {
            Some(sum) => total = sum,
            None => return bad("it is too long"),
        }
        rest = &rest[digits + 1..];
    }
    let every = Duration::from_secs(total);
    if every.is_zero() {
        return bad("it must be positive");
    }
    if every > MAX_EVERY {
        return bad("it is longer than 366 days");
    }
    Ok(every)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set in the table whose header starts at `span.start` (the
/// header's line when not found, e.g. a key of an inline table): the lines after the header up
/// to the next table header are searched.
fn key_line(text: &str, span: &Range<usize>, key: &str) -> usize {
    let start = span.start.min(text.len());
    let mut offset = start;
    for (i, line) in text[start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            break;
        }
        if let Some(after) = trimmed.strip_prefix(key)
            && after.trim_start().starts_with('=')
        {
            return line_of(text, offset);
        }
        offset += line.len();
    }
    line_of(text, start)
}

fn input_format(text: &str) -> Option<InputFormat> {
    InputFormat::parse_code(text).ok()
}

/// Validates the `[[job]]` tables of `text` (spans from its parse) against the data sources.
pub(super) fn validate(
    text: &str,
    raw: Vec<toml::Spanned<JobToml>>,
    datasources: &[DataSource],
    remote_table: bool,
) -> Result<Vec<Job>, ConfigError> {
    let mut jobs: Vec<Job> = Vec::with_capacity(raw.len());
    for spanned in raw {
        let span = spanned.span();
        let job = spanned.into_inner();
        let line = line_of(text, span.start);
        let name = job.name.clone();
        let at = |key: &str| key_line(text, &span, key);
        let fail = |key: &str, what: String| {
            Err(ConfigError(format!(
                "job {name:?}: {what} (line {})",
                at(key)
            )))
        };
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return fail(
                "name",
                "a job needs a name of visible characters".to_owned(),
            );
        }
        if let Some(first) = jobs.iter().find(|j| j.name == name) {
            return fail(
                "name",
                format!("the name is taken by the job at line {}", first.line),
            );
        }
        let every = match parse_every(&job.every) {
            Ok(every) => every,
            Err(e) => return fail("every", e),
        };
        if !datasources.iter().any(|d| d.name == job.datasource) {
            return fail(
                "datasource",
                format!("unknown data source {:?}", job.datasource),
            );
        }
        let import_keys = [
            ("prefix", job.prefix.is_some()),
            ("format", job.format.is_some()),
            ("segment", job.segment.is_some()),
            ("map", job.map.is_some()),
            ("policy", job.policy.is_some()),
            ("identity_column", job.identity_column.is_some()),
            ("status_column", job.status_column.is_some()),
        ];
        let export_keys = [
            ("list", job.list.is_some()),
            ("where", job.rule.is_some()),
            ("audience", job.audience.is_some()),
            ("trait_id", job.trait_id.is_some()),
            ("gzip", job.gzip.is_some()),
            ("max_lines", job.max_lines.is_some()),
            ("remote", job.remote.is_some()),
        ];
        let (foreign, other) = match job.kind {
            JobKind::Import => (&export_keys, "export"),
            JobKind::Export => (&import_keys, "import"),
        };
        if let Some((key, _)) = foreign.iter().find(|(_, set)| *set) {
            return fail(key, format!("{key} is a key of {other} jobs"));
        }
        let work = match job.kind {
            JobKind::Import => {
                let Some(prefix) = job.prefix else {
                    return fail("prefix", "an import job needs prefix".to_owned());
                };
                if let Err(e) = crate::exchange::check_key(prefix.trim_end_matches('/'))
                    && !prefix.is_empty()
                {
                    return fail("prefix", e.to_string());
                }
                let format = match job.format.as_deref().map(input_format) {
                    None => InputFormat::Auto,
                    Some(Some(format)) => format,
                    Some(None) => {
                        return fail(
                            "format",
                            "format is one of auto, outbound, aep, onboarding, ids".to_owned(),
                        );
                    }
                };
                if format == InputFormat::Ids && job.segment.is_none() {
                    return fail("format", "format = \"ids\" needs segment".to_owned());
                }
                let mode = match job.mode.as_deref().map(|m| (m, AepMode::parse_code(m))) {
                    None => AepMode::Incremental,
                    Some((_, Ok(mode))) => mode,
                    Some((other, Err(_))) => {
                        return fail(
                            "mode",
                            format!("mode {other:?} of an import job is full or incremental"),
                        );
                    }
                };
                JobWork::Import(ImportJob {
                    prefix,
                    options: ImportOptions {
                        datasource: job.datasource,
                        format,
                        segment: job.segment,
                        mappings: job.map.unwrap_or_default().into_iter().collect(),
                        policy: job.policy,
                        identity_column: job.identity_column,
                        status_column: job.status_column,
                        mode,
                    },
                })
            }
            JobKind::Export => {
                let members = match (job.list, job.rule) {
                    (Some(list), None) => ExportMembers::List(list),
                    (None, Some(rule)) => ExportMembers::Rule { rule, now: None },
                    (Some(_), Some(_)) => {
                        return fail("where", "give list or where, not both".to_owned());
                    }
                    (None, None) => {
                        return fail("kind", "an export job needs list or where".to_owned());
                    }
                };
                let audience = match (job.audience, &members) {
                    (Some(audience), _) => audience,
                    (None, ExportMembers::List(list)) => list.clone(),
                    (None, ExportMembers::Rule { .. }) => {
                        return fail(
                            "where",
                            "an export job with where needs audience".to_owned(),
                        );
                    }
                };
                let Some(trait_id) = job.trait_id else {
                    return fail("kind", "an export job needs trait_id".to_owned());
                };
                let mode = match job.mode.as_deref().map(|m| (m, ExportMode::parse_code(m))) {
                    None => ExportMode::Sync,
                    Some((_, Ok(mode))) => mode,
                    Some((other, Err(_))) => {
                        return fail(
                            "mode",
                            format!("mode {other:?} of an export job is sync, overwrite or delta"),
                        );
                    }
                };
                if job.max_lines == Some(0) {
                    return fail("max_lines", "max_lines must be positive".to_owned());
                }
                JobWork::Export(ExportJob {
                    plan: ExportPlan {
                        members,
                        audience,
                        datasource: job.datasource,
                        trait_id,
                        mode,
                        gzip: job.gzip.unwrap_or(false),
                        max_lines: job.max_lines,
                        timestamp: None,
                        skip_unchanged: true,
                    },
                    remote: job.remote.unwrap_or(remote_table),
                })
            }
        };
        jobs.push(Job {
            name,
            every,
            line,
            work,
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_strictly() {
        for (text, seconds) in [
            ("30s", 30),
            ("15m", 900),
            ("1h", 3_600),
            ("1h30m", 5_400),
            ("1d2h3m4s", 93_784),
            ("366d", 366 * 86_400),
        ] {
            assert_eq!(
                parse_every(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for (text, why) in [
            ("", "empty"),
            ("15", "needs a unit"),
            ("15 m", "units are"),
            ("1.5h", "units are"),
            ("m", "whole number"),
            ("0m", "positive"),
            ("30m1h", "largest first"),
            ("1m1m", "largest first"),
            ("367d", "366 days"),
            ("99999999999999999999s", "too large"),
            ("-5m", "whole number"),
        ] {
            let err = parse_every(text).unwrap_err();
            assert!(err.contains(why) && err.contains("e.g."), "{text}: {err}");
        }
    }

    const SOURCES: &str = "[[datasource]]\nname = \"ecid\"\nkind = \"visitor-id\"\ndpid = 21\n";

    fn parse(jobs: &str) -> Result<Vec<Job>, ConfigError> {
        super::super::Config::parse(&format!("{SOURCES}{jobs}")).map(|c| c.jobs)
    }

    #[test]
    fn jobs_of_both_kinds_parse_in_file_order() {
        let jobs = parse(
            "[[job]]\nname = \"in\"\nkind = \"import\"\nevery = \"15m\"\ndatasource = \"ecid\"\n\
             prefix = \"outbound/\"\nmap = { \"4321\" = \"vip\" }\nmode = \"full\"\n\
             [[job]]\nname = \"out\"\nkind = \"export\"\nevery = \"1h30m\"\ndatasource = \"ecid\"\n\
             where = \"age >= 30\"\naudience = \"grown-ups\"\ntrait_id = 7\nmode = \"delta\"\n",
        )
        .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].line, 5);
        assert_eq!(jobs[0].kind(), JobKind::Import);
        let JobWork::Import(import) = &jobs[0].work else {
            panic!("not an import")
        };
        assert_eq!(import.prefix, "outbound/");
        assert_eq!(
            import.options.mappings,
            [("4321".to_owned(), "vip".to_owned())]
        );
        assert_eq!(import.options.mode, AepMode::Full);
        assert_eq!(import.options.format, InputFormat::Auto);
        assert_eq!(jobs[1].every, Duration::from_secs(5_400));
        let JobWork::Export(export) = &jobs[1].work else {
            panic!("not an export")
        };
        assert_eq!(
            export.plan.members,
            ExportMembers::Rule {
                rule: "age >= 30".to_owned(),
                now: None
            }
        );
        assert_eq!(
            (export.plan.audience.as_str(), export.plan.trait_id),
            ("grown-ups", 7)
        );
        assert_eq!(export.plan.mode, ExportMode::Delta);
        assert!(
            !export.remote,
            "no [remote] table: no platform calls by default"
        );
    }

    #[test]
    fn bad_jobs_name_the_job_and_the_line() {
        let head = "[[job]]\nname = \"j\"\nevery = \"1h\"\ndatasource = \"ecid\"\n";
        for (body, wanted) in [
            (
                "kind = \"export\"\nlist = \"a\"\n",
                "needs trait_id (line 9)",
            ),
            (
                "kind = \"export\"\nwhere = \"true\"\ntrait_id = 1\n",
                "needs audience (line 10)",
            ),
            (
                "kind = \"export\"\nlist = \"a\"\nwhere = \"true\"\ntrait_id = 1\n",
                "not both (line 11)",
            ),
            (
                "kind = \"export\"\nlist = \"a\"\ntrait_id = 1\nmode = \"full\"\n",
                "sync, overwrite or delta (line 12)",
            ),
            ("kind = \"import\"\n", "needs prefix (line 5)"),
            (
                "kind = \"import\"\nprefix = \"a//b\"\n",
                "empty path segment",
            ),
            (
                "kind = \"import\"\nprefix = \"a/\"\nformat = \"csv\"\n",
                "format is one of",
            ),
            (
                "kind = \"import\"\nprefix = \"a/\"\nformat = \"ids\"\n",
                "needs segment",
            ),
            (
                "kind = \"import\"\nprefix = \"a/\"\ntrait_id = 3\n",
                "trait_id is a key of export jobs (line 11)",
            ),
            (
                "kind = \"import\"\nprefix = \"a/\"\nmode = \"delta\"\n",
                "full or incremental",
            ),
            ("kind = \"sideways\"\n", "sideways"),
        ] {
            let err = parse(&format!("{head}{body}")).unwrap_err().0;
            assert!(err.contains(wanted), "{body}: {err}");
        }
        let err = parse(
            &format!("{head}kind = \"import\"\nprefix = \"a/\"\n").replace("ecid\"", "nope\""),
        )
        .unwrap_err()
        .0;
        assert!(
            err.contains("unknown data source \"nope\" (line 8)"),
            "{err}"
        );
    }

    #[test]
    fn key_lines_are_found_inside_the_table() {
        let text = "a = 1\n[[job]]\nname = \"x\"\n  every = \"1m\"\n[[job]]\nkind = 1\n";
        let span = 6..13;
        assert_eq!(key_line(text, &span, "every"), 4);
        assert_eq!(key_line(text, &span, "name"), 3);
        assert_eq!(key_line(text, &span, "missing"), 2);
        assert_eq!(key_line(text, &span, "kind"), 2, "not in the next table");
    }
}
