//! The guest seam: typed calls into the core. A workflow builds a [`Request`] of ops and
//! payloads and hands it to a [`Guest`], which runs it and gives the core's answer back decoded
//! ([`audlink_wasm::wire::Decoded`]).
//!
//! Two guests implement the seam: the wasmtime [`Sandbox`] (what the binary runs: no
//! capabilities, a deadline, a memory cap) and [`Native`] (the very same `wire::handle`
//! compiled into the host: benchmarks and differential tests). The workflows of
//! [`crate::app`] only ever see `&dyn Guest`; the concrete sandbox type appears where a front
//! door builds it.

use std::path::PathBuf;
use std::sync::Arc;

use audlink_wasm::wire::{self, Decoded, Op, RequestJson, ResponseError, envelope};

use crate::sandbox::{CallOutput, Payload, Sandbox, SandboxError};

/// A request being built: ops run in order on a fresh workspace, and their payloads.
#[derive(Debug, Clone, Default)]
pub struct Request {
    ops: Vec<Op>,
    payloads: Vec<Payload>,
}

impl Request {
    /// An empty request.
    pub fn new() -> Request {
        Request::default()
    }

    /// Adds a payload held in memory; returns its index for the ops.
    pub fn bytes(&mut self, bytes: impl Into<Arc<[u8]>>) -> usize {
        self.payloads.push(Payload::Bytes(bytes.into()));
        self.payloads.len() - 1
    }

    /// Adds a payload streamed from a file when the request runs; returns its index.
    pub fn file(&mut self, path: impl Into<PathBuf>) -> usize {
        self.payloads.push(Payload::File(path.into()));
        self.payloads.len() - 1
    }

    /// Adds an op; returns its index (the index of its result).
    pub fn op(&mut self, op: Op) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// The payloads, in index order.
    pub fn payloads(&self) -> &[Payload] {
        &self.payloads
    }

    /// The request's JSON.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&RequestJson {
            abi: envelope::ABI_VERSION,
            ops: self.ops.clone(),
        })
        .expect("requests serialize")
    }

    /// The payloads' bytes (files read into memory), for running the request natively.
    pub fn read_payloads(&self) -> Result<Vec<Vec<u8>>, SandboxError> {
        self.payloads.iter().map(Payload::read).collect()
    }

    /// Runs the request in the sandbox: the response bytes.
    pub fn run(&self, sandbox: &Sandbox) -> Result<Vec<u8>, SandboxError> {
        Ok(self.run_logged(sandbox)?.response)
    }

    /// Runs the request in the sandbox and logs the call's figures (debug level).
    fn run_logged(&self, sandbox: &Sandbox) -> Result<CallOutput, SandboxError> {
        let output = sandbox.call(&self.json(), &self.payloads)?;
        tracing::debug!(
            copy_in_s = output.copy_in.as_secs_f64(),
            run_s = output.run.as_secs_f64(),
            peak_memory_mib = output.peak_memory >> 20,
            response_mib = output.response.len() >> 20,
            "sandboxed call"
        );
        Ok(output)
    }

    /// Runs the request natively, through the very function the guest runs.
    pub fn run_native(&self) -> Result<Vec<u8>, SandboxError> {
        Ok(wire::handle(
            envelope::ABI_VERSION,
            &self.json(),
            self.read_payloads()?,
        ))
    }
}

/// Runs requests in the core: the seam between the workflows and wherever the core runs.
pub trait Guest: Send + Sync + std::fmt::Debug {
    /// Runs `request` on a fresh workspace and decodes the response.
    fn call(&self, request: &Request) -> Result<Decoded, GuestError>;
}

impl Guest for Sandbox {
    fn call(&self, request: &Request) -> Result<Decoded, GuestError> {
        call(self, request)
    }
}

/// The core compiled into the host: the same dispatch as the guest module, without a sandbox
/// (no deadline, no memory cap). For benchmarks and tests that compare the two.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Guest for Native {
    fn call(&self, request: &Request) -> Result<Decoded, GuestError> {
        let response = request.run_native()?;
        Ok(wire::decode(&response)?)
    }
}

/// Why a call into the core gave no result.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The sandbox stopped the call or could not run it.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The core answered with an error (a file that cannot be read, a bad rule, …).
    #[error(transparent)]
    Core(#[from] ResponseError),
}

/// Runs `request` in `sandbox` and decodes the response. An error answer from a call whose
/// memory growth the cap refused is the memory limit's ([`SandboxError::Memory`]): the guest
/// made an error of the failed allocation (a gzip stream that could not be inflated, …), but
/// the cause is the limit.
pub fn call(sandbox: &Sandbox, request: &Request) -> Result<Decoded, GuestError> {
    let output = request.run_logged(sandbox)?;
    let started = std::time::Instant::now();
    let decoded = match wire::decode(&output.response) {
        Err(_) if output.memory_refused => {
            return Err(SandboxError::Memory {
                limit: sandbox.limits().memory,
            }
            .into());
        }
        other => other?,
    };
    tracing::debug!(
        decode_s = started.elapsed().as_secs_f64(),
        "response decoded"
    );
    Ok(decoded)
}
