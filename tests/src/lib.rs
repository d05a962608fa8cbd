//! `audlink-tests`: cross-crate tests of audlink.
//!
//! The tests themselves are one integration binary, `it/main.rs`, with a module per concern. This
//! library holds what they share; later the browser test driver. The Experience Cloud emulator (a
//! test-only HTTP server) lives beside the tests that use it, in `it/emulator.rs`.
