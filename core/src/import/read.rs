//! Reading each file kind into the run: the format switch. Outbound files of visitor ids take
//! the fast path (`fast.rs`) when they can, other outbound files `format::outbound`'s reader
//! (each record's adds batched, its removals looked up); onboarding files, Experience Platform
//! exports and plain id lists are read record by record into units. Every reader's counts
//! (records, blank lines, bad records) go into the report's totals.

use super::fast;
use super::index::MatchIndex;
use super::report::LocatedProblem;
use super::run::{Occurrence, Run};
use super::{AudienceFile, AudienceFormat, ImportError, IndexKey};
use crate::format::aep::{self, AepFileName, MembershipStatus};
use crate::format::input::{self, Lines};
use crate::format::onboarding::{self, Entry};
use crate::format::outbound;
use crate::format::{BadRecord, FileError, ReadOptions};

impl<'a, I: MatchIndex> Run<'a, I>
where
    I::Key: IndexKey,
{
    /// Reads `file` into the run (its adds and removals, as units), by its format; its counts
    /// and bad records go into the report.
    pub(super) fn read_file(&mut self, file: &AudienceFile<'a>) -> Result<(), ImportError> {
        let options = ReadOptions {
            strict: self.request.options.strict,
        };
        let kind = self.request.data_source.user_id_kind();
        let summary = match file.format {
            AudienceFormat::Outbound { .. } => {
                let summary = if kind == crate::id::UserIdKind::VisitorId
                    && self.fast_path
                    && let Some(summary) =
                        fast::read_visitor_outbound(file.name, file.bytes, options, self)?
                {
                    summary
                } else {
                    outbound::read(file.name, file.bytes, kind, options, |record| {
                        let occurrence =
                            self.occurrence(record.line, &record.user, record.raw_user);
                        self.outbound_record(&occurrence, record.segments(), record.removed());
                    })?
                };
                self.flush();
                (summary.records, summary.blank_lines, summary.bad)
            }
            AudienceFormat::Onboarding => {
                let summary = onboarding::read(file.name, file.bytes, kind, options, |record| {
                    let occurrence = self.occurrence(record.line, &record.user, record.raw_user);
                    let mut any = false;
                    for entry in record.entries {
                        match entry {
                            Entry::Add(id) => {
                                any = true;
                                self.add(&id.to_string(), &occurrence);
                            }
                            Entry::Remove(id) => {
                                any = true;
                                self.remove(&id.to_string(), &occurrence);
                            }
                            Entry::IntegrationCode(_) | Entry::KeyValue { .. } => {
                                self.report.totals.entries_ignored += 1;
                            }
                        }
                    }
                    if !any {
                        self.report.totals.lines_without_segments += 1;
                    }
                })?;
                (summary.records, summary.blank_lines, summary.bad)
            }
            AudienceFormat::Aep { columns, full } => {
                let base = file.name.rsplit(['/', '\\']).next().unwrap_or(file.name);
                let segment = AepFileName::parse(base)?.segment_id;
                let export = aep::read(file.name, file.bytes, columns, options)?;
                let mut bad = export.bad.clone();
                for row in export.rows() {
                    let key = self
                        .request
                        .data_source
                        .incoming_key(row.identity.as_bytes());
                    let occurrence = Occurrence {
                        line: row.line,
                        raw: row.identity.as_bytes(),
                        key,
                    };
                    match row.status {
                        Some(MembershipStatus::Exited) if *full => {
                            let record = BadRecord {
                                line: row.line,
                                column: None,
                                reason: crate::format::RecordReason::BadValue,
                                id_error: None,
                                detail: "an exited row in a full export".into(),
                            };
                            if options.strict {
                                return Err(FileError::strict(file.name, record).into());
                            }
                            bad.push(record);
                        }
                        Some(MembershipStatus::Exited) => self.remove(&segment, &occurrence),
                        _ => self.add(&segment, &occurrence),
                    }
                }
                bad.sort_by_key(|b| b.line);
                let records = export.len() as u64 - (bad.len() - export.bad.len()) as u64;
                (records, export.stats.empty_lines, bad)
            }
            AudienceFormat::IdList { segment } => {
                let data = input::decode(file.name, file.bytes)?;
                let mut records = 0;
                let mut blank = 0;
                for line in Lines::new(&data) {
                    if line.bytes.is_empty() {
                        blank += 1;
                        continue;
                    }
                    records += 1;
                    let key = self.request.data_source.incoming_key(line.bytes);
                    if options.strict
                        && let Err(e) = &key
                    {
                        let record = BadRecord::bad_id(line.number, line.bytes, 0, e.clone());
                        return Err(FileError::strict(file.name, record).into());
                    }
                    self.add(
                        segment,
                        &Occurrence {
                            line: line.number,
                            raw: line.bytes,
                            key,
                        },
                    );
                }
                (records, blank, Vec::new())
            }
        };
        let (records, blank, bad) = summary;
        let totals = &mut self.report.totals;
        totals.records += records;
        totals.blank_lines += blank;
        totals.bad_records += bad.len() as u64;
        totals.lines += records + blank + bad.len() as u64;
        self.report
            .problems
            .extend(bad.into_iter().map(|record| LocatedProblem {
                file: file.name.to_owned(),
                record,
            }));
        Ok(())
    }
}
