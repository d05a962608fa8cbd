//! The wasmtime sandbox: runs the core's `abi` module (`wasm/ABI.md`) with no capabilities, under
//! a per-call deadline and a memory cap.
//!
//! - The module is compiled once per process ([`Sandbox::new`]); the compiled code is cached on
//!   disk ([`cache`]), keyed by the module's SHA-256 and the engine's compatibility hash, so a
//!   second start does not compile again.
//! - The module has no imports and gets none: no WASI, no host functions. Bytes go in through
//!   `audlink_alloc` + memory writes, and come out of memory.
//! - Every call gets a fresh instance (from an [`InstancePre`]) in a fresh store, which is
//!   dropped afterwards: a call that trapped, ran out of time or hit the memory cap leaves
//!   nothing behind, and the next call starts clean.
//! - Deadline: epoch interruption. A ticker thread advances the engine's epoch every
//!   [`TICK`]; a call may run for [`Limits::deadline`] (rounded up to ticks). Fuel is not used:
//!   it costs speed on every instruction.
//! - Memory: a [`ResourceLimiter`] refuses growth past [`Limits::memory`] (default 2 GiB, see
//!   [`DEFAULT_MEMORY`]; wasm32 cannot address more than 4 GiB) and remembers that it did, so the error says which limit
//!   was hit.

pub mod cache;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use audlink_wasm::wire::envelope::{self, ABI_VERSION};
use wasmtime::{
    Config, Engine, Instance, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module,
    OptLevel, PoolingAllocationConfig, ResourceLimiter, Store, Trap, TypedFunc,
};

/// The guest module, built by `build.rs` from `audlink-wasm` with feature `abi`.
pub static GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/audlink_guest.wasm"));

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(10);

/// Default memory cap of one call: 2 GiB. The 10M-line import benchmark (1 GiB of payloads:
/// links and audience) peaks at 1.56 GiB of guest memory, because each payload is freed after
/// its last op; 4 GiB is all wasm32 can address, i.e. no cap. See BENCHMARKS.md.
pub const DEFAULT_MEMORY: u64 = 2 << 30;

/// Default deadline of one call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// The limits every call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory the guest may have, in bytes (at most 4 GiB).
    pub memory: u64,
    /// Longest a call may run.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: DEFAULT_MEMORY,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// Why a sandboxed call failed. The guest's own answers (a file that cannot be read, a bad
/// rule) are not errors here: they come back in the response.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The call ran longer than the deadline and was stopped.
    #[error("the sandboxed call ran past its deadline of {limit:?} and was stopped")]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The guest needed more memory than the cap.
    #[error(
        "the sandboxed call needed more than its memory limit of {limit} bytes and was stopped"
    )]
    Memory {
        /// The cap in bytes.
        limit: u64,
    },
    /// The guest trapped for another reason (a bug in the guest).
    #[error("the sandboxed call trapped: {0}")]
    Trap(String),
    /// The module does not follow the ABI this host speaks.
    #[error("the guest module does not follow the ABI: {0}")]
    Abi(String),
    /// A payload file could not be read.
    #[error("{path}: {source}")]
    Payload {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine could not be set up or the module not compiled.
    #[error("cannot set up the sandbox: {0}")]
    Setup(String),
}

/// Where a request payload's bytes come from.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes in host memory.
    Bytes(Arc<[u8]>),
    /// A file, streamed into guest memory in chunks (never held whole by the host).
    File(PathBuf),
}

