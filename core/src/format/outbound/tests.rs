use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::id::{DeclaredId, VisitorId};

type Owned = (u64, String, Vec<String>, Vec<String>);

fn read_all(bytes: &[u8], kind: UserIdKind) -> Result<(Vec<Owned>, ReadSummary), FileError> {
    let mut records = Vec::new();
    let summary = read("out.sync", bytes, kind, ReadOptions::default(), |r| {
        records.push((
            r.line,
            match &r.user {
                Ok(user) => user.to_string(),
                Err(bad) => format!(
                    "!{}@{}",
                    bad.id_error.as_ref().map_or("?", |e| e.reason.code()),
                    bad.column.unwrap_or(0)
                ),
            },
            r.segments().map(str::to_owned).collect(),
            r.removed().map(str::to_owned).collect(),
        ))
    })?;
    Ok((records, summary))
}

const UUID: &str = "59767559181262060060278870901087098252";

#[test]
fn documented_example_with_two_spaces() {
    let text = format!("{UUID}  24,26,27  25,28\n");
    let (records, summary) = read_all(text.as_bytes(), UserIdKind::VisitorId).unwrap();
    assert!(summary.bad.is_empty());
    assert_eq!(
        records,
        [(
            1,
            UUID.to_owned(),
            vec!["24".into(), "26".into(), "27".into()],
            vec!["25".into(), "28".into()]
        )]
    );
}

#[test]
fn lists_may_be_absent_and_ids_are_kept_verbatim() {
    let text = format!("{UUID}\n{UUID} AbC,x-1\n{UUID}\t24 \n");
    let (records, _) = read_all(text.as_bytes(), UserIdKind::VisitorId).unwrap();
    let shapes: Vec<_> = records.iter().map(|r| (r.2.clone(), r.3.len())).collect();
    assert_eq!(
        shapes,
        [
            (vec![], 0),
            (vec!["AbC".to_owned(), "x-1".to_owned()], 0),
            (vec!["24".to_owned()], 0)
        ]
    );
}

#[test]
fn bad_lines() {
    let text = [
        format!("{UUID} 1 2 3\n"),
        format!("{}a 1\n", &UUID[..37]),
        format!("{} 1\n", &UUID[..37]),
        format!("{UUID}9 1\n"),
        format!("{UUID} 1,,2\n"),
        format!("{UUID} 1,2,\n"),
        format!("{UUID} 1 \u{7}\n"),
        format!("{UUID} 1\n"),
    ]
    .concat();
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(format!("{UUID} 1").as_bytes());
    bytes.extend_from_slice(b"\xff\n");
    bytes.extend_from_slice(b"\xff\xfe 1\n");
    let (records, summary) = read_all(&bytes, UserIdKind::VisitorId).unwrap();
    // Lines with an invalid id still split: they are handed over with the id's problem.
    let handed: Vec<_> = records
        .iter()
        .map(|r| (r.0, r.1.as_str(), r.2.len()))
        .collect();
    assert_eq!(
        handed,
        [
            (2, "!not_digits@38", 1),
            (3, "!bad_length@1", 1),
            (4, "!bad_length@1", 1),
            (8, UUID, 1),
            (10, "!not_digits@1", 1),
        ]
    );
    assert_eq!(summary.invalid_ids, 4);
    let got: Vec<_> = summary
        .bad
        .iter()
        .map(|b| (b.line, b.reason, b.column))
        .collect();
    assert_eq!(
        got,
        [
            (1, RecordReason::BadFields, Some(44)),
            (5, RecordReason::BadEntry, Some(42)),
            (6, RecordReason::BadEntry, Some(44)),
            (7, RecordReason::BadEntry, Some(42)),
            (9, RecordReason::BadUtf8, Some(41)),
        ]
    );
}

#[test]
fn declared_id_files() {
    let (records, summary) =
        read_all(b"crm-1 24\nbad:id 24\n%3Aenc 1\n", UserIdKind::DeclaredId).unwrap();
    assert!(summary.bad.is_empty());
    let users: Vec<_> = records.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(users, ["crm-1", "!bad_char@4", "!bad_char@1"]);
}

