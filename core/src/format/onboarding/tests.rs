use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::id::{DeclaredId, IdReason, VisitorId};

/// Owned copy of a record, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    line: u64,
    user: String,
    id_problem: Option<BadRecord>,
    entries: Vec<String>,
}

fn show(entry: &Entry<'_>) -> String {
    match entry {
        Entry::Add(id) => format!("+{id}"),
        Entry::Remove(id) => format!("-{id}"),
        Entry::IntegrationCode(code) => format!("ic:{code}"),
        Entry::KeyValue { key, value } => format!("{key}={value:?}"),
    }
}

/// The id as text, or `!<reason>` for an invalid one.
fn user_text(user: &Result<UserId<'_>, BadRecord>) -> String {
    match user {
        Ok(id) => id.to_string(),
        Err(bad) => format!(
            "!{}",
            bad.id_error.as_ref().map_or("?", |e| e.reason.code())
        ),
    }
}

fn read_all(bytes: &[u8], kind: UserIdKind) -> Result<(Vec<Owned>, ReadSummary), FileError> {
    let mut records = Vec::new();
    let summary = read("in.sync", bytes, kind, ReadOptions::default(), |r| {
        records.push(Owned {
            line: r.line,
            user: user_text(&r.user),
            id_problem: r.user.as_ref().err().cloned(),
            entries: r.entries.iter().map(show).collect(),
        })
    })?;
    Ok((records, summary))
}

fn reasons(summary: &ReadSummary) -> Vec<(u64, RecordReason)> {
    summary.bad.iter().map(|b| (b.line, b.reason)).collect()
}

#[test]
fn documented_examples() {
    let text = "user1\td_sid=24, d_sid=26, d_sid=27\nuser2\tproduct = tablet, ic=52\nuser3\t24:0,25:-1,d_unsid=26,27\n";
    let (records, summary) = read_all(text.as_bytes(), UserIdKind::DeclaredId).unwrap();
    assert!(summary.bad.is_empty(), "{:?}", summary.bad);
    assert_eq!(
        records
            .iter()
            .map(|r| (r.user.as_str(), r.entries.join(" ")))
            .collect::<Vec<_>>(),
        [
            ("user1", "+24 +26 +27".to_owned()),
            ("user2", "product=\"tablet\" ic:52".to_owned()),
            ("user3", "-24 -25 -26 +27".to_owned()),
        ]
    );
}

#[test]
fn quoted_values_hold_commas_and_equals() {
    let (records, summary) = read_all(
        b"u\tq=\"a,b=c\", k = \" spaced \"\n",
        UserIdKind::DeclaredId,
    )
    .unwrap();
    assert!(summary.bad.is_empty());
    assert_eq!(records[0].entries, ["q=\"a,b=c\"", "k=\" spaced \""]);
}

#[test]
fn line_endings_bom_and_blank_lines() {
    let text = b"\xEF\xBB\xBFa\td_sid=1\r\n\r\nb\td_sid=2";
    let (records, summary) = read_all(text, UserIdKind::DeclaredId).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.line, r.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "a"), (3, "b")]
    );
    assert_eq!(summary.blank_lines, 1);
}

#[test]
fn a_line_with_no_entries_is_a_record() {
    let (records, _) = read_all(b"a\t\nb\t  \n", UserIdKind::DeclaredId).unwrap();
    assert_eq!(
        records.iter().map(|r| r.entries.len()).collect::<Vec<_>>(),
        [0, 0]
    );
}

