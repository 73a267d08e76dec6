//! Raising the open-files limit: each simulated device is a socket, and the
//! default soft limit (often 1024) is below a big fleet.

/// Raises the soft RLIMIT_NOFILE towards `wanted` (never above the hard
/// limit) and returns the soft limit in force afterwards.
#[cfg(unix)]
// rlim_t is u64 on 64-bit Linux, not on every Unix: keep the casts.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    let current = limit.rlim_cur as u64;
    if current >= wanted {
        return current;
    }
    let target = (wanted as libc::rlim_t).min(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        target as u64
    } else {
        current
    }
}

#[cfg(not(unix))]
pub fn raise_open_files(_wanted: u64) -> u64 {
    u64::MAX
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_to_what_we_have_is_a_no_op() {
        let now = super::raise_open_files(0);
        assert!(now > 0);
        assert_eq!(super::raise_open_files(now), now);
    }
}
