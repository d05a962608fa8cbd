//! `audlink-host`: everything of the `audlink` command that touches the outside world.
//!
//! Layers, top to bottom (a module only uses those below it):
//!
//! - front doors: [`cli`] (the command line: flags → plans, answers → text or JSON, exit
//!   codes), [`serve`] (`audlink serve`: requests → plans, answers → responses) and [`sync`]
//!   (`audlink sync`: `[[job]]` tables → plans, on their intervals);
//! - [`app`]: the application layer — the workflows (loads, import, export, previews, lists)
//!   over the two seams, with typed answers and [`app::AppError`];
//! - the seams and the edges: [`store`] (the database behind a backend-neutral trait, named
//!   by `--db` as a path or URL), [`guest`] (where the core runs: the wasmtime [`sandbox`], or
//!   natively), [`exchange`] (a folder or an S3 bucket), [`remote`] (the Experience Cloud
//!   client), [`config`] (`audlink.toml`), [`input_key`] (the hash an input is applied once
//!   by), [`unmatched`] (an import's unmatched identifiers packed for the store), [`parts`]
//!   and [`memory`];
//! - [`plan`]: what a front door asks the application layer to do, in the domain's terms.

pub mod app;
pub mod cli;
pub mod config;
pub mod exchange;
pub mod guest;
pub mod input_key;
pub mod memory;
pub mod parts;
pub mod plan;
pub mod remote;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod sync;
pub mod unmatched;
