use super::*;
use crate::rule::ast::{Sign, Span};
use crate::time::Date;

fn schema() -> Schema {
    Schema::new(
        [
            ("id", Type::Int),
            ("age", Type::Int),
            ("score", Type::Float),
            ("country", Type::String),
            ("vip", Type::Bool),
            ("signup", Type::Date),
            ("last_order", Type::DateTime),
        ]
        .map(|(n, t)| (n.to_owned(), t)),
    )
}

fn at(kind: ExprKind, start: usize, end: usize) -> Expr {
    Expr::new(kind, Span::new(start, end))
}

fn col(name: &str) -> Expr {
    at(ExprKind::Column(name.to_owned()), 0, name.len())
}

fn lit(lit: Literal) -> Expr {
    at(ExprKind::Literal(lit), 10, 12)
}

fn cmp(op: CmpOp, left: Expr, right: Expr) -> Expr {
    at(
        ExprKind::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
        },
        0,
        12,
    )
}

fn ok(expr: Expr) {
    let ty = type_of(&expr, &schema());
    let rule = check(expr, &schema(), None).expect("checks");
    assert_eq!(ty, Some(Type::Bool));
    assert_eq!(type_of(rule.expr(), &schema()), Some(Type::Bool));
}

fn message(expr: Expr) -> String {
    check(expr, &schema(), Some(&["suppressed".to_owned()]))
        .unwrap_err()
        .message
}

#[test]
fn comparable_pairs() {
    use Type::*;
    assert!(comparable(Int, Float, true));
    assert!(comparable(Date, DateTime, true));
    assert!(comparable(String, String, true));
    assert!(comparable(Bool, Bool, false));
    assert!(!comparable(Bool, Bool, true));
    assert!(!comparable(Date, String, false));
    assert!(!comparable(Int, String, false));
    assert!(!comparable(Duration, Duration, false));
    assert!(!comparable(Null, Int, false));
}

#[test]
fn accepts_well_typed_trees() {
    ok(col("vip"));
    ok(cmp(CmpOp::Ge, col("age"), lit(Literal::Float(17.5))));
    ok(cmp(CmpOp::Lt, col("signup"), col("last_order")));
    ok(cmp(CmpOp::Eq, col("vip"), lit(Literal::Bool(true))));
    let shifted = at(
        ExprKind::Shift {
            base: Box::new(at(ExprKind::Now, 0, 5)),
            sign: Sign::Minus,
            by: Box::new(lit(Literal::Duration(90 * 86_400_000_000))),
        },
        0,
        12,
    );
    assert_eq!(type_of(&shifted, &schema()), Some(Type::DateTime));
    ok(cmp(CmpOp::Gt, col("last_order"), shifted));
    ok(at(ExprKind::InList("suppressed".to_owned()), 0, 20));
    ok(at(
        ExprKind::Match {
            op: MatchOp::Contains,
            ignore_case: true,
            value: Box::new(at(ExprKind::Lower(Box::new(col("country"))), 0, 14)),
            pattern: Box::new(lit(Literal::String("nl".to_owned()))),
        },
        0,
        20,
    ));
    ok(at(
        ExprKind::IsNull {
            value: Box::new(col("signup")),
            negated: true,
        },
        0,
        20,
    ));
}

#[test]
fn type_errors_name_both_sides() {
    let date = Date::parse(b"2026-01-31").unwrap();
    assert_eq!(
        message(cmp(
            CmpOp::Gt,
            col("signup"),
            lit(Literal::String("2026-01-31x".to_owned()))
        )),
        "cannot compare date column \"signup\" with text \"2026-01-31x\""
    );
    assert_eq!(
        message(cmp(CmpOp::Eq, col("age"), lit(Literal::Date(date)))),
        "cannot compare whole number column \"age\" with date 2026-01-31"
    );
    assert_eq!(
        message(cmp(CmpOp::Lt, col("vip"), lit(Literal::Bool(false)))),
        "true/false values cannot be ordered with \"<\" — only \"=\" and \"!=\" work for them"
    );
    assert!(message(cmp(CmpOp::Eq, col("age"), lit(Literal::Null))).contains("use \"is null\""));
    assert!(
        message(cmp(CmpOp::Ne, col("age"), lit(Literal::Null))).contains("use \"is not null\"")
    );
    assert!(
        message(cmp(
            CmpOp::Gt,
            lit(Literal::Duration(1)),
            lit(Literal::Int(3))
        ))
        .starts_with("a duration such as 30d")
    );
    assert!(message(col("age")).starts_with("whole number column \"age\" is not a condition"));
}

#[test]
fn unknown_names_get_suggestions() {
    assert_eq!(
        message(cmp(CmpOp::Ge, col("agee"), lit(Literal::Int(18)))),
        "unknown column \"agee\" — did you mean \"age\"?"
    );
    assert_eq!(
        message(cmp(CmpOp::Ge, col("AGE"), lit(Literal::Int(18)))),
        "unknown column \"AGE\" — did you mean \"age\"?"
    );
    assert_eq!(message(col("zzzzzz")), "unknown column \"zzzzzz\"");
    assert_eq!(
        message(at(ExprKind::InList("supressed".to_owned()), 0, 20)),
        "unknown list \"supressed\" — did you mean \"suppressed\"?"
    );
    // Without known lists, any non-empty name passes.
    assert!(check(at(ExprKind::InList("x".to_owned()), 0, 9), &schema(), None).is_ok());
}

