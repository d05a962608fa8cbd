//! The on-disk cache of compiled guest code.
//!
//! A compiled module is stored as `<dir>/guest-<module sha256>-<engine hash>.cwasm`: the module's
//! SHA-256 and the hash wasmtime gives for everything that makes compiled code compatible
//! (wasmtime version, target, settings). A new module or engine therefore never loads stale
//! code. The directory is created private to the user (0700 on Unix) and files are written to a
//! temporary name and renamed, so a reader never sees half a file. Loading compiled code runs
//! native code: whoever can write the cache directory can run code as the user, which is why it
//! must not be shared.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::{SandboxError, setup};

/// The cache file for `wasm` compiled by `engine`.
pub fn path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let module: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("guest-{module}-{:016x}.cwasm", hasher.finish()))
}

/// Loads the compiled module from the cache, or compiles it and stores it there. A cache that
/// cannot be read or written only costs a compilation.
pub fn load_or_compile(engine: &Engine, wasm: &[u8], dir: &Path) -> Result<Module, SandboxError> {
    let file = path(engine, wasm, dir);
    if let Ok(bytes) = std::fs::read(&file)
        && let Some(module) = deserialize(engine, &bytes)
    {
        return Ok(module);
    }
    let module = Module::new(engine, wasm).map_err(setup)?;
    if let Ok(bytes) = module.serialize() {
        let _ = store(dir, &file, &bytes);
    }
    Ok(module)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Option<Module> {
    // SAFETY: the bytes come from our own private cache directory, written by
    // `Module::serialize` under a name keyed by the module and engine hashes; wasmtime checks
    // the header and engine compatibility again. The bytes are copied, so later changes to the
    // file cannot affect the loaded code.
    unsafe { Module::deserialize(engine, bytes) }.ok()
}

fn store(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The default cache directory: `$AUDLINK_CACHE_DIR`, else `$XDG_CACHE_HOME/audlink`, else
/// `~/.cache/audlink`; none when no home is known.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AUDLINK_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("audlink"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("audlink"))
}