#[test]
fn empty_files_crlf_bom_gzip() {
    // An empty delivery is valid: nothing changed.
    for empty in [&b""[..], b"\n", b"\xEF\xBB\xBF", b" \r\n"] {
        let (records, summary) = read_all(empty, UserIdKind::VisitorId).unwrap();
        assert!(records.is_empty() && summary.bad.is_empty(), "{empty:?}");
    }
    let text = format!("\u{feff}{UUID} 1\r\n{UUID} 2");
    let (records, _) = read_all(text.as_bytes(), UserIdKind::VisitorId).unwrap();
    assert_eq!(
        records.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        [vec!["1".to_owned()], vec!["2".to_owned()]]
    );

    let gz = [
        input::gzip(format!("{UUID} 1\n").as_bytes()),
        input::gzip(format!("{UUID} 2\n").as_bytes()),
    ]
    .concat();
    assert_eq!(
        read_all(&gz, UserIdKind::VisitorId).unwrap().0.len(),
        2,
        "every gzip member is read"
    );
    let err = read_all(&gz[..gz.len() - 10], UserIdKind::VisitorId).unwrap_err();
    assert_eq!(err.reason, FileReason::TruncatedGzip);
}

#[test]
fn strict_mode() {
    let text = format!("{UUID} 1\nnot-an-id 1\n");
    let err = read(
        "f.sync",
        text.as_bytes(),
        UserIdKind::VisitorId,
        ReadOptions { strict: true },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(
        (err.reason, err.line, err.column),
        (FileReason::Strict, Some(2), Some(1))
    );
}

#[test]
fn documented_file_names() {
    let s3 =
        OutboundFileName::parse("S3_1234_20914_XYZCustomer_iter_1486140844000.sync.gz").unwrap();
    assert_eq!(
        s3,
        OutboundFileName {
            sync_type: Some(SyncType::S3),
            destination_id: Some(1234),
            master_dpid: Some(20914),
            pid_alias: Some("XYZCustomer".into()),
            sync_mode: Some(SyncMode::Iter),
            timestamp_ms: Some(1486140844000),
            split: None,
            gzip: true,
        }
    );
    assert_eq!(s3.user_id_kind(), UserIdKind::DeclaredId);
    let part =
        OutboundFileName::parse("S3_1234_20914_XYZCustomer_iter_1486140844000001.sync.gz").unwrap();
    assert_eq!(
        (part.timestamp_ms, part.split),
        (Some(1486140844000), Some(1))
    );
    assert_eq!(part.delivery(), s3.delivery());
    let ftp = OutboundFileName::parse("ftp_1234_20915_full_1486140843000002.sync.gz").unwrap();
    assert_eq!(
        (
            ftp.sync_type,
            ftp.destination_id,
            ftp.master_dpid,
            ftp.pid_alias.as_deref(),
            ftp.sync_mode,
            ftp.split
        ),
        (
            Some(SyncType::Ftp),
            Some(1234),
            Some(20915),
            None,
            Some(SyncMode::Full),
            Some(2)
        )
    );
    for name in [
        "S3_1234_20914_XYZCustomer_iter_1486140844000.sync.gz",
        "S3_1234_20914_XYZCustomer_iter_1486140844000001.sync.gz",
        "ftp_1234_20915_full_1486140843000002.sync.gz",
    ] {
        assert_eq!(OutboundFileName::parse(name).unwrap().render(), name);
    }
    let minimal = OutboundFileName::parse("1234_1486140844000.sync").unwrap();
    assert_eq!(
        (
            minimal.destination_id,
            minimal.master_dpid,
            minimal.user_id_kind()
        ),
        (Some(1234), None, UserIdKind::VisitorId)
    );
}

#[test]
fn names_that_match_no_pattern() {
    for bad in [
        "audience.csv",
        "S3_1234_iter_1486140844000.txt",
        "S3_1234_iter_148614084400001.sync",
        "S3_1_2_3_iter.sync",
        "S3_1234_a_b_iter.sync",
        "S3_1234_iter_1486140844000.sync.gz.gz",
        "S3_1234.part.sync",
        "dir/S3_1234.sync",
    ] {
        let err = OutboundFileName::parse(bad).unwrap_err();
        assert_eq!(err.reason, FileReason::BadFileName, "{bad}");
    }
}

#[test]
fn writer_refuses_what_it_cannot_write() {
    let mut out = Vec::new();
    let user = UserId::Visitor(VisitorId::from_u128(1).unwrap());
    write_line(&mut out, user, &["24", "26"], &["25"]).unwrap();
    write_line(&mut out, user, &["24"], &[]).unwrap();
    write_line(&mut out, user, &[], &[]).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "00000000000000000000000000000000000001 24,26 25\n00000000000000000000000000000000000001 24\n00000000000000000000000000000000000001\n"
    );
    assert_eq!(
        write_line(&mut out, user, &[], &["1"]),
        Err(WriteError::RemovalsWithoutSegments)
    );
    assert_eq!(
        write_line(&mut out, user, &["a,b"], &[]),
        Err(WriteError::BadSegment)
    );
    assert_eq!(
        write_line(&mut out, user, &["a b"], &[]),
        Err(WriteError::BadSegment)
    );
    assert_eq!(
        write_line(&mut out, user, &[""], &[]),
        Err(WriteError::BadSegment)
    );
    let spaced = UserId::Declared(DeclaredId::parse(b"a b").unwrap());
    assert_eq!(
        write_line(&mut out, spaced, &["1"], &[]),
        Err(WriteError::SpaceInUserId)
    );
}

