use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::format::problem::ReadOptions;
use crate::format::recipients;
use crate::id::UserIdKind;
use crate::recipients::Column;

const TS: u64 = 1_700_000_000;

fn source(json: &str) -> DataSource {
    serde_json::from_str(json).unwrap()
}

fn visitor_source() -> DataSource {
    source(r#"{"name":"web","dpid":21,"kind":"visitor-id"}"#)
}

fn email_source() -> DataSource {
    source(
        r#"{"name":"crm-email","dpid":12345,"kind":"declared-id","key_column":"email","encoding":"sha256-email"}"#,
    )
}

fn plain_source() -> DataSource {
    source(r#"{"name":"crm","dpid":777,"kind":"declared-id","key_column":"crm_id"}"#)
}

fn table(csv: &str) -> RecipientsTable {
    recipients::read(
        "recipients.csv",
        csv.as_bytes(),
        ReadOptions { strict: true },
    )
    .unwrap()
    .table
}

fn vid(n: u128) -> VisitorId {
    VisitorId::from_u128(n).unwrap()
}

fn vtext(n: u128) -> String {
    vid(n).to_string()
}

fn link(recipient: i64, visitor: u128) -> VisitorLink {
    VisitorLink {
        recipient: RecipientKey::Int(recipient),
        visitor: vid(visitor),
        last_seen: None,
    }
}

fn keys(ids: &[i64]) -> Vec<RecipientKey> {
    ids.iter().copied().map(RecipientKey::Int).collect()
}

fn sha(email: &str) -> String {
    let Identifier::DeclaredId(key) = email_source().identifier else {
        unreachable!()
    };
    key.encode(email, &mut String::new()).unwrap().0
}

/// The owned inputs of one export.
#[derive(Debug, Clone)]
struct Case {
    members: Vec<RecipientKey>,
    recipients: RecipientsTable,
    links: Vec<VisitorLink>,
    source: DataSource,
    trait_id: u64,
    mode: ExportMode,
    snapshot: Snapshot,
    timestamp: u64,
    limits: FileLimits,
}

impl Case {
    fn new(source: DataSource, recipients: RecipientsTable, members: &[i64]) -> Case {
        Case {
            members: keys(members),
            recipients,
            links: Vec::new(),
            source,
            trait_id: 7,
            mode: ExportMode::Sync,
            snapshot: Snapshot::default(),
            timestamp: TS,
            limits: FileLimits {
                gzip: false,
                ..FileLimits::default()
            },
        }
    }

    fn run(&self) -> Result<ExportResult, ExportError> {
        export(&ExportRequest {
            members: &self.members,
            recipients: &self.recipients,
            links: &self.links,
            data_source: &self.source,
            trait_id: self.trait_id,
            mode: self.mode,
            snapshot: &self.snapshot,
            timestamp: self.timestamp,
            limits: self.limits,
        })
    }
}

fn body(file: &RenderedFile) -> Vec<u8> {
    input::decode(&file.name, &file.bytes).unwrap().into_owned()
}

/// `(user id, +trait / -trait)` of every line of every file, in file order, read back strictly.
fn read_back(files: &[RenderedFile], kind: UserIdKind) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in files {
        let summary = onboarding::read(
            &file.name,
            &file.bytes,
            kind,
            ReadOptions { strict: true },
            |record| {
                let entries: Vec<String> = record
                    .entries
                    .iter()
                    .map(|entry| match entry {
                        Entry::Add(id) => format!("+{id}"),
                        Entry::Remove(id) => format!("-{id}"),
                        other => format!("{other:?}"),
                    })
                    .collect();
                out.push((record.user.clone().unwrap().to_string(), entries.join(",")));
            },
        )
        .unwrap();
        assert_eq!(summary.records, file.lines, "{}", file.name);
    }
    out
}

/// Inputs and outputs of a case as reviewable text.
fn show(case: &Case, result: &ExportResult) -> String {
    let mut out = String::new();
    let members: Vec<String> = case.members.iter().map(ToString::to_string).collect();
    writeln!(out, "# inputs").unwrap();
    writeln!(
        out,
        "data source: {} (dpid {}), trait {}, mode {}, timestamp {}",
        case.source.name,
        case.source.dpid,
        case.trait_id,
        case.mode.code(),
        case.timestamp
    )
    .unwrap();
    writeln!(out, "members: {}", members.join(", ")).unwrap();
    writeln!(out, "recipients:").unwrap();
    for line in String::from_utf8(recipients::write(&case.recipients))
        .unwrap()
        .lines()
    {
        writeln!(out, "  {line}").unwrap();
    }
    if !case.links.is_empty() {
        writeln!(out, "links (recipient visitor):").unwrap();
        for link in &case.links {
            writeln!(out, "  {} {}", link.recipient, link.visitor).unwrap();
        }
    }
    writeln!(out, "previous snapshot:").unwrap();
    for id in case.snapshot.identifiers() {
        writeln!(out, "  {id}").unwrap();
    }
    writeln!(out, "\n# files").unwrap();
    for file in &result.files {
        writeln!(out, "== {} ({} lines)", file.name, file.lines).unwrap();
        out.push_str(&String::from_utf8(body(file)).unwrap());
    }
    writeln!(out, "\n# not exported").unwrap();
    for item in &result.not_exported {
        write!(out, "{} {}", item.recipient, item.reason.code()).unwrap();
        if let Some(reason) = item.key_error {
            write!(out, " ({reason})").unwrap();
        }
        out.push('\n');
    }
    writeln!(out, "\n# new snapshot").unwrap();
    for id in result.snapshot.identifiers() {
        writeln!(out, "{id}").unwrap();
    }
    writeln!(out, "\n# report").unwrap();
    out.push_str(&serde_json::to_string_pretty(&result.report).unwrap());
    out.push('\n');
    out
}

fn visitor_case() -> Case {
    let mut case = Case::new(
        visitor_source(),
        table("id,opted_out\n1,false\n2,\n3,true\n4,false\n5,false\n"),
        &[1, 2, 3, 4, 2, 9],
    );
    case.links = vec![
        link(1, 10),
        link(1, 11),
        link(2, 11),
        link(3, 12),
        link(9, 13),
        link(5, 14),
    ];
    case.snapshot = Snapshot::new([vtext(99)]);
    case
}

#[test]
fn visitor_ids_with_shared_devices_opt_out_and_no_links() {
    let case = visitor_case();
    let result = case.run().unwrap();
    assert_eq!(
        read_back(&result.files, UserIdKind::VisitorId),
        [10, 11, 13].map(|v| (vtext(v), "+7".to_owned()))
    );
    assert_eq!(
        result.snapshot.identifiers(),
        [vtext(10), vtext(11), vtext(13), vtext(99)]
    );
    insta::assert_snapshot!(show(&case, &result));
}

fn email_case() -> Case {
    let mut case = Case::new(
        email_source(),
        table(
            "id,email,opted_out\n1,Alice@Example.com,\n2, alice@example.com ,false\n3,bob@example.com,true\n4,,false\n5,not-an-email,\n6,   ,\n8,carol@example.com,false\n",
        ),
        &[1, 2, 3, 4, 5, 6, 7, 8],
    );
    case.mode = ExportMode::Overwrite;
    case.snapshot = Snapshot::new([sha("old@example.com")]);
    case
}

#[test]
fn declared_sha256_emails_with_opt_out_null_invalid_and_unknown_keys() {
    let case = email_case();
    let result = case.run().unwrap();
    let mut expected = vec![sha("alice@example.com"), sha("carol@example.com")];
    expected.sort();
    assert_eq!(result.snapshot.identifiers(), expected);
    assert_eq!(
        read_back(&result.files, UserIdKind::DeclaredId),
        expected
            .iter()
            .map(|id| (id.clone(), "+7".to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(result.files[0].name, "ftp_dpm_12345_1700000000.overwrite");
    insta::assert_snapshot!(show(&case, &result));
}

fn delta_case() -> Case {
    let mut case = Case::new(
        plain_source(),
        table("id,crm_id\n1,CRM-b\n2,CRM-c\n3,CRM-d\n4,CRM:bad\n"),
        &[4, 3, 2, 1],
    );
    case.mode = ExportMode::Delta;
    case.trait_id = 4242;
    case.snapshot = Snapshot::new(["CRM-c", "CRM-a", "CRM-b"].map(String::from));
    case
}

#[test]
fn delta_adds_new_and_removes_departed_identifiers() {
    let case = delta_case();
    let result = case.run().unwrap();
    assert_eq!(
        read_back(&result.files, UserIdKind::DeclaredId),
        [("CRM-a", "-4242"), ("CRM-d", "+4242")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(result.snapshot.identifiers(), ["CRM-b", "CRM-c", "CRM-d"]);
    assert_eq!((result.report.added, result.report.removed), (1, 1));
    insta::assert_snapshot!(show(&case, &result));
}

#[test]
fn integer_key_columns_are_used_as_decimal_text() {
    let case = Case::new(
        plain_source(),
        table("id,crm_id\n1,-42\n2,1000\n3,\n"),
        &[1, 2, 3],
    );
    let result = case.run().unwrap();
    assert_eq!(result.snapshot.identifiers(), ["-42", "1000"]);
    assert_eq!(
        result.not_exported,
        [NotExported {
            recipient: RecipientKey::Int(3),
            reason: NotExportedReason::NoIdentifier,
            key_error: None,
        }]
    );
}

#[test]
fn member_keys_match_ids_by_their_text() {
    // An integer member finds a string id column's "5"; a string member "2" is the integer 2.
    let strings = table("id,crm_id\n5,five\nx-1,x\n");
    let mut case = Case::new(plain_source(), strings, &[5]);
    case.members.push(RecipientKey::String("x-1".into()));
    case.members.push(RecipientKey::String("5".into()));
    let result = case.run().unwrap();
    assert_eq!(result.snapshot.identifiers(), ["five", "x"]);
    assert_eq!(result.report.members, 2);

    let ints = table("id,crm_id\n2,two\n");
    let mut case = Case::new(plain_source(), ints, &[]);
    case.members = vec![
        RecipientKey::String("2".into()),
        RecipientKey::String("02".into()),
    ];
    let result = case.run().unwrap();
    assert_eq!(result.snapshot.identifiers(), ["two"]);
    assert_eq!(
        result.not_exported,
        [NotExported {
            recipient: RecipientKey::String("02".into()),
            reason: NotExportedReason::UnknownRecipient,
            key_error: None,
        }]
    );
}

#[test]
fn visitor_members_without_a_row_are_exported_through_their_links() {
    let mut case = Case::new(visitor_source(), table("id\n"), &[1, 2]);
    case.links = vec![link(1, 5)];
    let result = case.run().unwrap();
    assert_eq!(result.snapshot.identifiers(), [vtext(5)]);
    assert_eq!(
        result.not_exported[0].reason,
        NotExportedReason::NoIdentifier
    );
    assert_eq!(
        result.report.not_exported[&NotExportedReason::UnknownRecipient],
        0
    );
}

#[test]
fn an_opted_out_column_without_values_opts_nobody_out() {
    // The reader types a column with no value as string.
    let mut case = Case::new(visitor_source(), table("id,opted_out\n1,\n"), &[1]);
    case.links = vec![link(1, 5)];
    assert_eq!(case.run().unwrap().report.exported_recipients, 1);
}

#[test]
fn errors_name_what_is_wrong() {
    let base = || {
        let mut case = Case::new(email_source(), table("id,email\n1,a@b.co\n"), &[1]);
        case.links = vec![link(1, 1)];
        case
    };
    let cases: Vec<(Case, &str, &str)> = vec![
        (
            Case {
                timestamp: 10_000_000_000,
                ..base()
            },
            "bad_timestamp",
            "timestamp 10000000000 does not fit 10 digits (at most 9999999999)",
        ),
        (
            Case {
                limits: FileLimits {
                    max_lines: 0,
                    ..FileLimits::default()
                },
                ..base()
            },
            "bad_limits",
            "max_lines must be at least 1",
        ),
        (
            Case {
                limits: FileLimits {
                    max_bytes: 72,
                    ..FileLimits::default()
                },
                ..base()
            },
            "bad_limits",
            "max_bytes 72 is too small to hold one line: lines of this export take up to 73 bytes",
        ),
        (
            Case {
                mode: ExportMode::Delta,
                limits: FileLimits {
                    max_bytes: 74,
                    ..FileLimits::default()
                },
                ..base()
            },
            "bad_limits",
            "max_bytes 74 is too small to hold one line: lines of this export take up to 75 bytes",
        ),
        (
            Case {
                recipients: table("id,email,opted_out\n1,a@b.co,yes\n"),
                ..base()
            },
            "opted_out_not_bool",
            "column \"opted_out\" must be bool to mark opted-out recipients, it is string",
        ),
        (
            Case {
                recipients: table("id,email,opted_out\n1,a@b.co,1\n"),
                source: visitor_source(),
                ..base()
            },
            "opted_out_not_bool",
            "column \"opted_out\" must be bool to mark opted-out recipients, it is int",
        ),
        (
            Case {
                recipients: table("id,mail\n1,a@b.co\n"),
                ..base()
            },
            "missing_key_column",
            "the recipients table has no key column \"email\"",
        ),
        (
            Case {
                recipients: table("id,email\n1,1.5\n"),
                ..base()
            },
            "bad_key_column",
            "key column \"email\" must hold strings or integers, it is float",
        ),
        (
            Case {
                recipients: RecipientsTable {
                    ids: RecipientIds::Int(vec![3, 1, 3]),
                    columns: vec![Column {
                        name: "email".into(),
                        data: ColumnData::String([Some("a@b.co"); 3].into_iter().collect()),
                    }],
                },
                ..base()
            },
            "duplicate_recipient",
            "the recipients table has the same id on rows 0 and 2 (0-based)",
        ),
        (
            Case {
                snapshot: Snapshot::new([sha("a@b.co"), "not-a-digest".into()]),
                ..base()
            },
            "bad_snapshot",
            "snapshot identifier 1 (0-based, sorted) is not a valid hashed id: bad_char",
        ),
        (
            Case {
                source: visitor_source(),
                snapshot: Snapshot::new(["123".into()]),
                ..base()
            },
            "bad_snapshot",
            "snapshot identifier 0 (0-based, sorted) is not a valid visitor id: bad_length",
        ),
    ];
    for (case, code, message) in cases {
        let err = case.run().unwrap_err();
        assert_eq!((err.code(), err.to_string().as_str()), (code, message));
    }
    // The lower bounds themselves are accepted.
    for (mode, max_bytes) in [(ExportMode::Sync, 73), (ExportMode::Delta, 75)] {
        let case = Case {
            mode,
            limits: FileLimits {
                max_bytes,
                ..FileLimits::default()
            },
            ..base()
        };
        assert_eq!(case.run().unwrap().files.len(), 1);
    }
}

#[test]
fn nothing_to_send_means_no_file() {
    // sync without identifiers: no file, the snapshot is kept.
    let mut case = Case::new(visitor_source(), table("id\n1\n"), &[1]);
    case.snapshot = Snapshot::new([vtext(3)]);
    let result = case.run().unwrap();
    assert!(result.files.is_empty());
    assert_eq!(result.snapshot, case.snapshot);

    // delta without change: no file.
    case.links = vec![link(1, 3)];
    case.mode = ExportMode::Delta;
    let result = case.run().unwrap();
    assert!(result.files.is_empty());
    assert_eq!(result.snapshot, case.snapshot);
    assert_eq!((result.report.added, result.report.removed), (0, 0));

    // overwrite without identifiers: no (invalid, empty) file, flagged, previous snapshot kept.
    case.links.clear();
    case.mode = ExportMode::Overwrite;
    let result = case.run().unwrap();
    assert!(result.files.is_empty());
    assert!(result.report.empty_overwrite);
    assert_eq!(result.snapshot, case.snapshot);

    // delta removing everything: only removals.
    case.mode = ExportMode::Delta;
    let result = case.run().unwrap();
    assert_eq!(
        read_back(&result.files, UserIdKind::VisitorId),
        [(vtext(3), "-7".to_owned())]
    );
    assert!(result.snapshot.is_empty());
    assert!(!result.report.empty_overwrite);
}

fn many(n: u128) -> Case {
    let members: Vec<i64> = (1..=n as i64).collect();
    let mut case = Case::new(visitor_source(), table("id\n"), &members);
    case.links = (1..=n).map(|i| link(i as i64, i * 1000)).collect();
    case
}

fn check_split(result: &ExportResult, limits: FileLimits, names: &[&str], expected: &[u128]) {
    let got: Vec<&str> = result.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(got, names);
    for file in &result.files {
        let body = body(file);
        assert!(
            file.lines >= 1 && file.lines <= limits.max_lines,
            "{}",
            file.name
        );
        assert!(body.len() as u64 <= limits.max_bytes, "{}", file.name);
        assert_eq!(
            body.iter().filter(|&&b| b == b'\n').count() as u64,
            file.lines
        );
        assert_eq!(input::is_gzip(&file.bytes), limits.gzip);
    }
    assert_eq!(
        read_back(&result.files, UserIdKind::VisitorId),
        expected
            .iter()
            .map(|&v| (vtext(v), "+7".to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(result.report.files, result.files.len() as u64);
}

#[test]
fn files_split_by_lines() {
    let mut case = many(5);
    case.limits.max_lines = 2;
    let result = case.run().unwrap();
    check_split(
        &result,
        case.limits,
        &[
            "ftp_dpm_21_1700000000.sync.1",
            "ftp_dpm_21_1700000000.sync.2",
            "ftp_dpm_21_1700000000.sync.3",
        ],
        &[1000, 2000, 3000, 4000, 5000],
    );
    assert_eq!(
        result.files.iter().map(|f| f.lines).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    // Exactly the limit: one file, no split suffix.
    case.limits.max_lines = 5;
    let result = case.run().unwrap();
    check_split(
        &result,
        case.limits,
        &["ftp_dpm_21_1700000000.sync"],
        &[1000, 2000, 3000, 4000, 5000],
    );
}

#[test]
fn files_split_by_bytes() {
    // Each line is 38 + 1 + "d_sid=7".len() + 1 = 47 bytes.
    let mut case = many(5);
    case.mode = ExportMode::Overwrite;
    case.limits = FileLimits {
        max_lines: 100,
        max_bytes: 94,
        gzip: true,
    };
    let result = case.run().unwrap();
    check_split(
        &result,
        case.limits,
        &[
            "ftp_dpm_21_1700000000.overwrite.1.gz",
            "ftp_dpm_21_1700000000.overwrite.2.gz",
            "ftp_dpm_21_1700000000.overwrite.3.gz",
        ],
        &[1000, 2000, 3000, 4000, 5000],
    );
    case.limits.max_bytes = 93;
    let result = case.run().unwrap();
    assert_eq!(result.files.len(), 5);
    check_split(
        &result,
        case.limits,
        &[1, 2, 3, 4, 5]
            .map(|i| format!("ftp_dpm_21_1700000000.overwrite.{i}.gz"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[1000, 2000, 3000, 4000, 5000],
    );
}

#[test]
fn output_is_deterministic_and_gzip_is_the_fixed_writer() {
    let mut case = visitor_case();
    let plain = case.run().unwrap();
    case.limits.gzip = true;
    let first = case.run().unwrap();
    let second = case.run().unwrap();
    assert_eq!(first, second);
    assert_eq!(first.files[0].name, format!("{}.gz", plain.files[0].name));
    assert_eq!(first.files[0].bytes, input::gzip(&plain.files[0].bytes));
}

#[test]
fn serde_forms() {
    assert_eq!(
        serde_json::to_string(&[ExportMode::Sync, ExportMode::Overwrite, ExportMode::Delta])
            .unwrap(),
        r#"["sync","overwrite","delta"]"#
    );
    let limits: FileLimits = serde_json::from_str(r#"{"max_lines":10}"#).unwrap();
    assert_eq!(
        limits,
        FileLimits {
            max_lines: 10,
            max_bytes: 104_857_600,
            gzip: true
        }
    );
    assert!(serde_json::from_str::<FileLimits>(r#"{"lines":10}"#).is_err());

    let snapshot: Snapshot = serde_json::from_str(r#"{"identifiers":["b","a","b","B"]}"#).unwrap();
    assert_eq!(snapshot.identifiers(), ["B", "a", "b"]);
    assert!(snapshot.contains("a") && !snapshot.contains("c"));
    assert_eq!(
        serde_json::to_string(&snapshot).unwrap(),
        r#"{"identifiers":["B","a","b"]}"#
    );
    assert!(serde_json::from_str::<Snapshot>(r#"{"ids":[]}"#).is_err());

    for reason in NotExportedReason::ALL {
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            format!("\"{}\"", reason.code())
        );
    }
    let item = NotExported {
        recipient: RecipientKey::Int(5),
        reason: NotExportedReason::InvalidKey,
        key_error: Some(IdReason::InvalidEmail),
    };
    let json = serde_json::to_string(&item).unwrap();
    assert_eq!(
        json,
        r#"{"recipient":5,"reason":"invalid_key","key_error":"invalid_email"}"#
    );
    assert_eq!(serde_json::from_str::<NotExported>(&json).unwrap(), item);
}

// ---- properties ----

/// A visitor-id export: recipients 0..10 are in the table (with an optional opt-out flag),
/// 10..14 are not.
#[derive(Debug, Clone)]
struct World {
    members: Vec<i64>,
    links: Vec<(i64, u128)>,
    flags: Vec<Option<bool>>,
    previous: Vec<u128>,
    mode: ExportMode,
    limits: FileLimits,
}

fn mode() -> impl Strategy<Value = ExportMode> {
    prop_oneof![
        Just(ExportMode::Sync),
        Just(ExportMode::Overwrite),
        Just(ExportMode::Delta)
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(0i64..14, 0..16),
        proptest::collection::vec((0i64..14, 0u128..20), 0..30),
        proptest::collection::vec(proptest::option::of(any::<bool>()), 10),
        proptest::collection::vec(0u128..24, 0..12),
        mode(),
        (1u64..5, 49u64..200, any::<bool>()),
    )
        .prop_map(
            |(members, links, flags, previous, mode, (max_lines, max_bytes, gzip))| World {
                members,
                links,
                flags,
                previous,
                mode,
                limits: FileLimits {
                    max_lines,
                    max_bytes,
                    gzip,
                },
            },
        )
}

impl World {
    fn case(&self) -> Case {
        let recipients = RecipientsTable {
            ids: RecipientIds::Int((0..10).collect()),
            columns: vec![Column {
                name: OPTED_OUT_COLUMN.into(),
                data: ColumnData::Bool(self.flags.clone()),
            }],
        };
        Case {
            members: keys(&self.members),
            recipients,
            links: self.links.iter().map(|&(r, v)| link(r, v)).collect(),
            source: visitor_source(),
            trait_id: 7,
            mode: self.mode,
            snapshot: self.previous.iter().map(|&v| vtext(v)).collect(),
            timestamp: TS,
            limits: self.limits,
        }
    }

    fn opted_out(&self, recipient: i64) -> bool {
        usize::try_from(recipient)
            .ok()
            .and_then(|r| self.flags.get(r))
            == Some(&Some(true))
    }

    /// The identifiers of one member, by the model.
    fn identifiers_of(&self, member: i64) -> BTreeSet<String> {
        self.links
            .iter()
            .filter(|(r, _)| *r == member)
            .map(|&(_, v)| vtext(v))
            .collect()
    }

    fn current(&self) -> BTreeSet<String> {
        let members: BTreeSet<i64> = self.members.iter().copied().collect();
        members
            .into_iter()
            .filter(|&m| !self.opted_out(m))
            .flat_map(|m| self.identifiers_of(m))
            .collect()
    }
}

fn check_files(
    result: &ExportResult,
    limits: FileLimits,
    mode: ExportMode,
) -> Result<(), TestCaseError> {
    let n = result.files.len();
    for (i, file) in result.files.iter().enumerate() {
        let name = OnboardingFileName::parse(&file.name).unwrap();
        prop_assert_eq!(name.split, (n > 1).then_some(i as u32 + 1));
        prop_assert_eq!(name.gzip, limits.gzip);
        prop_assert_eq!(name.mode, mode.file_mode());
        prop_assert_eq!((name.dpid, name.timestamp), (21, TS));
        let body = body(file);
        prop_assert!(file.lines >= 1 && file.lines <= limits.max_lines);
        prop_assert!(body.len() as u64 <= limits.max_bytes);
    }
    Ok(())
}

proptest! {
    #[test]
    fn lines_and_snapshot_follow_the_mode(world in world()) {
        let case = world.case();
        let result = case.run().unwrap();
        check_files(&result, world.limits, world.mode)?;
        let current = world.current();
        let previous: BTreeSet<String> = case.snapshot.identifiers().iter().cloned().collect();

        // (1) the lines read back: every current id for sync and overwrite; for delta exactly
        // the set differences, sorted by id.
        let mut expected: Vec<(String, String)> = match world.mode {
            ExportMode::Sync | ExportMode::Overwrite => {
                current.iter().map(|id| (id.clone(), "+7".to_owned())).collect()
            }
            ExportMode::Delta => current
                .difference(&previous)
                .map(|id| (id.clone(), "+7".to_owned()))
                .chain(previous.difference(&current).map(|id| (id.clone(), "-7".to_owned())))
                .collect(),
        };
        expected.sort();
        prop_assert_eq!(read_back(&result.files, UserIdKind::VisitorId), expected.clone());
        let (added, removed) = expected.iter().partition::<Vec<_>, _>(|(_, e)| e == "+7");
        prop_assert_eq!((result.report.added, result.report.removed), (added.len() as u64, removed.len() as u64));
        prop_assert_eq!(result.report.identifiers, current.len() as u64);

        // (2) the new snapshot.
        let snapshot: BTreeSet<String> = match world.mode {
            ExportMode::Sync => previous.union(&current).cloned().collect(),
            ExportMode::Overwrite if current.is_empty() => previous.clone(),
            ExportMode::Overwrite | ExportMode::Delta => current.clone(),
        };
        prop_assert_eq!(result.snapshot.identifiers(), snapshot.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(result.report.empty_overwrite, world.mode == ExportMode::Overwrite && current.is_empty());
    }

    #[test]
    fn every_member_is_exported_or_not_exported_with_one_reason(world in world()) {
        let result = world.case().run().unwrap();
        let members: BTreeSet<i64> = world.members.iter().copied().collect();
        let skipped: Vec<i64> = result.not_exported.iter().map(|n| match n.recipient {
            RecipientKey::Int(r) => r,
            RecipientKey::String(_) => unreachable!(),
        }).collect();
        prop_assert!(skipped.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        let mut exported = 0u64;
        for &member in &members {
            let reason = result.not_exported.iter().find(|n| n.recipient == RecipientKey::Int(member)).map(|n| n.reason);
            let expected = if world.opted_out(member) {
                Some(NotExportedReason::OptedOut)
            } else if world.identifiers_of(member).is_empty() {
                Some(NotExportedReason::NoIdentifier)
            } else {
                exported += 1;
                None
            };
            prop_assert_eq!(reason, expected, "member {}", member);
        }
        prop_assert!(skipped.iter().all(|s| members.contains(s)));
        prop_assert_eq!(result.report.members, members.len() as u64);
        prop_assert_eq!(result.report.exported_recipients, exported);
        prop_assert_eq!(
            exported + result.report.not_exported.values().sum::<u64>(),
            members.len() as u64
        );
    }

    #[test]
    fn output_does_not_depend_on_the_order_of_members_and_links(
        (world, members, links, stringify) in world().prop_flat_map(|w| {
            let members = Just(w.members.clone()).prop_shuffle();
            let links = Just(w.links.clone()).prop_shuffle();
            (Just(w), members, links, any::<bool>())
        })
    ) {
        let case = world.case();
        let mut shuffled = case.clone();
        shuffled.members = members
            .iter()
            .map(|&m| if stringify && m % 2 == 0 { RecipientKey::String(m.to_string()) } else { RecipientKey::Int(m) })
            .collect();
        shuffled.links = links.iter().map(|&(r, v)| link(r, v)).collect();
        prop_assert_eq!(case.run().unwrap(), shuffled.run().unwrap());
    }

    #[test]
    fn declared_members_get_one_outcome_each(
        values in proptest::collection::vec(
            proptest::sample::select(vec![Some("a"), Some("b"), Some("c:d"), Some(""), Some(" b"), None]),
            8,
        ),
        flags in proptest::collection::vec(proptest::option::of(any::<bool>()), 8),
        members in proptest::collection::vec(0i64..11, 0..14),
        mode in mode(),
    ) {
        let recipients = RecipientsTable {
            ids: RecipientIds::Int((0..8).collect()),
            columns: vec![
                Column { name: "crm_id".into(), data: ColumnData::String(values.iter().copied().collect()) },
                Column { name: OPTED_OUT_COLUMN.into(), data: ColumnData::Bool(flags.clone()) },
            ],
        };
        let mut case = Case::new(plain_source(), recipients, &members);
        case.mode = mode;
        let result = case.run().unwrap();
        let distinct: BTreeSet<i64> = members.iter().copied().collect();
        let mut current = BTreeSet::new();
        for &m in &distinct {
            let row = usize::try_from(m).ok().filter(|&r| r < 8);
            let expected = match row {
                None => Some((NotExportedReason::UnknownRecipient, None)),
                Some(r) if flags[r] == Some(true) => Some((NotExportedReason::OptedOut, None)),
                Some(r) => match values[r] {
                    None | Some("") => Some((NotExportedReason::NoIdentifier, None)),
                    Some("c:d") => Some((NotExportedReason::InvalidKey, Some(IdReason::BadChar))),
                    Some(id) => {
                        current.insert(id.to_owned());
                        None
                    }
                },
            };
            let got = result
                .not_exported
                .iter()
                .find(|n| n.recipient == RecipientKey::Int(m))
                .map(|n| (n.reason, n.key_error));
            prop_assert_eq!(got, expected, "member {}", m);
        }
        prop_assert_eq!(result.not_exported.len() as u64 + result.report.exported_recipients, distinct.len() as u64);
        let sent: Vec<String> = read_back(&result.files, UserIdKind::DeclaredId).into_iter().map(|(id, _)| id).collect();
        prop_assert_eq!(sent, current.into_iter().collect::<Vec<_>>());
    }
}
