// Checks run on arbitrary bytes, one function per reader. Included (with `include!`) by each
// fuzz target in `fuzz_targets/` and by the corpus replay test `tests/it/fuzz_corpus.rs`, so the
// fuzzers and `make test` check the same things. A check panics only when a reader breaks its
// contract: a panic inside a reader, or records + blank lines + bad records != lines.

#[allow(unused_imports)]
use audlink_core::format::{self, ReadOptions};
#[allow(unused_imports)]
use audlink_core::id::UserIdKind;

/// Number of lines of the decoded input, as the line-based readers count them.
#[allow(dead_code)]
fn line_count(file: &str, data: &[u8]) -> Option<u64> {
    let decoded = format::input::decode(file, data).ok()?;
    Some(format::input::Lines::new(&decoded).count() as u64)
}

/// The first line of `data`, as a candidate file name.
#[allow(dead_code)]
fn name_of(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len()).min(200);
    String::from_utf8_lossy(&data[..end]).into_owned()
}

#[allow(dead_code)]
pub(crate) fn onboarding(data: &[u8]) {
    use format::onboarding::{OnboardingFileName, read};
    if let Ok(name) = OnboardingFileName::parse(&name_of(data)) {
        assert_eq!(OnboardingFileName::parse(&name.render()).ok(), Some(name), "name round trip");
    }
    for kind in [UserIdKind::DeclaredId, UserIdKind::VisitorId] {
        let mut records = 0u64;
        let mut invalid = 0u64;
        if let Ok(summary) = read("fuzz.sync", data, kind, ReadOptions::default(), |r| {
            records += 1;
            assert!(r.line >= 1);
            invalid += u64::from(r.user.is_err());
        }) {
            assert_eq!(summary.invalid_ids, invalid);
            let lines = line_count("fuzz.sync", data).expect("a read that succeeded decodes");
            assert_eq!(summary.records, records);
            assert_eq!(records + summary.blank_lines + summary.bad.len() as u64, lines, "every line accounted for");
        }
        let _ = read("fuzz.sync", data, kind, ReadOptions { strict: true }, |_| {});
    }
}

#[allow(dead_code)]
pub(crate) fn outbound(data: &[u8]) {
    use format::outbound::{OutboundFileName, read};
    if let Ok(name) = OutboundFileName::parse(&name_of(data)) {
        assert_eq!(OutboundFileName::parse(&name.render()).ok(), Some(name), "name round trip");
    }
    for kind in [UserIdKind::DeclaredId, UserIdKind::VisitorId] {
        let mut records = 0u64;
        let mut invalid = 0u64;
        if let Ok(summary) = read("fuzz.sync", data, kind, ReadOptions::default(), |r| {
            records += 1;
            invalid += u64::from(r.user.is_err());
            for segment in r.segments().chain(r.removed()) {
                assert!(!segment.is_empty() && !segment.contains(',') && !segment.contains(' '));
            }
        }) {
            assert_eq!(summary.invalid_ids, invalid);
            let lines = line_count("fuzz.sync", data).expect("a read that succeeded decodes");
            assert_eq!(records + summary.blank_lines + summary.bad.len() as u64, lines, "every line accounted for");
        }
        let _ = read("fuzz.sync", data, kind, ReadOptions { strict: true }, |_| {});
    }
}

#[allow(dead_code)]
pub(crate) fn aep(data: &[u8]) {
    use format::aep::{AepColumns, AepFileName, read, write};
    if let Ok(name) = AepFileName::parse(&name_of(data)) {
        assert_eq!(AepFileName::parse(&name.render()).ok(), Some(name), "name round trip");
    }
    let layouts = [
        AepColumns { identity: "id".into(), status: Some("status".into()) },
        AepColumns { identity: "id".into(), status: None },
    ];
    for columns in &layouts {
        if let Ok(export) = read("fuzz.csv", data, columns, ReadOptions::default()) {
            assert_eq!(export.len() as u64, export.stats.rows);
            assert_eq!(export.bad.len() as u64, export.stats.rejected);
            // What was read writes back and reads back the same.
            let written = write("id", columns.status.as_deref(), export.rows());
            let again = read("again.csv", &written, columns, ReadOptions { strict: true }).expect("own output reads back");
            let pairs = |e: &format::aep::AepExport| e.rows().map(|r| (r.identity.to_owned(), r.status)).collect::<Vec<_>>();
            assert_eq!(pairs(&again), pairs(&export), "aep round trip");
        }
        let _ = read("fuzz.csv", data, columns, ReadOptions { strict: true });
    }
}

#[allow(dead_code)]
pub(crate) fn recipients(data: &[u8]) {
    use format::recipients::{read, write};
    if let Ok(file) = read("fuzz.csv", data, ReadOptions::default()) {
        assert_eq!(file.table.len() as u64, file.stats.rows);
        assert_eq!(file.lines.len(), file.table.len());
        assert!(file.lines.windows(2).all(|w| w[0] < w[1]), "row lines increase");
        assert_eq!(file.bad.len() as u64, file.stats.rejected);
        let again = read("again.csv", &write(&file.table), ReadOptions { strict: true }).expect("own output reads back");
        assert_eq!(again.table, file.table, "recipients round trip");
    }
    let _ = read("fuzz.csv", data, ReadOptions { strict: true });
}

#[allow(dead_code)]
pub(crate) fn links(data: &[u8]) {
    use format::links::{read, write};
    if let Ok(file) = read("fuzz.csv", data, ReadOptions::default()) {
        assert_eq!(file.links.len() as u64 + file.stats.merged, file.stats.rows);
        assert_eq!(file.bad.len() as u64, file.stats.rejected);
        assert!(file.links.windows(2).all(|w| (w[0].visitor, &w[0].recipient) < (w[1].visitor, &w[1].recipient)), "sorted, one per pair");
        let again = read("again.csv", &write(&file.links), ReadOptions { strict: true }).expect("own output reads back");
        assert_eq!(again.links, file.links, "links round trip");
    }
    let _ = read("fuzz.csv", data, ReadOptions { strict: true });
}