#[test]
fn snapshot_of_a_mixed_file() {
    let text = format!(
        "{UUID}  24,26,27  25,28\n{UUID} 24\n{}x 24\n{UUID} 24,,26\n\n{UUID}\n",
        &UUID[..37]
    );
    let mut out = String::new();
    let name = "S3_1234_iter_1486140844000.sync";
    let summary = read(
        name,
        text.as_bytes(),
        UserIdKind::VisitorId,
        ReadOptions::default(),
        |r| {
            let segs: Vec<_> = r.segments().collect();
            let removed: Vec<_> = r.removed().collect();
            writeln!(
                out,
                "line {}: {} in {:?} left {:?}",
                r.line,
                r.user
                    .as_ref()
                    .map_or_else(|bad| bad.located(name), ToString::to_string),
                segs,
                removed
            )
            .unwrap();
        },
    )
    .unwrap();
    for bad in &summary.bad {
        writeln!(out, "{}", bad.located(name)).unwrap();
    }
    writeln!(
        out,
        "records {} blank {}",
        summary.records, summary.blank_lines
    )
    .unwrap();
    insta::assert_snapshot!(out);
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9-]{1,10}"
}

proptest! {
    #[test]
    fn write_then_read_gives_back_the_records(
        rows in proptest::collection::vec(
            (any::<u128>(), proptest::collection::vec(segment(), 0..5), proptest::collection::vec(segment(), 0..3)),
            0..20,
        ),
        gzip in any::<bool>(),
    ) {
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for (n, segs, removed) in &rows {
            let id = VisitorId::from_u128(n % (VisitorId::MAX.as_u128() + 1)).unwrap();
            let removed = if segs.is_empty() { &[][..] } else { removed.as_slice() };
            let segs_ref: Vec<&str> = segs.iter().map(String::as_str).collect();
            let removed_ref: Vec<&str> = removed.iter().map(String::as_str).collect();
            write_line(&mut out, UserId::Visitor(id), &segs_ref, &removed_ref).unwrap();
            expected.push((id.to_string(), segs.clone(), removed.to_vec()));
        }
        let bytes = if gzip { input::gzip(&out) } else { out };
        let (records, summary) = read_all(&bytes, UserIdKind::VisitorId).unwrap();
        prop_assert!(summary.bad.is_empty());
        let got: Vec<_> = records.into_iter().map(|(_, id, s, r)| (id, s, r)).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn names_round_trip(
        sync_type in proptest::option::of(prop_oneof![Just(SyncType::Ftp), Just(SyncType::S3)]),
        ids in proptest::option::of((0u64..1_000_000_000_000, proptest::option::of(0u64..1_000_000_000_000))),
        alias in proptest::option::of("[A-Za-z][A-Za-z0-9-]{0,10}"),
        sync_mode in proptest::option::of(prop_oneof![Just(SyncMode::Iter), Just(SyncMode::Full)]),
        stamp in proptest::option::of((0u64..10_000_000_000_000, proptest::option::of(0u32..100_000))),
        gzip in any::<bool>(),
    ) {
        let alias = alias.filter(|a| valid_alias(a));
        let name = OutboundFileName {
            sync_type,
            destination_id: ids.map(|(d, _)| d),
            master_dpid: ids.and_then(|(_, m)| m),
            pid_alias: alias,
            sync_mode,
            timestamp_ms: stamp.map(|(t, _)| t),
            split: stamp.and_then(|(_, s)| s),
            gzip,
        };
        prop_assert_eq!(OutboundFileName::parse(&name.render()).unwrap(), name);
    }

    #[test]
    fn never_panics_and_accounts_for_every_line(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for kind in [UserIdKind::DeclaredId, UserIdKind::VisitorId] {
            let mut records = 0u64;
            let summary = read("f", &bytes, kind, ReadOptions::default(), |_| records += 1);
            if let Ok(summary) = summary {
                let lines = Lines::new(&bytes).count() as u64;
                prop_assert_eq!(records + summary.blank_lines + summary.bad.len() as u64, lines);
            }
        }
    }

    #[test]
    fn name_parser_never_panics(name in "\\PC{0,60}") {
        if let Ok(parsed) = OutboundFileName::parse(&name) {
            prop_assert_eq!(OutboundFileName::parse(&parsed.render()).unwrap(), parsed);
        }
    }
}
