//! Keeping the collector's resident memory near what it uses (glibc malloc only).
//!
//! Measured with `panoptes bench` (300 devices at a 10 s interval): 311 MB resident with
//! glibc's defaults, 215 MB with two arenas. glibc gives each thread that contends for
//! the heap an arena of its own (up to 8 per core), and memory freed in one arena is
//! reused only by it; the node's threads (pollers, the SNMP receiver, sled's flushers,
//! tokio's blocking pool) each churn through buffers, so each arena keeps a high-water
//! mark of its own. Two arenas keep contention low on a small machine, and a periodic
//! `malloc_trim` hands freed pages back to the kernel.

/// Caps glibc's malloc arenas. Call once, early (arenas made before stay).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a malloc parameter; glibc documents it as safe to call
        // at any time, from any thread.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        if ok != 1 {
            tracing::debug!("glibc refused to cap its malloc arenas");
        }
    }
}

/// Returns freed heap memory to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks malloc's own free lists under its locks; no pointer of ours
    // is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}
