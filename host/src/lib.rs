//! `audlink-host`: everything of the `audlink` command that touches the outside world.
//!
//! - [`sandbox`]: the wasmtime sandbox that runs the core's `abi` WebAssembly module (built by
//!   `build.rs`) with no capabilities, under a deadline and a memory cap, one fresh instance per
//!   call, compiled code cached on disk.
//! - [`guest`]: typed calls into the sandbox — the host builds a request (JSON options plus
//!   payloads streamed from files or memory) and reads the core's result types back.
//!
//! The CLI, database, object storage and API client arrive with the following issues.

pub mod guest;
pub mod sandbox;