#[test]
fn in_lists_hold_literals_within_the_limit() {
    let list = |items: Vec<Expr>| {
        at(
            ExprKind::In {
                value: Box::new(col("age")),
                items,
                negated: false,
            },
            0,
            12,
        )
    };
    ok(list(vec![lit(Literal::Int(1)), lit(Literal::Float(2.5))]));
    assert!(message(list(vec![])).contains("at least one value"));
    assert!(message(list(vec![col("score")])).contains("not number column \"score\""));
    let many = (0..=MAX_IN_ITEMS as i64)
        .map(|n| lit(Literal::Int(n)))
        .collect();
    assert_eq!(
        message(list(many)),
        "an \"in\" list holds at most 10,000 values — use in_list(\"…\") for more"
    );
}

#[test]
fn edit_distance_is_bounded() {
    assert_eq!(edit_distance("age", "agee", 2), Some(1));
    assert_eq!(edit_distance("kitten", "sitting", 3), Some(3));
    assert_eq!(edit_distance("kitten", "sitting", 2), None);
    assert_eq!(
        did_you_mean("contry", ["country", "city"], 2),
        Some("country")
    );
}

/// Every node under `expr` (pre-order).
fn nodes(expr: &Expr) -> Vec<&Expr> {
    let mut out = vec![expr];
    let mut i = 0;
    while i < out.len() {
        let e = out[i];
        match &e.kind {
            ExprKind::Literal(_) | ExprKind::Column(_) | ExprKind::Now | ExprKind::InList(_) => {}
            ExprKind::Lower(x) | ExprKind::Not(x) | ExprKind::IsNull { value: x, .. } => {
                out.push(x)
            }
            ExprKind::Shift { base: l, by: r, .. }
            | ExprKind::Compare {
                left: l, right: r, ..
            }
            | ExprKind::Match {
                value: l,
                pattern: r,
                ..
            }
            | ExprKind::And(l, r)
            | ExprKind::Or(l, r) => out.extend([&**l, &**r]),
            ExprKind::In { value, items, .. } => {
                out.push(value);
                out.extend(items);
            }
            ExprKind::Between {
                value, low, high, ..
            } => out.extend([&**value, &**low, &**high]),
        }
        i += 1;
    }
    out
}

/// Random trees over the test schema's columns, biased towards well-typed ones.
fn arb_typed_expr() -> impl proptest::strategy::Strategy<Value = Expr> {
    use proptest::prelude::*;
    let names = [
        "id",
        "age",
        "score",
        "country",
        "vip",
        "signup",
        "last_order",
        "agee",
    ];
    crate::rule::print::tests::arb_expr().prop_map(move |mut e| {
        // Map arbitrary column names onto the schema's (and one unknown).
        fn rename(e: &mut Expr, names: &[&str; 8]) {
            if let ExprKind::Column(name) = &mut e.kind {
                let i = name.bytes().map(usize::from).sum::<usize>() % names.len();
                *name = names[i].to_owned();
            }
            match &mut e.kind {
                ExprKind::Lower(x) | ExprKind::Not(x) | ExprKind::IsNull { value: x, .. } => {
                    rename(x, names)
                }
                ExprKind::Shift { base: l, by: r, .. }
                | ExprKind::Compare {
                    left: l, right: r, ..
                }
                | ExprKind::Match {
                    value: l,
                    pattern: r,
                    ..
                }
                | ExprKind::And(l, r)
                | ExprKind::Or(l, r) => {
                    rename(l, names);
                    rename(r, names);
                }
                ExprKind::In { value, items, .. } => {
                    rename(value, names);
                    items.iter_mut().for_each(|i| rename(i, names));
                }
                ExprKind::Between {
                    value, low, high, ..
                } => {
                    rename(value, names);
                    rename(low, names);
                    rename(high, names);
                }
                _ => {}
            }
        }
        rename(&mut e, &names);
        e
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    #[test]
    fn type_of_agrees_with_the_checker(expr in arb_typed_expr()) {
        let schema = schema();
        let checker = Checker { schema: &schema, lists: None };
        let result = check(expr.clone(), &schema, None);
        if result.is_ok() {
            proptest::prop_assert_eq!(type_of(&expr, &schema), Some(Type::Bool));
            // Every node of a checked tree has the type the checker inferred.
            for node in nodes(&expr) {
                let inferred = checker.infer(node, 0).ok();
                proptest::prop_assert!(inferred.is_some());
                proptest::prop_assert_eq!(type_of(node, &schema), inferred);
            }
        }
        // Whatever the verdict, the checker points into the tree's text (here: spans 0..0).
        if let Err(e) = result {
            proptest::prop_assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn random_trees_are_sometimes_well_typed() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_typed_expr();
    let ok = (0..2000)
        .filter(|_| {
            let expr = strategy.new_tree(&mut runner).unwrap().current();
            check(expr, &schema(), None).is_ok()
        })
        .count();
    assert!(ok > 20, "only {ok} well-typed trees of 2000");
}
