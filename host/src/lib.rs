//! `audlink-host`: everything of the `audlink` command that touches the outside world.
//!
//! Layers, top to bottom (a module only uses those below it):
//!
//! - front doors: [`cli`] (the command line: flags → plans, answers → text or JSON, exit
//!   codes), [`serve`] (`audlink serve`: requests → plans, answers → responses) and [`sync`]
//!   (`audlink sync`: `[[job]]` tables → plans, on their intervals);
//! - [`app`]: the application layer — the workflows (loads, import, export, previews, lists)
//!   over the two seams, with typed answers and [`app::AppError`];
//! - the seams and the edges: [`store`] (the database), [`guest`] (where the core runs: the
//!   wasmtime [`sandbox`], or natively), [`exchange`] (a folder or an S3 bucket), [`remote`]
//!   (the Experience Cloud client), [`config`] (`audlink.toml`), [`parts`] and [`memory`];
//! - [`plan`]: what a front door asks the application layer to do, in the domain's terms.

pub mod app;
pub mod cli;
pub mod config;
pub mod exchange;
pub mod guest;
pub mod memory;
pub mod parts;
pub mod plan;
pub mod remote;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod sync;
