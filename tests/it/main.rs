//! The one integration test binary of the workspace; one module per concern.

mod browser;
mod built;
mod cli;
mod core_purity;
mod emulator;
mod exchange;
mod fake_s3;
mod fuzz_corpus;
mod js_node;
mod layering;
mod openapi_fuzz;
mod remote;
mod rule_sql;
mod sandbox;
mod serve;
mod sync;
