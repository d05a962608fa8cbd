//! The application layer: the workflows of audlink — loads, import, export, rule previews and
//! compilation, lists — over two seams, the [`Store`] (the database) and the [`Guest`] (where
//! the core runs). Every front door (the command line in [`crate::cli`], the HTTP server in
//! [`crate::serve`], the scheduler in [`crate::sync`]) turns its own input into a plan
//! ([`crate::plan`]), calls a workflow here and turns the typed answer ([`answer`]) or the
//! [`AppError`] into its own output: text or JSON and an exit code, or an HTTP response.
//!
//! Workflows only move bytes and rows: files and tables go into the guest (packed tables,
//! streamed files), the core's answers come back and are written. Every decision about
//! identifiers is the core's. Nothing here parses flags, reads a request or prints.
//!
//! - [`load`]: `recipients load` and `visitors load` (files read in parts by the guest);
//! - [`import`]: shared audiences into lists, once per input;
//! - [`export`]: a list or a rule's recipients as onboarding files, resumable;
//! - [`preview`]: rule previews and the lists' summary;
//! - [`remote`]: the platform half of an export (trait and segment found or created);
//! - [`answer`]: the typed documents every front door returns (`--json`, API bodies);
//! - [`error`]: why a workflow failed ([`AppError`]).

pub mod answer;
pub mod error;
pub mod export;
pub mod import;
pub mod load;
pub mod preview;
pub mod remote;

pub use error::AppError;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audlink_core::datasource::{DataSource, Identifier};
use audlink_core::export::OPTED_OUT_COLUMN;
use audlink_core::rule::sql::SqlTables;
use audlink_core::time::Timestamp;
use audlink_wasm::dispatch::{SqlOutput, SqlSpec};
use audlink_wasm::wire::{Op, table};

use crate::guest::{Guest, Request};
use crate::store::Store;

/// How long a database query of a preview or rule may run by default.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(60);

/// The current time (the host's clock; the core never reads one).
pub fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Timestamp::from_unix_micros(micros).expect("the clock is within years 0000..=9999")
}

/// Checks that a path is a readable file (a failed job naming it otherwise).
pub fn readable(path: &Path) -> Result<(), AppError> {
    let file =
        std::fs::File::open(path).map_err(|e| AppError::Job(format!("{}: {e}", path.display())))?;
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(AppError::Job(format!("{}: not a file", path.display()))),
        Err(e) => Err(AppError::Job(format!("{}: {e}", path.display()))),
    }
}

/// The file name of a path, for the core (names carry metadata).
pub fn base_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Hands `request` what matching through `data_source` reads from the database, packed: the
/// recipient ids with the `opted_out` column and, for declared ids, the key column; the
/// visitor links for visitor ids. Nothing before the first recipients load.
fn put_tables(
    store: &dyn Store,
    data_source: &DataSource,
    request: &mut Request,
) -> Result<(), AppError> {
    if store.has_recipients_table()? {
        let mut wanted = vec![OPTED_OUT_COLUMN];
        if let Identifier::DeclaredId(key) = &data_source.identifier {
            wanted.push(&key.column);
        }
        let recipients = request.bytes(table::encode_table(&store.recipients_columns(&wanted)?));
        request.op(Op::SetRecipients {
            payload: recipients,
        });
        if matches!(data_source.identifier, Identifier::VisitorId) {
            let links = request.bytes(table::encode_links(&store.links()?));
            request.op(Op::SetLinks { payload: links });
        }
    }
    Ok(())
}

/// Compiles `rule` to SQL in the guest, against the database's schema, lists and dialect.
pub fn compile_rule(
    guest: &dyn Guest,
    store: &dyn Store,
    rule: &str,
    now: Timestamp,
) -> Result<SqlOutput, AppError> {
    let lists: Vec<String> = store.lists()?.into_iter().map(|l| l.name).collect();
    let mut request = Request::new();
    request.op(Op::RuleSql {
        spec: SqlSpec {
            rule: rule.to_owned(),
            schema: store.schema()?,
            lists: Some(lists),
            dialect: store.dialect(),
            tables: SqlTables::default(),
            now,
        },
    });
    guest
        .call(&request)?
        .typed(0)
        .map_err(|e| AppError::Job(e.to_string()))
}
