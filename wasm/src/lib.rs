//! `audlink-wasm`: the WebAssembly front doors over `audlink-core`.
//!
//! Planned shape (see ARCHITECTURE.md): one request/response dispatch over the core, used by two
//! thin doors — feature `js`, wasm-bindgen bindings for browsers and Node, and feature `abi`, a
//! documented linear-memory ABI for the wasmtime host. Neither door exists yet; this crate only
//! fixes its place in the workspace.
