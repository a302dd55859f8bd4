//! How many descriptors the backend may hold, which caps an aggregator's concurrency: every
//! member call in flight holds a connection.

use pgrx::pg_sys;

/// The smaller of `max_files_per_process` and the process's soft RLIMIT_NOFILE.
pub(super) fn descriptor_limit() -> usize {
    // SAFETY: a plain read of an integer GUC, on the backend's own thread.
    let max_files = usize::try_from(unsafe { pg_sys::max_files_per_process }).unwrap_or(0);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    max_files.min(soft)
}
