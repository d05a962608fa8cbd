//! `audlink-tests`: cross-crate tests of audlink.
//!
//! The tests themselves are one integration binary, `it/main.rs`, with a module per concern. This
//! library holds what they share; later it grows the Experience Cloud emulator (a test-only HTTP
//! server) and the browser test driver.