#[test]
fn bad_lines_are_reported_and_reading_goes_on() {
    let long = format!("u\tk={}\n", "x".repeat(MAX_LINE_BYTES));
    let text = [
        b"ok\td_sid=1\n".as_slice(),
        b"no tab here\n",
        b"two\ttabs\td_sid=1\n",
        b"user:1\td_sid=1\n",
        b"u\td_sid=abc\n",
        b"u\td_sid=1,,d_sid=2\n",
        b"u\t24:1\n",
        b"u\tk=\"open\n",
        b"u\t=v\n",
        b"bad\xff\td_sid=1\n",
        long.as_bytes(),
        b"u\td_sid=99999999999999999999\n",
        b"ok2\td_sid=2\n",
    ]
    .concat();
    let (records, summary) = read_all(&text, UserIdKind::DeclaredId).unwrap();
    // A line with an invalid id still splits: it is handed over with the id's problem.
    assert_eq!(
        records
            .iter()
            .map(|r| (r.line, r.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "ok"), (4, "!bad_char"), (13, "ok2")]
    );
    assert_eq!(summary.invalid_ids, 1);
    let colon = records[1].id_problem.as_ref().unwrap();
    assert_eq!(colon.reason, RecordReason::BadId);
    assert_eq!(
        colon.id_error.as_ref().map(|e| (e.reason, e.offset)),
        Some((IdReason::BadChar, Some(4)))
    );
    assert_eq!(colon.column, Some(5));
    assert_eq!(records[1].entries, ["+1"]);
    assert_eq!(
        reasons(&summary),
        [
            (2, RecordReason::BadFields),
            (3, RecordReason::BadFields),
            (5, RecordReason::BadEntry),
            (6, RecordReason::BadEntry),
            (7, RecordReason::BadEntry),
            (8, RecordReason::BadEntry),
            (9, RecordReason::BadEntry),
            (10, RecordReason::BadUtf8),
            (11, RecordReason::LineTooLong),
            (12, RecordReason::BadEntry),
        ]
    );
    // Columns point at the offending entry.
    assert_eq!(summary.bad[2].column, Some(9));
    assert_eq!(summary.bad[3].column, Some(11));
    assert_eq!(summary.bad[7].column, Some(4));
}

#[test]
fn visitor_id_files_validate_38_digits() {
    let good = "1".repeat(38);
    let letter = format!("{}a", "1".repeat(37));
    let text = format!(
        "{good}\td_sid=1\n{letter}\td_sid=1\n{}\td_sid=1\n{}\td_sid=1\n",
        "1".repeat(37),
        "1".repeat(39)
    );
    let (records, summary) = read_all(text.as_bytes(), UserIdKind::VisitorId).unwrap();
    assert!(summary.bad.is_empty());
    assert_eq!(summary.invalid_ids, 3);
    let got: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.line,
                r.id_problem
                    .as_ref()
                    .and_then(|b| b.id_error.as_ref())
                    .map(|e| e.reason),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, None),
            (2, Some(IdReason::NotDigits)),
            (3, Some(IdReason::BadLength)),
            (4, Some(IdReason::BadLength))
        ]
    );
    assert_eq!(records[1].id_problem.as_ref().unwrap().column, Some(38));
}

#[test]
fn at_most_200_lines_per_user() {
    let mut text = String::new();
    for i in 0..203 {
        writeln!(text, "same\td_sid={i}").unwrap();
    }
    text.push_str("other\td_sid=1\n");
    let (records, summary) = read_all(text.as_bytes(), UserIdKind::DeclaredId).unwrap();
    assert_eq!(records.len(), 201);
    assert_eq!(
        reasons(&summary),
        [
            (201, RecordReason::TooManyLines),
            (202, RecordReason::TooManyLines),
            (203, RecordReason::TooManyLines)
        ]
    );
}

#[test]
fn empty_files_and_broken_gzip_are_file_errors() {
    for empty in [&b""[..], b"\n\n", b"\xEF\xBB\xBF", b"\r\n"] {
        assert_eq!(
            read_all(empty, UserIdKind::DeclaredId).unwrap_err().reason,
            FileReason::Empty,
            "{empty:?}"
        );
    }
    let gz = input::gzip(b"a\td_sid=1\n".repeat(500).as_slice());
    let (records, _) = read_all(&gz, UserIdKind::DeclaredId).unwrap_or_else(|e| panic!("{e}"));
    // 200 kept: the rest repeat the same user id.
    assert_eq!(records.len(), 200);
    let err = read_all(&gz[..gz.len() / 2], UserIdKind::DeclaredId).unwrap_err();
    assert_eq!(
        (err.reason, err.file.as_str()),
        (FileReason::TruncatedGzip, "in.sync")
    );
    // A file of nothing but bad lines is not empty: its problems are reported.
    let (records, summary) = read_all(b"garbage\n", UserIdKind::DeclaredId).unwrap();
    assert!(records.is_empty());
    assert_eq!(reasons(&summary), [(1, RecordReason::BadFields)]);
}

