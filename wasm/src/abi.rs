//! The exports of the plain ABI module (`wasm/ABI.md`). Built only for wasm32 with feature
//! `abi`; the module imports nothing.
//!
//! Memory handed out by `audlink_alloc` belongs to the caller until it frees it; the response
//! of `audlink_call` belongs to the module and stays valid until the next call.

#![allow(unsafe_code)]

use std::sync::Mutex;

use crate::wire::{self, envelope::ABI_VERSION};

/// The last response, kept alive for the caller to read.
static RESPONSE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The ABI version this module speaks.
#[unsafe(no_mangle)]
pub extern "C" fn audlink_abi_version() -> u32 {
    ABI_VERSION
}

/// Allocates `len` bytes for the caller; 0 when memory cannot grow that far.
#[unsafe(no_mangle)]
pub extern "C" fn audlink_alloc(len: u32) -> u32 {
    let mut buffer: Vec<u8> = Vec::new();
    if buffer.try_reserve_exact(len as usize).is_err() {
        return 0;
    }
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr as u32
}

/// Frees memory from `audlink_alloc` (the same `len`).
///
/// # Safety
/// `ptr` and `len` must come from one `audlink_alloc` call, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audlink_free(ptr: u32, len: u32) {
    // SAFETY: the caller returns a buffer `audlink_alloc` made with capacity `len`.
    drop(unsafe { Vec::from_raw_parts(ptr as *mut u8, 0, len as usize) });
}

/// Runs the request whose head (`len` bytes) is at `ptr`; returns a pointer to the response,
/// whose header gives its length. The payload buffers the head lists become the module's.
///
/// # Safety
/// `ptr..ptr + len` must be memory the caller owns holding the head, and every `(address,
/// length)` of its payload table must be a buffer from `audlink_alloc(length)` that the caller
/// filled and does not use or free afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audlink_call(ptr: u32, len: u32) -> u32 {
    // SAFETY: the caller passes a live buffer of `len` bytes.
    let head = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
    let mut slot = RESPONSE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *slot = Vec::new();
    *slot = wire::handle_head(head, |table| {
        table
            .iter()
            .map(|&(address, len)| {
                // SAFETY: per this function's contract, each entry is a buffer of capacity
                // `len` from `audlink_alloc`, filled by the caller and handed over to us.
                unsafe { Vec::from_raw_parts(address as *mut u8, len as usize, len as usize) }
            })
            .collect()
    });
    slot.as_ptr() as u32
}
