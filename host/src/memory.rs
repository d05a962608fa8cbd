//! Peak resident memory by phase, for the commands' `-v` logs and the benchmarks: on Linux the
//! kernel's high-water mark (`VmHWM` in `/proc/self/status`), reset between phases by writing
//! `5` to `/proc/self/clear_refs`. Elsewhere, or when `/proc` is not readable, there is no
//! figure (`None`), never an error.

/// The peak resident memory in bytes since the previous call (or since the process started),
/// and starts a new phase.
pub fn take_peak() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    // Resetting may be refused (an old kernel); the next figure then covers both phases.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    Some(kib << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_phase_that_allocates_more_peaks_higher() {
        let _ = take_peak();
        let small = take_peak().expect("Linux has /proc/self/status");
        // Touch 64 MiB, then free it: the next phase's peak includes it.
        let big = vec![1u8; 64 << 20];
        assert_eq!(
            big.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>(),
            16384
        );
        drop(big);
        let grown = take_peak().expect("a figure");
        assert!(grown >= small + (60 << 20), "{small} then {grown}");
        // Reset: the phase after the free peaks lower again.
        let after = take_peak().expect("a figure");
        assert!(after < grown, "{grown} then {after}");
    }
}
