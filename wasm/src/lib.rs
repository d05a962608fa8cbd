//! `audlink-wasm`: the WebAssembly front doors over `audlink-core`.
//!
//! Both doors call one dispatch, so they cannot drift apart:
//!
//! - [`dispatch`]: a [`Workspace`](dispatch::Workspace) of loaded tables (recipients, visitor
//!   links, list members) and the operations over it — load, import, export, rule preview and
//!   rule → SQL — with one error type carrying file, line, span and reason.
//! - [`wire`]: the byte forms of the plain ABI (`wasm/ABI.md`): request and response framing,
//!   packed key columns, and [`wire::handle`], which runs a request's ops on a fresh workspace.
//!   It is ordinary Rust, so the host runs the very same function natively to compare with the
//!   sandbox, and decodes responses back into the core's types.
//! - feature `abi` (on wasm32): the module's exports — `audlink_abi_version`, `audlink_alloc`,
//!   `audlink_free`, `audlink_call` — and no imports at all.
//! - feature `js`: wasm-bindgen bindings for browsers and Node (a `Workspace` class; plain
//!   objects in and out, identifiers as strings, errors as JS `Error`s with fields).

pub mod dispatch;
pub mod wire;

#[cfg(all(feature = "abi", target_arch = "wasm32"))]
pub mod abi;

#[cfg(feature = "js")]
pub mod js;
