//! Where the build outputs the tests run (the `audlink` binary, the Node build) are, and whether
//! they are newer than the sources they are built from.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// A file's modification time (the epoch when unknown).
pub(crate) fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The newest `.rs` file under `dir` and its time.
pub(crate) fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let found = if path.is_dir() {
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            Some((modified(&path), path))
        } else {
            None
        };
        if let Some(found) = found
            && newest.as_ref().is_none_or(|n| found.0 > n.0)
        {
            newest = Some(found);
        }
    }
    newest
}
