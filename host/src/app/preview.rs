//! Rule previews and lists: a segment rule compiled to SQL by the core (in the guest) and
//! counted, sampled and broken down in the database; the lists and their members.

use std::collections::BTreeMap;

use audlink_core::rule::preview::Cell;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::answer::{ListMembers, ListSize, Lists, RecipientId};
use super::{AppError, compile_rule};
use crate::guest::Guest;
use crate::plan::PreviewPlan;
use crate::store::Store;

/// The lists and their sizes (`audlink list ls`, `GET /api/lists`).
pub fn lists(store: &dyn Store) -> Result<Lists, AppError> {
    let lists = store.lists()?;
    Ok(Lists {
        lists: lists
            .into_iter()
            .map(|l| ListSize {
                name: l.name,
                members: l.members,
            })
            .collect(),
    })
}

/// A list's members, sorted by id (`audlink list show`).
pub fn list_members(store: &dyn Store, name: &str) -> Result<ListMembers, AppError> {
    let members = store.list_members(name)?;
    Ok(ListMembers {
        name: name.to_owned(),
        members: members.iter().map(RecipientId::from).collect(),
    })
}

/// One value of a breakdown and how many selected recipients have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bucket {
    /// The value (null, a boolean, a number, a string; dates as text): any JSON value.
    pub value: Value,
    /// Selected recipients with it.
    pub count: u64,
}

/// The selection broken down by one column's most frequent values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    /// The column.
    pub column: String,
    /// The ten most frequent values.
    pub values: Vec<Bucket>,
    /// Selected recipients with another value.
    pub other: u64,
    /// Selected recipients whose value is null.
    pub null: u64,
}

/// `audlink segment preview --json`, `POST /api/rules/preview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    /// The rule in canonical form.
    pub rule: String,
    /// Recipients selected.
    pub count: u64,
    /// Recipients in all.
    pub total: u64,
    /// The first selected recipients: `id` and every column.
    #[schema(value_type = Vec<Object>)]
    pub sample: Vec<BTreeMap<String, Value>>,
    /// The breakdown, when a column was asked for.
    pub breakdown: Option<Breakdown>,
}

fn cell_json(cell: &Cell) -> Value {
    serde_json::to_value(cell).expect("cells serialize")
}

/// Previews `plan`'s rule: compiled to SQL in the guest, counted, sampled and broken down in
/// the database.
pub fn preview(
    guest: &dyn Guest,
    store: &mut dyn Store,
    plan: &PreviewPlan,
) -> Result<Preview, AppError> {
    let compiled = compile_rule(guest, store, &plan.rule, plan.now)?;
    let count = store.rule_count(&compiled.clause, plan.deadline)?;
    let sample = store.rule_sample(&compiled.clause, plan.sample, plan.deadline)?;
    let breakdown = match &plan.by {
        Some(column) => Some(store.rule_breakdown(&compiled.clause, column, 10, plan.deadline)?),
        None => None,
    };
    let rows = sample
        .rows
        .iter()
        .map(|row| {
            let mut object = BTreeMap::new();
            let id = serde_json::to_value(RecipientId::from(&row.id)).expect("ids serialize");
            object.insert("id".to_owned(), id);
            for (column, value) in sample.columns.iter().zip(&row.values) {
                object.insert(column.name.clone(), cell_json(value));
            }
            object
        })
        .collect();
    Ok(Preview {
        rule: compiled.canonical,
        count: count.selected,
        total: count.total,
        sample: rows,
        breakdown: breakdown.map(|b| Breakdown {
            column: b.column,
            values: b
                .top
                .iter()
                .map(|bucket| Bucket {
                    value: cell_json(&bucket.value),
                    count: bucket.count,
                })
                .collect(),
            other: b.other,
            null: b.null,
        }),
    })
}
