use super::*;
use crate::recipients::Column;
use crate::rule::ast::Schema;
use crate::rule::check::check;
use crate::rule::parser::parse;

const TWO_53: i64 = 1 << 53;

fn date(text: &str) -> Date {
    text.parse().expect("date")
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn column(name: &str, data: ColumnData) -> Column {
    Column {
        name: name.to_owned(),
        data,
    }
}

/// A table with ids `1..=n` and `columns`.
fn table(columns: Vec<Column>) -> RecipientsTable {
    let n = columns.first().map_or(0, |c| c.data.len());
    RecipientsTable {
        ids: RecipientIds::Int((1..=n as i64).collect()),
        columns,
    }
}

fn rule(text: &str, table: &RecipientsTable) -> Rule {
    let lists = [
        "suppressed".to_owned(),
        "vip".to_owned(),
        "empty".to_owned(),
    ];
    check(
        parse(text).expect("parses"),
        &Schema::of(table),
        Some(&lists),
    )
    .expect("checks")
}

/// Ids of the rows `text` selects.
fn select(text: &str, table: &RecipientsTable) -> Vec<i64> {
    select_at(text, table, at("2026-01-31T12:00:00Z"), &BTreeMap::new())
}

fn select_at(
    text: &str,
    table: &RecipientsTable,
    now: Timestamp,
    lists: &BTreeMap<String, Vec<RecipientKey>>,
) -> Vec<i64> {
    let ctx = EvalContext { now, lists };
    let selection = evaluate(&rule(text, table), table, &ctx).expect("evaluates");
    selection
        .rows()
        .map(|r| match table.ids.key(r) {
            Some(RecipientKey::Int(i)) => i,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Rows 1..=9: every pair of (true, false, null) in `a` and `b`.
fn pairs() -> RecipientsTable {
    let values = [Some(true), Some(false), None];
    let a = values
        .iter()
        .flat_map(|&a| values.iter().map(move |_| a))
        .collect();
    let b = values.iter().flat_map(|_| values.iter().copied()).collect();
    table(vec![
        column("a", ColumnData::Bool(a)),
        column("b", ColumnData::Bool(b)),
    ])
}

/// SQL's truth tables, as the ids of `pairs()` where a binary operation is true.
fn truth(f: impl Fn(Option<bool>, Option<bool>) -> Option<bool>) -> Vec<i64> {
    let values = [Some(true), Some(false), None];
    let mut out = Vec::new();
    for (i, a) in values.iter().enumerate() {
        for (j, b) in values.iter().enumerate() {
            if f(*a, *b) == Some(true) {
                out.push((i * 3 + j + 1) as i64);
            }
        }
    }
    out
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn not3(a: Option<bool>) -> Option<bool> {
    a.map(|a| !a)
}

#[test]
fn three_valued_truth_tables() {
    let t = pairs();
    assert_eq!(select("a and b", &t), truth(and3));
    assert_eq!(select("a or b", &t), truth(or3));
    assert_eq!(select("not a", &t), truth(|a, _| not3(a)));
    assert_eq!(select("not (a and b)", &t), truth(|a, b| not3(and3(a, b))));
    assert_eq!(select("not (a or b)", &t), truth(|a, b| not3(or3(a, b))));
    assert_eq!(select("not not b", &t), truth(|_, b| b));
    assert_eq!(select("a = b", &t), truth(|a, b| Some(a? == b?)));
    assert_eq!(select("a != b", &t), truth(|a, b| Some(a? != b?)));
    assert_eq!(
        select("not (a = b)", &t),
        truth(|a, b| Some(a? == b?).map(|x| !x))
    );
    assert_eq!(select("a = true", &t), vec![1, 2, 3]);
    assert_eq!(select("a != true", &t), vec![4, 5, 6]);
    assert_eq!(
        select("a in (true, false)", &t),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(select("a not in (true)", &t), vec![4, 5, 6]);
    assert_eq!(select("(a and b) = (a or b)", &t), vec![1, 5]);
    assert_eq!(select("a is null", &t), vec![7, 8, 9]);
    assert_eq!(select("(a and b) is null", &t), vec![3, 7, 9]);
    assert_eq!(select("(a and b) is not null", &t), vec![1, 2, 4, 5, 6, 8]);
    assert_eq!(select("true", &t), (1..=9).collect::<Vec<_>>());
    assert_eq!(select("false or a", &t), vec![1, 2, 3]);
    assert_eq!(select("not false and b", &t), vec![1, 4, 7]);
}

#[test]
fn integers_and_floats_compare_exactly() {
    let ints = vec![TWO_53 - 1, TWO_53, TWO_53 + 1, i64::MAX, i64::MIN, 0];
    let floats = vec![
        (TWO_53 as f64),
        9_007_199_254_740_994.0,
        0.5,
        -0.0,
        1e300,
        -1e300,
    ];
    let t = table(vec![
        column("i", ColumnData::Int(ints.into_iter().map(Some).collect())),
        column(
            "f",
            ColumnData::Float(floats.into_iter().map(Some).collect()),
        ),
    ]);
    // 2^53 + 1 is no float: a cast to f64 would make it equal 2^53.
    assert_eq!(select("i = 9007199254740992.0", &t), vec![2]);
    assert_eq!(select("i > 9007199254740992.0", &t), vec![3, 4]);
    // The literal 9007199254740993.0 is the float 2^53.
    assert_eq!(select("i >= 9007199254740993.0", &t), vec![2, 3, 4]);
    assert_eq!(
        select("i < 9223372036854775808.0", &t),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(select("i >= 9223372036854775808.0", &t), Vec::<i64>::new());
    assert_eq!(select("i <= -9223372036854775808.0", &t), vec![5]);
    assert_eq!(select("i > -0.5 and i < 0.5", &t), vec![6]);
    assert_eq!(select("i = 0.0", &t), vec![6]);
    assert_eq!(select("f = 9007199254740993", &t), Vec::<i64>::new());
    assert_eq!(select("f < 9007199254740993", &t), vec![1, 3, 4, 6]);
    assert_eq!(select("f > 9007199254740993", &t), vec![2, 5]);
    assert_eq!(select("f = 0", &t), vec![4]);
    assert_eq!(select("f = i", &t), Vec::<i64>::new());
    assert_eq!(select("f > i", &t), vec![1, 2, 5]);
    assert_eq!(select("i in (9007199254740992.0, 0.5, 0)", &t), vec![2, 6]);
    assert_eq!(select("f in (9007199254740993, 0, 1)", &t), vec![4]);
    assert_eq!(
        select("i between 9007199254740991.0 and 9007199254740993", &t),
        vec![1, 2, 3]
    );
    assert_eq!(
        cmp_int_float(i64::MAX, 9_223_372_036_854_775_807.0),
        Ordering::Less
    );
    assert_eq!(
        cmp_int_float(i64::MIN, -9_223_372_036_854_775_808.0),
        Ordering::Equal
    );
    assert_eq!(cmp_int_float(-1, -0.5), Ordering::Less);
    assert_eq!(cmp_int_float(-1, -1.5), Ordering::Greater);
}

#[test]
fn nan_counts_as_null() {
    let t = table(vec![column(
        "f",
        ColumnData::Float(vec![Some(f64::NAN), Some(1.0), None]),
    )]);
    assert_eq!(select("f != 2", &t), vec![2]);
    assert_eq!(select("f is null", &t), vec![1, 3]);
    assert_eq!(select("not (f > 0)", &t), Vec::<i64>::new());
}

#[test]
fn dates_and_datetimes_mix_as_instants() {
    let t = table(vec![
        column(
            "d",
            ColumnData::Date(vec![
                Some(date("1969-12-31")),
                Some(date("1970-01-01")),
                Some(date("1970-01-02")),
                None,
            ]),
        ),
        column(
            "t",
            ColumnData::DateTime(vec![
                Some(at("1969-12-31T23:59:59.999999Z")),
                Some(at("1970-01-01T00:00:00Z")),
                Some(at("1970-01-01T12:00:00Z")),
                Some(at("2026-01-01T00:00:00Z")),
            ]),
        ),
    ]);
    assert_eq!(select("d = 1970-01-01T00:00:00Z", &t), vec![2]);
    assert_eq!(select("d < 1970-01-01T00:00:00.000001Z", &t), vec![1, 2]);
    assert_eq!(select("d = t", &t), vec![2]);
    assert_eq!(select("d < t", &t), vec![1]);
    assert_eq!(select("t < 1970-01-01", &t), vec![1]);
    assert_eq!(select("t >= 1970-01-01 and t < 1970-01-02", &t), vec![2, 3]);
    assert_eq!(select("d + 12h = t", &t), Vec::<i64>::new());
    assert_eq!(select("d + 1d - 1s > 1970-01-01T23:59:58Z", &t), vec![2, 3]);
    assert_eq!(
        select("d between 1969-12-31T00:00:01Z and 1970-01-02", &t),
        vec![2, 3]
    );
    assert_eq!(
        select("d in (1970-01-01, 1970-01-02T00:00:00Z)", &t),
        vec![2, 3]
    );
    assert_eq!(select("d not in (1970-01-01)", &t), vec![1, 3]);
    let now = at("1970-01-03T00:00:00Z");
    assert_eq!(
        select_at("d > now() - 2d", &t, now, &BTreeMap::new()),
        vec![3]
    );
    assert_eq!(
        select_at("t > now() - 90d", &t, now, &BTreeMap::new()),
        vec![1, 2, 3, 4]
    );
    assert_eq!(select_at("t > now()", &t, now, &BTreeMap::new()), vec![4]);
    // Shifts are exact far beyond the range of stored instants.
    assert_eq!(
        select("t + 100000000d + 100000000d > 9999-12-31", &t),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        select(
            "t + 100000000d + 100000000d - 100000000d - 100000000d = t",
            &t
        )
        .len(),
        4
    );
}

fn strings(values: &[Option<&str>]) -> ColumnData {
    ColumnData::String(values.iter().copied().collect())
}

#[test]
fn text_matches_are_bytewise_and_ascii_case_folded() {
    let t = table(vec![column(
        "s",
        strings(&[
            Some(""),
            Some("Éa"),
            Some("éA"),
            Some("x@Example.com"),
            None,
            Some("a\0b"),
        ]),
    )]);
    // An empty pattern matches every non-null text, a null value is unknown either way.
    assert_eq!(select("s contains \"\"", &t), vec![1, 2, 3, 4, 6]);
    assert_eq!(select("s starts_with \"\"", &t), vec![1, 2, 3, 4, 6]);
    assert_eq!(select("s ends_with \"\"", &t), vec![1, 2, 3, 4, 6]);
    assert_eq!(select("not (s ends_with \"\")", &t), Vec::<i64>::new());
    assert_eq!(select("not (s contains \"a\")", &t), vec![1, 3]);
    // Case-sensitive bytes; the i-variants fold ASCII only.
    assert_eq!(select("s contains \"a\"", &t), vec![2, 4, 6]);
    assert_eq!(select("s icontains \"a\"", &t), vec![2, 3, 4, 6]);
    assert_eq!(select("s istarts_with \"é\"", &t), vec![3]);
    assert_eq!(select("s istarts_with \"É\"", &t), vec![2]);
    assert_eq!(select("s iends_with \"@EXAMPLE.COM\"", &t), vec![4]);
    assert_eq!(
        select("s ends_with \"@example.com\"", &t),
        Vec::<i64>::new()
    );
    assert_eq!(select("s contains \"\\u{0}\"", &t), vec![6]);
    assert_eq!(select("s ends_with s", &t), vec![1, 2, 3, 4, 6]);
    assert_eq!(select("\"ab\" contains s", &t), vec![1]);
    // lower() is ASCII-only.
    assert_eq!(select("lower(s) = \"éa\"", &t), vec![3]);
    assert_eq!(select("lower(s) = \"Éa\"", &t), vec![2]);
    assert_eq!(
        select("lower(s) in (\"x@example.com\", \"nope\")", &t),
        vec![4]
    );
    // Bytewise order: "É" (C3 89) sorts after "x" (78).
    assert_eq!(select("s > \"x\"", &t), vec![2, 3, 4]);
    assert_eq!(select("s between \"\" and \"a\\u{0}c\"", &t), vec![1, 6]);
}

#[test]
fn in_lists_follow_the_null_rule() {
    let t = table(vec![
        column("n", ColumnData::Int(vec![Some(1), Some(2), None, Some(3)])),
        column("s", strings(&[Some("NL"), Some("BE"), None, Some("DE")])),
    ]);
    assert_eq!(select("n in (1, 2)", &t), vec![1, 2]);
    assert_eq!(select("n not in (1, 2)", &t), vec![4]);
    assert_eq!(select("not (n in (1, 2))", &t), vec![4]);
    assert_eq!(select("s in (\"NL\", \"BE\")", &t), vec![1, 2]);
    assert_eq!(select("s not in (\"NL\", \"BE\")", &t), vec![4]);
    assert_eq!(select("s in (\"NL\") or n is null", &t), vec![1, 3]);
    // A long list is hashed: same answers.
    let many: Vec<String> = (100..200)
        .map(|i| i.to_string())
        .chain(["3".into()])
        .collect();
    assert_eq!(select(&format!("n in ({})", many.join(", ")), &t), vec![4]);
    assert_eq!(
        select(&format!("n not in ({})", many.join(", ")), &t),
        vec![1, 2]
    );
    let names: Vec<String> = (0..20)
        .map(|i| format!("\"X{i}\""))
        .chain(["\"DE\"".into()])
        .collect();
    assert_eq!(select(&format!("s in ({})", names.join(", ")), &t), vec![4]);
    // Between: unknown with a null bound unless the other bound already fails.
    assert_eq!(select("n between 2 and 3", &t), vec![2, 4]);
    assert_eq!(select("n not between 2 and 3", &t), vec![1]);
}

#[test]
fn lists_match_ids_by_text() {
    let t = table(vec![column(
        "n",
        ColumnData::Int(vec![Some(1), Some(2), Some(3)]),
    )]);
    let mut lists = BTreeMap::new();
    lists.insert(
        "suppressed".to_owned(),
        vec![
            RecipientKey::Int(2),
            RecipientKey::String("3".into()),
            RecipientKey::Int(99),
        ],
    );
    lists.insert("vip".to_owned(), vec![RecipientKey::String("03".into())]);
    let now = at("2026-01-31T12:00:00Z");
    assert_eq!(
        select_at("in_list(\"suppressed\")", &t, now, &lists),
        vec![2, 3]
    );
    assert_eq!(
        select_at("not in_list(\"suppressed\")", &t, now, &lists),
        vec![1]
    );
    assert_eq!(
        select_at("in_list(\"vip\")", &t, now, &lists),
        Vec::<i64>::new()
    );
    // Known to the checker, absent from the map: empty.
    assert_eq!(
        select_at("not in_list(\"empty\")", &t, now, &lists),
        vec![1, 2, 3]
    );

    let text_ids = RecipientsTable {
        ids: RecipientIds::String([Some("7"), Some("a"), Some("07")].into_iter().collect()),
        columns: vec![],
    };
    let keys = [RecipientKey::Int(7), RecipientKey::String("07".into())];
    let selection = Selection::of_keys(&text_ids, &keys);
    assert_eq!(selection.rows().collect::<Vec<_>>(), vec![0, 2]);
}

#[test]
fn the_id_column_is_a_column() {
    let t = table(vec![column(
        "n",
        ColumnData::Int(vec![Some(1), Some(2), Some(3)]),
    )]);
    assert_eq!(select("id >= 2", &t), vec![2, 3]);
    assert_eq!(select("id = n", &t), vec![1, 2, 3]);
}

#[test]
fn a_rule_that_does_not_fit_the_table_is_an_error() {
    let t = table(vec![column("age", ColumnData::Int(vec![Some(1)]))]);
    let rule = rule("age >= 18", &t);
    let ctx_lists = BTreeMap::new();
    let ctx = EvalContext {
        now: Timestamp::EPOCH,
        lists: &ctx_lists,
    };
    let other = table(vec![column("agee", ColumnData::Int(vec![Some(1)]))]);
    assert!(matches!(
        evaluate(&rule, &other, &ctx),
        Err(EvalError::MissingColumn { ref name, .. }) if name == "age"
    ));
    let text = table(vec![column("age", strings(&[Some("18")]))]);
    let err = evaluate(&rule, &text, &ctx).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the rule does not fit the recipients table: cannot compare text with number (at 0..9)"
    );
    // A float column where the schema said integer still compares.
    let float = table(vec![column("age", ColumnData::Float(vec![Some(18.5)]))]);
    assert_eq!(evaluate(&rule, &float, &ctx).unwrap().count(), 1);
    let ragged = RecipientsTable {
        ids: RecipientIds::Int(vec![1, 2]),
        columns: vec![column("age", ColumnData::Int(vec![Some(1)]))],
    };
    assert!(matches!(
        evaluate(&rule, &ragged, &ctx),
        Err(EvalError::RaggedColumn { .. })
    ));
}

#[test]
fn selections_are_bitmaps() {
    let s = Selection::from_rows(130, [0, 63, 64, 129, 500]);
    assert_eq!(s.count(), 4);
    assert_eq!(s.rows().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
    assert!(s.contains(129) && !s.contains(128) && !s.contains(500));
    assert_eq!(s.words().len(), 3);
    assert_eq!(Selection::full(130).count(), 130);
    assert_eq!(Selection::full(128).words(), &[u64::MAX, u64::MAX]);
    assert_eq!(Selection::empty(0).rows().count(), 0);
    assert_eq!(s.intersection_count(&Selection::full(130)), 4);
    // `not` keeps the bits past the end clear.
    let t = table(vec![column("a", ColumnData::Bool(vec![Some(true); 70]))]);
    assert_eq!(select("not a", &t), Vec::<i64>::new());
    assert_eq!(select("not (not a)", &t).len(), 70);
}
