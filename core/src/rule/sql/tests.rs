use super::*;
use crate::rule::check::check;
use crate::rule::parser::parse;

fn schema() -> Schema {
    Schema::new(
        [
            ("id", Type::Int),
            ("age", Type::Int),
            ("score", Type::Float),
            ("country", Type::String),
            ("email", Type::String),
            ("vip", Type::Bool),
            ("signup", Type::Date),
            ("last_order", Type::DateTime),
            ("odd \"name\"", Type::Int),
        ]
        .map(|(n, t)| (n.to_owned(), t)),
    )
}

fn now() -> Timestamp {
    "2026-01-31T12:00:00Z".parse().expect("timestamp")
}

fn compile(text: &str, dialect: Dialect) -> SqlWhere {
    let rule = check(parse(text).expect("parses"), &schema(), None).expect("checks");
    to_sql(&rule, &schema(), dialect, &SqlTables::default(), now()).expect("compiles")
}

/// The clause and its parameters, one per line.
fn show(text: &str, dialect: Dialect) -> String {
    let clause = compile(text, dialect);
    let mut out = clause.text;
    for (i, p) in clause.params.iter().enumerate() {
        out.push_str(&format!("\n{}: {p:?}", i + 1));
    }
    out
}

#[test]
fn the_benchmark_rule_in_both_dialects() {
    let rule = "country in (\"NL\", \"BE\") and age >= 18 and last_order > now() - 90d \
                and not in_list(\"suppressed\") and email ends_with \"@example.com\"";
    insta::assert_snapshot!(show(rule, Dialect::Sqlite), @r##"
        (((("recipients"."country" IN (?1, ?2)) AND ("recipients"."age" >= ?3)) AND ("recipients"."last_order" > ?4)) AND ((NOT EXISTS (SELECT 1 FROM "list_members" WHERE "list_members"."list_name" = ?5 AND "list_members"."recipient_id" = "recipients"."id")) AND (CASE WHEN length(CAST("recipients"."email" AS BLOB)) = 0 THEN length(CAST(?6 AS BLOB)) = 0 ELSE substr(CAST("recipients"."email" AS BLOB), length(CAST("recipients"."email" AS BLOB)) - length(CAST(?6 AS BLOB)) + 1) = CAST(?6 AS BLOB) END)))
        1: Text("NL")
        2: Text("BE")
        3: Int(18)
        4: Int(1762084800000000)
        5: Text("suppressed")
        6: Text("@example.com")
        "##);
    insta::assert_snapshot!(show(rule, Dialect::Postgres), @r##"
        (((("recipients"."country" IN ($1::text, $2::text)) AND ("recipients"."age" >= $3::bigint)) AND ("recipients"."last_order" > $4::bigint)) AND ((NOT EXISTS (SELECT 1 FROM "list_members" WHERE "list_members"."list_name" = $5::text AND "list_members"."recipient_id" = "recipients"."id")) AND (right("recipients"."email", length($6::text)) = $6::text)))
        1: Text("NL")
        2: Text("BE")
        3: Int(18)
        4: Int(1762084800000000)
        5: Text("suppressed")
        6: Text("@example.com")
        "##);
}

#[test]
fn numbers_fold_exactly_into_one_type() {
    insta::assert_snapshot!(show("age >= 17.5 and age < 2.0 and age = 0.5 and age != 3.0", Dialect::Sqlite), @r##"
        ((("recipients"."age" >= ?1) AND ("recipients"."age" < ?2)) AND (("recipients"."age" <> "recipients"."age") AND ("recipients"."age" <> ?3)))
        1: Int(18)
        2: Int(2)
        3: Int(3)
        "##);
    insta::assert_snapshot!(show("age < 1e300 or age > -1e300 or age <= 9223372036854775808.0", Dialect::Sqlite), @r##"
        ((("recipients"."age" = "recipients"."age") OR ("recipients"."age" = "recipients"."age")) OR ("recipients"."age" = "recipients"."age"))
        "##);
    insta::assert_snapshot!(show("score < 9007199254740993 or score = 9007199254740993 or score >= 18", Dialect::Sqlite), @r##"
        ((("recipients"."score" <= ?1) OR ("recipients"."score" <> "recipients"."score")) OR ("recipients"."score" >= ?2))
        1: Float(9007199254740992.0)
        2: Float(18.0)
        "##);
    insta::assert_snapshot!(show("age in (1, 2.5, 3.0) and score in (1, 9007199254740993)", Dialect::Sqlite), @r##"
        (("recipients"."age" IN (?1, ?2)) AND ("recipients"."score" IN (?3)))
        1: Int(1)
        2: Int(3)
        3: Float(1.0)
        "##);
    insta::assert_snapshot!(show("age < score", Dialect::Sqlite), @r##"
        ("recipients"."age" < "recipients"."score")
        "##);
    insta::assert_snapshot!(show("age < score", Dialect::Postgres), @r##"
        (CAST("recipients"."age" AS numeric) < CAST("recipients"."score" AS numeric))
        "##);
}

#[test]
fn dates_times_and_shifts() {
    insta::assert_snapshot!(show("signup < 2026-01-01 and signup >= now() - 30d and signup + 1d > last_order", Dialect::Sqlite), @r##"
        ((("recipients"."signup" < ?1) AND (("recipients"."signup" * 86400000000) >= ?2)) AND ((("recipients"."signup" * 86400000000) + ?3) > "recipients"."last_order"))
        1: Int(20454)
        2: Int(1767268800000000)
        3: Int(86400000000)
        "##);
    insta::assert_snapshot!(show("signup in (2026-01-01, 2026-01-02T00:00:00Z) and last_order = 2026-01-01", Dialect::Sqlite), @r##"
        ((("recipients"."signup" * 86400000000) IN (?1, ?2)) AND ("recipients"."last_order" = ?3))
        1: Int(1767225600000000)
        2: Int(1767312000000000)
        3: Int(1767225600000000)
        "##);
}

#[test]
fn text_booleans_and_nulls() {
    insta::assert_snapshot!(show("lower(email) icontains \"X\" and country istarts_with \"n\" and country > \"a\"", Dialect::Sqlite), @r##"
        (((instr(CAST(lower(lower("recipients"."email")) AS BLOB), CAST(?1 AS BLOB)) > 0) AND (CASE WHEN length(CAST(lower("recipients"."country") AS BLOB)) = 0 THEN length(CAST(?2 AS BLOB)) = 0 ELSE substr(CAST(lower("recipients"."country") AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB) END)) AND ("recipients"."country" > ?3))
        1: Text("x")
        2: Text("n")
        3: Text("a")
        "##);
    insta::assert_snapshot!(show("lower(email) icontains \"X\" and country istarts_with \"n\" and country > \"a\"", Dialect::Postgres), @r##"
        (((strpos(translate(translate("recipients"."email", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), $1::text) > 0) AND starts_with(translate("recipients"."country", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), $2::text)) AND ("recipients"."country" COLLATE "C" > $3::text))
        1: Text("x")
        2: Text("n")
        3: Text("a")
        "##);
    insta::assert_snapshot!(show("vip and vip = false and (age > 1) != true and vip is null and not vip", Dialect::Sqlite), @r##"
        (((("recipients"."vip" <> 0) AND (NOT ("recipients"."vip" <> 0))) AND (NOT ("recipients"."age" > ?1))) AND ((("recipients"."vip" <> 0) IS NULL) AND (NOT ("recipients"."vip" <> 0))))
        1: Int(1)
        "##);
    insta::assert_snapshot!(show("`odd \"name\"` is not null and id between 1 and 10 and age not between 1 and 2", Dialect::Sqlite), @r##"
        ((("recipients"."odd ""name""" IS NOT NULL) AND (("recipients"."id" >= ?1) AND ("recipients"."id" <= ?2))) AND (NOT (("recipients"."age" >= ?3) AND ("recipients"."age" <= ?4))))
        1: Int(1)
        2: Int(10)
        3: Int(1)
        4: Int(2)
        "##);
    insta::assert_snapshot!(show("true or \"a\" contains \"\" or 1 < 2.5", Dialect::Sqlite), @"(((1 = 1) OR (1 = 1)) OR (1 = 1))");
}

#[test]
fn every_value_is_a_parameter() {
    // A string that looks like SQL stays a parameter.
    let clause = compile("country = \"x' OR 1=1 --\"", Dialect::Sqlite);
    assert_eq!(clause.text, "(\"recipients\".\"country\" = ?1)");
    assert_eq!(clause.params, vec![SqlValue::Text("x' OR 1=1 --".into())]);
    let clause = compile("country = \"a\" and age = 1", Dialect::Postgres);
    assert_eq!(
        clause.text,
        "((\"recipients\".\"country\" COLLATE \"C\" = $1::text) AND (\"recipients\".\"age\" = $2::bigint))"
    );
}

#[test]
fn names_come_from_the_tables_and_the_schema() {
    let rule = check(parse("id = 1 and in_list(\"x\")").unwrap(), &schema(), None).unwrap();
    let tables = SqlTables {
        recipients: "people".into(),
        id_column: "key \"k\"".into(),
        list_members: "members".into(),
        list_column: "list".into(),
        member_column: "who".into(),
    };
    let clause = to_sql(&rule, &schema(), Dialect::Sqlite, &tables, now()).unwrap();
    insta::assert_snapshot!(clause.text, @r##"
        (("people"."key ""k""" = ?1) AND EXISTS (SELECT 1 FROM "members" WHERE "members"."list" = ?2 AND "members"."who" = "people"."key ""k"""))
        "##);
    assert_eq!(
        tables.select_ids(&clause).split(" WHERE ").next(),
        Some("SELECT \"key \"\"k\"\"\" FROM \"people\"")
    );
    // A column missing from the schema is an error at its span.
    let other = Schema::new([("id".to_owned(), Type::Int)]);
    let err = to_sql(
        &rule_of("age > 1"),
        &other,
        Dialect::Sqlite,
        &SqlTables::default(),
        now(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown column \"age\" (at 0..3)");
}

fn rule_of(text: &str) -> Rule {
    check(parse(text).unwrap(), &schema(), None).unwrap()
}

#[test]
fn storage_types() {
    assert_eq!(storage_type(Type::Date, Dialect::Sqlite), Some("INTEGER"));
    assert_eq!(
        storage_type(Type::Float, Dialect::Postgres),
        Some("double precision")
    );
    assert_eq!(storage_type(Type::Duration, Dialect::Sqlite), None);
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
}
