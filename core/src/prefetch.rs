//! The prefetch hint, one of the crate's `unsafe` calls (with `simd`'s; x86_64 only, a no-op
//! elsewhere, wasm32 included). Random reads of large tables ask for their cache lines a few
//! items ahead, so the memory accesses overlap instead of waiting one after the other.

/// Hints the CPU to fetch the cache line of `slice[i]` (nothing off x86_64).
#[inline]
pub(crate) fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slice.get(i) {
        prefetch_x86(std::ptr::from_ref(item).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn prefetch_x86(p: *const i8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is only a hint: it never faults or changes memory, whatever the
    // address (this one is in bounds); SSE is part of the x86_64 baseline.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p) }
}