impl Payload {
    fn len(&self) -> Result<usize, SandboxError> {
        match self {
            Payload::Bytes(bytes) => Ok(bytes.len()),
            Payload::File(path) => {
                std::fs::metadata(path)
                    .map(|m| m.len() as usize)
                    .map_err(|source| SandboxError::Payload {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// The payload's bytes, read whole (for running the same request natively).
    pub fn read(&self) -> Result<Vec<u8>, SandboxError> {
        match self {
            Payload::Bytes(bytes) => Ok(bytes.to_vec()),
            Payload::File(path) => std::fs::read(path).map_err(|source| SandboxError::Payload {
                path: path.clone(),
                source,
            }),
        }
    }
}

/// What a call's store holds: the memory limiter.
#[derive(Debug)]
struct State {
    limiter: CapLimiter,
}

/// Refuses memory growth past the cap, and remembers having refused.
#[derive(Debug)]
struct CapLimiter {
    cap: usize,
    refused: bool,
    peak: usize,
}

impl ResourceLimiter for CapLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The outcome of one call: the response bytes and what the call used.
#[derive(Debug)]
pub struct CallOutput {
    /// The response, as `wasm/ABI.md` lays it out.
    pub response: Vec<u8>,
    /// The guest's linear memory at its largest, in bytes.
    pub peak_memory: u64,
    /// Time spent instantiating and writing the request into guest memory.
    pub copy_in: Duration,
    /// Time spent in `audlink_call` and copying the response out.
    pub run: Duration,
    /// Whether the memory cap refused a growth the guest survived (it answered, likely with an
    /// error it made of the failed allocation).
    pub memory_refused: bool,
}

/// The sandbox: one engine and one compiled module per process.
pub struct Sandbox {
    engine: Engine,
    pre: InstancePre<State>,
    limits: Limits,
    /// Instances alive now (each call's, until its store is dropped).
    live: AtomicUsize,
    /// Calls started.
    calls: AtomicU64,
    /// Advances the epoch while the sandbox lives (stopped when dropped).
    _ticker: Ticker,
}

/// Counts a call's instance as alive until dropped (declared before the call's store, so it is
/// dropped after it).
struct Alive<'a>(&'a AtomicUsize);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Advances the engine's epoch every [`TICK`] until dropped.
#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: &Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("audlink-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .expect("spawn the epoch thread")
        };
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn check_memory(limits: Limits) -> Result<(), SandboxError> {
    if limits.memory > 4 << 30 {
        return Err(setup(format!(
            "a memory limit of {} bytes is more than wasm32 can address (4 GiB)",
            limits.memory
        )));
    }
    Ok(())
}

fn setup(error: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(error.to_string())
}

/// The engine configuration every sandbox uses (the disk cache is keyed by its hash).
pub fn engine() -> Result<Engine, SandboxError> {
    Engine::new(&base_config()).map_err(setup)
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_simd(true);
    config
}

/// The engine of a long-running server: [`engine`]'s configuration with wasmtime's pooling
/// allocator, `instances` slots of at most `memory` bytes of linear memory each, reserved
/// once and reused (zeroed) by the next instance. An instantiation beyond `instances` at once
/// fails, so callers bound their concurrency to `instances`.
pub fn pooled_engine(instances: u32, memory: u64) -> Result<Engine, SandboxError> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .table_elements(100_000)
        .max_memory_size(usize::try_from(memory).unwrap_or(usize::MAX));
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(setup)
}

impl Sandbox {
    /// Compiles (or loads from `cache_dir`) the guest and prepares its instantiation.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Sandbox, SandboxError> {
        Sandbox::with_module(GUEST_WASM, limits, cache_dir)
    }

    /// [`Sandbox::new`] for another module following the ABI (tests).
    pub fn with_module(
        wasm: &[u8],
        limits: Limits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Sandbox, SandboxError> {
        check_memory(limits)?;
        Sandbox::with_engine(engine()?, wasm, limits, cache_dir)
    }

    /// A sandbox on a [`pooled_engine`] of `instances` slots (the server's): the module is
    /// compiled and pre-instantiated once; each call still gets a fresh instance, in a slot
    /// of the pool, dropped (and its memory zeroed) when the call ends.
    pub fn pooled(
        limits: Limits,
        instances: u32,
        cache_dir: Option<PathBuf>,
    ) -> Result<Sandbox, SandboxError> {
        check_memory(limits)?;
        let engine = pooled_engine(instances, limits.memory)?;
        Sandbox::with_engine(engine, GUEST_WASM, limits, cache_dir)
    }

    fn with_engine(
        engine: Engine,
        wasm: &[u8],
        limits: Limits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Sandbox, SandboxError> {
        let module = match &cache_dir {
            Some(dir) => cache::load_or_compile(&engine, wasm, dir)?,
            None => Module::new(&engine, wasm).map_err(setup)?,
        };
        if module.imports().len() != 0 {
            let names: Vec<String> = module
                .imports()
                .map(|i| format!("{}::{}", i.module(), i.name()))
                .collect();
            return Err(SandboxError::Abi(format!(
                "the module imports {} (it must import nothing)",
                names.join(", ")
            )));
        }
        let linker: Linker<State> = Linker::new(&engine);
        let pre = linker.instantiate_pre(&module).map_err(setup)?;
        let ticker = Ticker::start(&engine);
        Ok(Sandbox {
            engine,
            pre,
            limits,
            live: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            _ticker: ticker,
        })
    }

    /// The limits calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Instances alive now: calls in progress (0 when idle: no instance outlives its call).
    pub fn live_instances(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Calls started since the sandbox was made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Runs a request (its JSON and payloads) in a fresh instance; returns the response bytes.
    pub fn call(&self, json: &[u8], payloads: &[Payload]) -> Result<CallOutput, SandboxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        let _alive = Alive(&self.live);
        let mut store = Store::new(
            &self.engine,
            State {
                limiter: CapLimiter {
                    cap: usize::try_from(self.limits.memory).unwrap_or(usize::MAX),
                    refused: false,
                    peak: 0,
                },
            },
        );
        store.limiter(|state| &mut state.limiter);
        let ticks = self
            .limits
            .deadline
            .as_nanos()
            .div_ceil(TICK.as_nanos())
            .max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        let result = self.run(&mut store, json, payloads);
        let peak_memory = store.data().limiter.peak as u64;
        let memory_refused = store.data().limiter.refused;
        match result {
            Ok((response, copy_in, run)) => Ok(CallOutput {
                response,
                peak_memory,
                copy_in,
                run,
                memory_refused,
            }),
            Err(Failure::Sandbox(error)) => Err(error),
            Err(Failure::Wasm(error)) => Err(self.classify(&store, error)),
        }
    }

    fn memory_error(&self) -> Failure {
        Failure::Sandbox(SandboxError::Memory {
            limit: self.limits.memory,
        })
    }

    fn classify(&self, store: &Store<State>, error: wasmtime::Error) -> SandboxError {
        if store.data().limiter.refused {
            return SandboxError::Memory {
                limit: self.limits.memory,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => SandboxError::Deadline {
                limit: self.limits.deadline,
            },
            _ => SandboxError::Trap(format!("{error:#}")),
        }
    }

    fn run(
        &self,
        store: &mut Store<State>,
        json: &[u8],
        payloads: &[Payload],
    ) -> Result<(Vec<u8>, Duration, Duration), Failure> {
        let start = Instant::now();
        let instance = self.pre.instantiate(&mut *store)?;
        let exports = Exports::get(&instance, &mut *store)?;
        let version = exports.version.call(&mut *store, ())?;
        if version != ABI_VERSION {
            return Err(Failure::Sandbox(SandboxError::Abi(format!(
                "the module speaks ABI version {version}, this host {ABI_VERSION}"
            ))));
        }
        // Each payload in its own buffer, filled in place; the module frees it after its last
        // use, so a loaded file does not stay resident while later ops run.
        let mut table = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let len = payload.len()?;
            let len32 = u32::try_from(len).map_err(|_| self.memory_error())?;
            let address = exports.alloc.call(&mut *store, len32)?;
            if address == 0 {
                return Err(self.memory_error());
            }
            fill(&exports.memory, store, address as usize, len, payload)?;
            table.push((address, len32));
        }
        let head = envelope::encode_request_head(json, &table);
        let head_len = u32::try_from(head.len()).map_err(|_| self.memory_error())?;
        let ptr = exports.alloc.call(&mut *store, head_len)?;
        if ptr == 0 {
            return Err(self.memory_error());
        }
        write(&exports.memory, store, ptr as usize, &head)?;
        let copied = Instant::now();
        let response_ptr = exports.call.call(&mut *store, (ptr, head_len))? as usize;
        let data = exports.memory.data(&*store);
        let head = data
            .get(response_ptr..response_ptr + 16)
            .ok_or_else(|| abi("the response pointer is outside memory"))?;
        let len = envelope::response_len(head).map_err(|e| abi(e.to_string()))?;
        let response = data
            .get(response_ptr..response_ptr + len)
            .ok_or_else(|| abi("the response runs past the end of memory"))?;
        Ok((response.to_vec(), copied - start, copied.elapsed()))
    }
}

/// The exports `wasm/ABI.md` lists.
struct Exports {
    memory: Memory,
    version: TypedFunc<(), u32>,
    alloc: TypedFunc<u32, u32>,
    call: TypedFunc<(u32, u32), u32>,
}

impl Exports {
    fn get(instance: &Instance, store: &mut Store<State>) -> Result<Exports, Failure> {
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| abi("no exported memory"))?;
        let func = |name: &str| format!("export {name}");
        Ok(Exports {
            memory,
            version: instance
                .get_typed_func(&mut *store, "audlink_abi_version")
                .map_err(|e| abi(format!("{}: {e}", func("audlink_abi_version"))))?,
            alloc: instance
                .get_typed_func(&mut *store, "audlink_alloc")
                .map_err(|e| abi(format!("{}: {e}", func("audlink_alloc"))))?,
            call: instance
                .get_typed_func(&mut *store, "audlink_call")
                .map_err(|e| abi(format!("{}: {e}", func("audlink_call"))))?,
        })
    }
}

/// A failed call before classification.
enum Failure {
    Sandbox(SandboxError),
    Wasm(wasmtime::Error),
}

impl From<wasmtime::Error> for Failure {
    fn from(error: wasmtime::Error) -> Failure {
        Failure::Wasm(error)
    }
}

impl From<SandboxError> for Failure {
    fn from(error: SandboxError) -> Failure {
        Failure::Sandbox(error)
    }
}

fn abi(detail: impl Into<String>) -> Failure {
    Failure::Sandbox(SandboxError::Abi(detail.into()))
}

fn write(
    memory: &Memory,
    store: &mut Store<State>,
    at: usize,
    bytes: &[u8],
) -> Result<(), Failure> {
    memory
        .write(&mut *store, at, bytes)
        .map_err(|_| abi("audlink_alloc returned memory out of bounds"))
}

/// Size of the chunks a file payload is read in, straight into guest memory.
const CHUNK: usize = 1 << 20;

fn fill(
    memory: &Memory,
    store: &mut Store<State>,
    at: usize,
    len: usize,
    payload: &Payload,
) -> Result<(), Failure> {
    match payload {
        Payload::Bytes(bytes) => write(memory, store, at, bytes),
        Payload::File(path) => {
            let io = |source| {
                Failure::Sandbox(SandboxError::Payload {
                    path: path.clone(),
                    source,
                })
            };
            let mut file = File::open(path).map_err(io)?;
            let data = memory.data_mut(&mut *store);
            let target = data
                .get_mut(at..at + len)
                .ok_or_else(|| abi("audlink_alloc returned memory out of bounds"))?;
            for chunk in target.chunks_mut(CHUNK) {
                file.read_exact(chunk).map_err(io)?;
            }
            Ok(())
        }
    }
}
