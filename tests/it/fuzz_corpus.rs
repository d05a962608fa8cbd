//! Replays the fuzzers' seed corpus (`core/fuzz/seeds/<target>/`) through the same checks the
//! fuzz targets run, so `make test` guards against regressions without a nightly toolchain.
//! Inputs that once crashed a reader are kept in the seeds too.

use std::path::Path;

mod checks {
    include!("../../core/fuzz/checks.rs");
}

/// A reader check: panics when the reader breaks its contract on `bytes`.
type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("onboarding", checks::onboarding),
    ("outbound", checks::outbound),
    ("aep", checks::aep),
    ("recipients", checks::recipients),
    ("links", checks::links),
];

#[test]
fn seed_corpus_passes_every_check() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/fuzz/seeds");
    for (target, check) in TARGETS {
        let dir = seeds.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no seeds for {target} in {}",
            dir.display()
        );
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(
                outcome.is_ok(),
                "{target} check failed on {}",
                file.display()
            );
        }
    }
}
