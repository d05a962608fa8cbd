//! `audlink-host`: everything of the `audlink` command that touches the outside world.
//!
//! The sandbox that runs the core's WebAssembly build lands here next (issue #6).