#[test]
fn strict_stops_at_the_first_bad_line() {
    let mut seen = 0;
    let err = read(
        "f.sync",
        b"a\td_sid=1\nb\tx=\nc\td_sid=1\n",
        UserIdKind::DeclaredId,
        ReadOptions { strict: true },
        |_| seen += 1,
    )
    .unwrap_err();
    assert_eq!(
        (err.reason, err.line, seen),
        (FileReason::Strict, Some(2), 1)
    );
    assert_eq!(err.to_string(), "f.sync:2:5: bad value (bad_entry)");
}

#[test]
fn file_names() {
    let cases = [
        (
            "ftp_dpm_21_1486140844.sync",
            (21, None, 1486140844, OnboardingMode::Sync, None, false),
        ),
        (
            "ftp_dpm_21_999_1486140844.overwrite.gz",
            (
                21,
                Some(999),
                1486140844,
                OnboardingMode::Overwrite,
                None,
                true,
            ),
        ),
        (
            "ftp_dpm_21_0000000001.sync.3.gz",
            (21, None, 1, OnboardingMode::Sync, Some(3), true),
        ),
    ];
    for (name, (dpid, target, ts, mode, split, gzip)) in cases {
        let parsed = OnboardingFileName::parse(name).unwrap();
        assert_eq!(
            parsed,
            OnboardingFileName {
                dpid,
                target_dpid: target,
                timestamp: ts,
                mode,
                split,
                gzip
            }
        );
        assert_eq!(parsed.render(), name);
    }
    for bad in [
        "",
        "ftp_dpm_21_148614084.sync",
        "ftp_dpm_21_14861408440.sync",
        "ftp_dpm_21_1486140844.txt",
        "ftp_dpm_21_1486140844",
        "ftp_dpm_021_1486140844.sync",
        "ftp_dpm__1486140844.sync",
        "ftp_dpm_1_2_3_1486140844.sync",
        "dpm_21_1486140844.sync",
        "ftp_dpm_21_1486140844.sync.gz.gz",
        "ftp_dpm_21_1486140844.sync.x",
        "ftp_dpm_21_1486140844.sync.1.2",
        "ftp_dpm_21_148614084a.sync",
    ] {
        let err = OnboardingFileName::parse(bad).unwrap_err();
        assert_eq!(err.reason, FileReason::BadFileName, "{bad}");
        assert!(
            err.to_string()
                .starts_with(&format!("{bad}: expected ftp_dpm_")),
            "{err}"
        );
    }
}

#[test]
fn writer_is_canonical_and_refuses_what_it_cannot_write() {
    let mut out = Vec::new();
    let user = UserId::Declared(DeclaredId::parse(b"crm-1").unwrap());
    let entries = [
        Entry::Add(24),
        Entry::Remove(25),
        Entry::IntegrationCode("summer"),
        Entry::KeyValue {
            key: "product",
            value: "tablet",
        },
        Entry::KeyValue {
            key: "q",
            value: "a, b",
        },
    ];
    write_line(&mut out, user, &entries).unwrap();
    let visitor = UserId::Visitor(VisitorId::from_u128(5).unwrap());
    write_line(&mut out, visitor, &[Entry::Add(1)]).unwrap();
    insta::assert_snapshot!(String::from_utf8(out.clone()).unwrap(), @r#"
    crm-1	d_sid=24,d_unsid=25,ic=summer,product=tablet,q="a, b"
    00000000000000000000000000000000000005	d_sid=1
    "#);
    let before = out.clone();
    for bad in [
        Entry::KeyValue {
            key: "k",
            value: "say \"hi\"",
        },
        Entry::KeyValue {
            key: "",
            value: "v",
        },
        Entry::KeyValue {
            key: "d_sid",
            value: "1",
        },
        Entry::KeyValue {
            key: "k",
            value: "",
        },
        Entry::IntegrationCode("a,b"),
    ] {
        assert!(
            matches!(
                write_line(&mut out, user, &[bad]),
                Err(WriteError::Unrepresentable(_))
            ),
            "{bad:?}"
        );
    }
    let huge = "v".repeat(MAX_LINE_BYTES);
    let err = write_line(
        &mut out,
        user,
        &[Entry::KeyValue {
            key: "k",
            value: &huge,
        }],
    )
    .unwrap_err();
    assert!(matches!(err, WriteError::LineTooLong { .. }));
    assert_eq!(out, before, "a failed write leaves the buffer as it was");
}

#[test]
fn snapshot_of_a_mixed_file() {
    let text = "\u{feff}alice\td_sid=24, d_sid=26\r\nbob\tproduct = tablet\r\nbob d_sid=1\r\ncarol:x\td_sid=3\r\ndave\t7:0, 8:-1, 9:2\r\n";
    let mut out = String::new();
    let name = "ftp_dpm_21_1486140844.sync";
    let summary = read(
        name,
        text.as_bytes(),
        UserIdKind::DeclaredId,
        ReadOptions::default(),
        |r| {
            let entries: Vec<_> = r.entries.iter().map(show).collect();
            match &r.user {
                Ok(user) => writeln!(out, "line {}: {user} -> {}", r.line, entries.join(" ")),
                Err(bad) => writeln!(out, "{} -> {}", bad.located(name), entries.join(" ")),
            }
            .unwrap();
        },
    )
    .unwrap();
    for bad in &summary.bad {
        writeln!(out, "{}", bad.located("ftp_dpm_21_1486140844.sync")).unwrap();
    }
    insta::assert_snapshot!(out);
}

fn declared_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 _.@é%-]{1,20}".prop_filter("a valid declared id", |s| {
        DeclaredId::parse(s.as_bytes()).is_ok()
    })
}

