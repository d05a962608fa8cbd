//! `audlink-host`: everything of the `audlink` command that touches the outside world.
//!
//! - [`sandbox`]: the wasmtime sandbox that runs the core's `abi` WebAssembly module (built by
//!   `build.rs`) with no capabilities, under a deadline and a memory cap, one fresh instance per
//!   call, compiled code cached on disk.
//! - [`guest`]: typed calls into the sandbox — the host builds a request (JSON options plus
//!   payloads streamed from files or memory) and reads the core's result types back.
//! - [`store`]: the database behind the backend-neutral `Store` trait (SQLite today, named by
//!   `--db` as a path or URL) — recipients, visitor links, lists, import runs with their
//!   reports, export runs and snapshots — and the segment-rule SQL run on it under a deadline;
//!   the only place SQL text of the store lives. [`input_key`] hashes an input into the key
//!   runs are stored by; [`unmatched`] packs an import's unmatched identifiers for the store.
//!
//! - [`cli`]: the command line (clap); [`config`]: `audlink.toml` and its data sources;
//!   [`commands`]: what each command does.
//!
//! - [`remote`]: the Experience Cloud client — IMS OAuth server-to-server tokens and the
//!   Audience Manager calls (data sources, traits, segments), retried and never duplicating.
//!
//! - [`serve`]: `audlink serve`'s HTTP API — bearer tokens with roles, limits, rule previews
//!   and lists over the database, every sandboxed call in a fresh pooled instance.
//!
//! - [`exchange`]: the file exchange — object storage (a local folder by default, or an
//!   S3-compatible bucket) and the ledger that processes each listed object once.

pub mod cli;
pub mod commands;
pub mod config;
pub mod exchange;
pub mod guest;
pub mod input_key;
pub mod memory;
pub mod parts;
pub mod remote;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod unmatched;
