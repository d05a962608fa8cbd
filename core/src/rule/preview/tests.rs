use super::*;
use crate::recipients::{Column, Strings};

fn table() -> RecipientsTable {
    // Ids out of order, so sample order is by id, not by row.
    let ids = vec![30, 10, 20, 50, 40, 60, 70];
    let country: Strings = [
        Some("NL"),
        Some("BE"),
        None,
        Some("NL"),
        Some("DE"),
        Some("BE"),
        Some("FR"),
    ]
    .into_iter()
    .collect();
    RecipientsTable {
        ids: RecipientIds::Int(ids),
        columns: vec![
            Column {
                name: "country".into(),
                data: ColumnData::String(country),
            },
            Column {
                name: "score".into(),
                data: ColumnData::Float(vec![
                    Some(0.0),
                    Some(-0.0),
                    None,
                    Some(1.5),
                    Some(1.5),
                    Some(2.0),
                    None,
                ]),
            },
            Column {
                name: "vip".into(),
                data: ColumnData::Bool(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                    Some(false),
                    Some(true),
                    Some(true),
                ]),
            },
            Column {
                name: "signup".into(),
                data: ColumnData::Date(vec![
                    Date::from_days(0),
                    None,
                    None,
                    None,
                    None,
                    None,
                    Date::from_days(-1),
                ]),
            },
        ],
    }
}

#[test]
fn count_and_sample_by_id() {
    let t = table();
    let all = Selection::full(t.len());
    assert_eq!(
        count(&all),
        Count {
            selected: 7,
            total: 7
        }
    );
    let some = Selection::from_rows(t.len(), [0, 2, 3, 4, 6]);
    let s = sample(&t, &some, 3).unwrap();
    let ids: Vec<RecipientKey> = s.rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [20, 30, 40].map(RecipientKey::Int));
    // The same as the first rows of `sorted_rows` that are selected.
    let expected: Vec<usize> = t
        .sorted_rows()
        .into_iter()
        .filter(|&r| some.contains(r))
        .take(3)
        .collect();
    assert_eq!(s.rows.iter().map(|r| r.row).collect::<Vec<_>>(), expected);
    assert_eq!(sample(&t, &some, 0).unwrap().rows.len(), 0);
    assert_eq!(sample(&t, &some, 100).unwrap().rows.len(), 5);
    insta::assert_snapshot!(serde_json::to_string_pretty(&sample(&t, &some, 2).unwrap()).unwrap(), @r##"
        {
          "columns": [
            {
              "name": "country",
              "type": "string"
            },
            {
              "name": "score",
              "type": "float"
            },
            {
              "name": "vip",
              "type": "bool"
            },
            {
              "name": "signup",
              "type": "date"
            }
          ],
          "rows": [
            {
              "row": 2,
              "id": 20,
              "values": [
                null,
                null,
                false,
                null
              ]
            },
            {
              "row": 0,
              "id": 30,
              "values": [
                "NL",
                0.0,
                true,
                "1970-01-01"
              ]
            }
          ]
        }
        "##);
    assert_eq!(
        sample(&t, &Selection::full(3), 1).unwrap_err(),
        PreviewError::WrongLength {
            expected: 7,
            found: 3
        }
    );
}

#[test]
fn text_ids_sample_bytewise() {
    let t = RecipientsTable {
        ids: RecipientIds::String(
            [Some("b"), Some("É"), Some("a"), Some("B")]
                .into_iter()
                .collect(),
        ),
        columns: vec![],
    };
    let s = sample(&t, &Selection::full(4), 4).unwrap();
    let ids: Vec<String> = s.rows.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["B", "a", "b", "É"]);
}

#[test]
fn breakdowns_rank_values_then_sum_the_rest() {
    let t = table();
    let all = Selection::full(t.len());
    let b = breakdown(&t, &all, "country", 2).unwrap();
    // BE and NL twice (BE first by value), null once, DE and FR in `other`.
    insta::assert_snapshot!(serde_json::to_string(&b).unwrap(), @r##"
        {"column":"country","total":7,"top":[{"value":"BE","count":2},{"value":"NL","count":2}],"null":1,"other":2,"other_values":2}
        "##);
    let b = breakdown(&t, &all, "score", 10).unwrap();
    // -0.0 and 0.0 are one value.
    insta::assert_snapshot!(serde_json::to_string(&b).unwrap(), @r##"
        {"column":"score","total":7,"top":[{"value":0.0,"count":2},{"value":1.5,"count":2},{"value":2.0,"count":1}],"null":2,"other":0,"other_values":0}
        "##);
    let b = breakdown(&t, &all, "vip", 1).unwrap();
    assert_eq!(
        (
            b.top[0].value.clone(),
            b.top[0].count,
            b.null,
            b.other,
            b.other_values
        ),
        (Cell::Bool(true), 4, 1, 2, 1)
    );
    let b = breakdown(&t, &all, "signup", 5).unwrap();
    insta::assert_snapshot!(serde_json::to_string(&b).unwrap(), @r##"
        {"column":"signup","total":7,"top":[{"value":"1969-12-31","count":1},{"value":"1970-01-01","count":1}],"null":5,"other":0,"other_values":0}
        "##);
    let b = breakdown(&t, &Selection::from_rows(7, [1, 3]), "id", 1).unwrap();
    assert_eq!(
        (b.total, b.top.len(), b.other, b.other_values),
        (2, 1, 1, 1)
    );
    assert_eq!(b.top[0].value, Cell::Int(10));
    assert_eq!(
        breakdown(&t, &all, "nope", 3).unwrap_err(),
        PreviewError::UnknownColumn {
            name: "nope".into()
        }
    );
}

#[test]
fn overlaps_of_up_to_eight_selections() {
    let a = Selection::from_rows(100, 0..50);
    let b = Selection::from_rows(100, 25..75);
    let c = Selection::from_rows(100, [99]);
    let o = overlap(&[&a, &b, &c]).unwrap();
    assert_eq!(
        o.counts,
        vec![vec![50, 25, 0], vec![25, 50, 0], vec![0, 0, 1]]
    );
    assert_eq!(overlap(&[]).unwrap().counts, Vec::<Vec<u64>>::new());
    let eight = vec![&a; 8];
    assert_eq!(overlap(&eight).unwrap().counts[7][0], 50);
    let nine = vec![&a; 9];
    assert_eq!(
        overlap(&nine).unwrap_err(),
        PreviewError::TooManySelections { given: 9, max: 8 }
    );
    assert_eq!(
        overlap(&[&a, &Selection::empty(3)]).unwrap_err(),
        PreviewError::WrongLength {
            expected: 100,
            found: 3
        }
    );
}