#[derive(Debug, Clone)]
enum OwnedEntry {
    Add(u64),
    Remove(u64),
    Ic(String),
    Kv(String, String),
}

fn entry() -> impl Strategy<Value = OwnedEntry> {
    prop_oneof![
        any::<u64>().prop_map(OwnedEntry::Add),
        any::<u64>().prop_map(OwnedEntry::Remove),
        "[a-z0-9]{1,8}".prop_map(OwnedEntry::Ic),
        ("[a-z][a-z0-9_.]{0,8}", "[^\"\t\r\n]{1,12}").prop_map(|(k, v)| OwnedEntry::Kv(k, v)),
    ]
}

fn borrow(entry: &OwnedEntry) -> Entry<'_> {
    match entry {
        OwnedEntry::Add(id) => Entry::Add(*id),
        OwnedEntry::Remove(id) => Entry::Remove(*id),
        OwnedEntry::Ic(code) => Entry::IntegrationCode(code),
        OwnedEntry::Kv(key, value) => Entry::KeyValue { key, value },
    }
}

proptest! {
    #[test]
    fn write_then_read_gives_back_the_records(
        rows in proptest::collection::vec((declared_text(), proptest::collection::vec(entry(), 0..6)), 1..20),
        gzip in any::<bool>(),
    ) {
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for (user, entries) in &rows {
            let entries: Vec<Entry<'_>> = entries.iter().map(borrow).collect();
            let id = UserId::Declared(DeclaredId::parse(user.as_bytes()).unwrap());
            if write_line(&mut out, id, &entries).is_ok() {
                expected.push((user.clone(), entries.iter().map(show).collect::<Vec<_>>()));
            }
        }
        prop_assume!(!expected.is_empty());
        let bytes = if gzip { input::gzip(&out) } else { out };
        let (records, summary) = read_all(&bytes, UserIdKind::DeclaredId).unwrap();
        prop_assert!(summary.bad.is_empty(), "{:?}", summary.bad);
        let got: Vec<_> = records.into_iter().map(|r| (r.user, r.entries)).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn names_round_trip(
        dpid in any::<u64>(), target in proptest::option::of(any::<u64>()),
        timestamp in 0..=OnboardingFileName::MAX_TIMESTAMP, overwrite in any::<bool>(),
        split in proptest::option::of(any::<u32>()), gzip in any::<bool>(),
    ) {
        let mode = if overwrite { OnboardingMode::Overwrite } else { OnboardingMode::Sync };
        let name = OnboardingFileName { dpid, target_dpid: target, timestamp, mode, split, gzip };
        prop_assert_eq!(OnboardingFileName::parse(&name.render()).unwrap(), name);
    }

    #[test]
    fn never_panics_and_accounts_for_every_line(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for kind in [UserIdKind::DeclaredId, UserIdKind::VisitorId] {
            let mut records = 0u64;
            if let Ok(summary) = read("f", &bytes, kind, ReadOptions::default(), |_| records += 1) {
                let lines = Lines::new(&bytes).count() as u64;
                prop_assert_eq!(summary.records, records);
                prop_assert_eq!(records + summary.blank_lines + summary.bad.len() as u64, lines);
            }
        }
    }
}
