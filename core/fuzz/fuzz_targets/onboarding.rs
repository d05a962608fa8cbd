//! Fuzzes the onboarding reader: no input may panic it, and its accounting must hold.
#![no_main]

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| onboarding(data));
