use proptest::prelude::*;

use super::*;
use crate::rule::ast::{CmpOp, Span};
use crate::time::{Date, Timestamp};

/// `expr` with every span set to `0..0`, to compare shapes.
pub(crate) fn erase(expr: &Expr) -> Expr {
    let b = |e: &Expr| Box::new(erase(e));
    let kind = match &expr.kind {
        ExprKind::Literal(_) | ExprKind::Column(_) | ExprKind::Now | ExprKind::InList(_) => {
            expr.kind.clone()
        }
        ExprKind::Lower(x) => ExprKind::Lower(b(x)),
        ExprKind::Shift { base, sign, by } => ExprKind::Shift {
            base: b(base),
            sign: *sign,
            by: b(by),
        },
        ExprKind::Compare { op, left, right } => ExprKind::Compare {
            op: *op,
            left: b(left),
            right: b(right),
        },
        ExprKind::In {
            value,
            items,
            negated,
        } => ExprKind::In {
            value: b(value),
            items: items.iter().map(erase).collect(),
            negated: *negated,
        },
        ExprKind::Between {
            value,
            low,
            high,
            negated,
        } => ExprKind::Between {
            value: b(value),
            low: b(low),
            high: b(high),
            negated: *negated,
        },
        ExprKind::IsNull { value, negated } => ExprKind::IsNull {
            value: b(value),
            negated: *negated,
        },
        ExprKind::Match {
            op,
            ignore_case,
            value,
            pattern,
        } => ExprKind::Match {
            op: *op,
            ignore_case: *ignore_case,
            value: b(value),
            pattern: b(pattern),
        },
        ExprKind::Not(x) => ExprKind::Not(b(x)),
        ExprKind::And(l, r) => ExprKind::And(b(l), b(r)),
        ExprKind::Or(l, r) => ExprKind::Or(b(l), b(r)),
    };
    Expr::new(kind, Span::default())
}

fn node(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

/// Random literals the printer can write back exactly.
pub(crate) fn arb_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Literal::Float),
        ".{0,8}".prop_map(Literal::String),
        (-719_528i32..=2_932_896).prop_map(|d| Literal::Date(Date::from_days(d).unwrap())),
        (Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros())
            .prop_map(|t| Literal::DateTime(Timestamp::from_unix_micros(t).unwrap())),
        (
            -1_000_000i64..1_000_000,
            prop::sample::select(vec![1i64, 60, 3_600, 86_400, 604_800])
        )
            .prop_map(|(n, unit)| Literal::Duration(n * unit * 1_000_000)),
    ]
}

/// Random column names: schema-like, keywords, odd characters.
pub(crate) fn arb_column() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "age",
            "country",
            "vip",
            "signup",
            "last_order",
            "score"
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "and", "NOT", "now", "Lower", "in_list", "null", "e5", "_"
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_][a-zA-Z0-9_ é`\\\\\"\n]{0,6}",
    ]
}

/// Random trees (not necessarily well-typed) with span `0..0`.
pub(crate) fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        arb_literal().prop_map(|l| node(ExprKind::Literal(l))),
        arb_column().prop_map(|c| node(ExprKind::Column(c))),
        Just(node(ExprKind::Now)),
        ".{0,6}".prop_map(|n| node(ExprKind::InList(n))),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        let cmp = prop::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ]);
        let m = prop::sample::select(vec![
            MatchOp::Contains,
            MatchOp::StartsWith,
            MatchOp::EndsWith,
        ]);
        let b = |e: Expr| Box::new(e);
        prop_oneof![
            inner.clone().prop_map(move |x| node(ExprKind::Lower(b(x)))),
            (inner.clone(), any::<bool>(), inner.clone()).prop_map(move |(base, plus, by)| {
                let sign = if plus { Sign::Plus } else { Sign::Minus };
                node(ExprKind::Shift {
                    base: b(base),
                    sign,
                    by: b(by),
                })
            }),
            (cmp, inner.clone(), inner.clone()).prop_map(move |(op, l, r)| node(
                ExprKind::Compare {
                    op,
                    left: b(l),
                    right: b(r)
                }
            )),
            (
                inner.clone(),
                prop::collection::vec(inner.clone(), 1..4),
                any::<bool>()
            )
                .prop_map(move |(v, items, negated)| node(ExprKind::In {
                    value: b(v),
                    items,
                    negated
                })),
            (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(
                move |(v, l, h, negated)| {
                    node(ExprKind::Between {
                        value: b(v),
                        low: b(l),
                        high: b(h),
                        negated,
                    })
                }
            ),
            (inner.clone(), any::<bool>()).prop_map(move |(v, negated)| node(ExprKind::IsNull {
                value: b(v),
                negated
            })),
            (m, any::<bool>(), inner.clone(), inner.clone()).prop_map(move |(op, i, v, p)| {
                node(ExprKind::Match {
                    op,
                    ignore_case: i,
                    value: b(v),
                    pattern: b(p),
                })
            }),
            inner.clone().prop_map(move |x| node(ExprKind::Not(b(x)))),
            (inner.clone(), inner.clone()).prop_map(move |(l, r)| node(ExprKind::And(b(l), b(r)))),
            (inner.clone(), inner).prop_map(move |(l, r)| node(ExprKind::Or(b(l), b(r)))),
        ]
    })
}

#[test]
fn literals_print_exactly() {
    let cases = [
        (Literal::Int(i64::MIN), "-9223372036854775808"),
        (Literal::Float(2.0), "2.0"),
        (Literal::Float(1e300), "1e300"),
        (Literal::Float(-0.5), "-0.5"),
        (Literal::Duration(0), "0s"),
        (Literal::Duration(-30 * 86_400_000_000), "-30d"),
        (Literal::Duration(14 * 86_400_000_000), "2w"),
        (Literal::Duration(90 * 60_000_000), "90m"),
        (Literal::Duration(1_500_000), "1s"),
        (
            Literal::String("tab\there \"q\" \u{0}".to_owned()),
            "\"tab\\there \\\"q\\\" \\u{0}\"",
        ),
        (
            Literal::Date(Date::parse(b"2026-01-31").unwrap()),
            "2026-01-31",
        ),
        (
            Literal::DateTime(Timestamp::parse(b"2026-01-31T12:00:00.5+01:00").unwrap()),
            "2026-01-31T11:00:00.500000Z",
        ),
    ];
    for (lit, text) in cases {
        assert_eq!(literal(&lit), text);
    }
}
