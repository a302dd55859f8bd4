//! The shared identity cache's memory: with `shared_preload_libraries = 'aws_sts'`, one
//! table of `aws_sts.shared_cache_entries` cached identities and as many servers' call
//! statistics, for every backend of the cluster, under one LWLock (as pg_stat_statements
//! keeps its hash table). Without preloading nothing here is allocated or touched.

use std::ffi::CStr;
use std::mem::{align_of, size_of};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use pgrx::pg_sys;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::shared::{CacheSlot, StatsSlot};

use super::compat;

static SHARED_CACHE_ENTRIES: GucSetting<i32> = GucSetting::<i32>::new(1024);

const NAME: &CStr = c"aws_sts";

/// The start of the shared area, set by the startup hook (in the postmaster, inherited by
/// every backend it forks); null without preloading.
static SHARED: AtomicPtr<Header> = AtomicPtr::new(ptr::null_mut());

static mut PREVIOUS_REQUEST_HOOK: Option<unsafe extern "C-unwind" fn()> = None;
static mut PREVIOUS_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// What the shared area starts with; the cache's slots and then the stats' follow.
#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    capacity: usize,
}

fn capacity() -> usize {
    SHARED_CACHE_ENTRIES.get().max(1) as usize
}

fn align(offset: usize, to: usize) -> usize {
    offset.div_ceil(to) * to
}

/// Offsets of the cache's slots and the stats' slots, and the whole size.
fn layout(capacity: usize) -> (usize, usize, usize) {
    let cache = align(size_of::<Header>(), align_of::<CacheSlot>());
    let stats = align(
        cache + capacity * size_of::<CacheSlot>(),
        align_of::<StatsSlot>(),
    );
    (cache, stats, stats + capacity * size_of::<StatsSlot>())
}

/// Called from `_PG_init`: the GUC and the hooks, only while the postmaster preloads the
/// library.
pub(super) fn init() {
    // SAFETY: read in _PG_init, single-threaded, as every preloaded library does.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        // A PGC_POSTMASTER setting can only be defined at server start (as
        // pg_stat_statements.max): without preloading there is nothing to size anyway.
        return;
    }
    GucRegistry::define_int_guc(
        c"aws_sts.shared_cache_entries",
        c"How many identities the shared cache holds (with shared_preload_libraries = 'aws_sts').",
        c"Each entry takes about 2.5 kB of shared memory, plus about 0.6 kB for one server's call statistics; past this many the least recently used entry is evicted.",
        &SHARED_CACHE_ENTRIES,
        16,
        1 << 20,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    // SAFETY: hooks are chained in _PG_init of the postmaster, before any backend exists.
    unsafe {
        PREVIOUS_REQUEST_HOOK = compat::install_shmem_request_hook(request_shared_memory);
        PREVIOUS_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(start_shared_memory);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn request_shared_memory() {
    // SAFETY: the chained hook and the requests are made while the postmaster sizes shared
    // memory, which is what they are for.
    unsafe {
        if let Some(previous) = PREVIOUS_REQUEST_HOOK {
            previous();
        }
        pg_sys::RequestAddinShmemSpace(layout(capacity()).2);
        pg_sys::RequestNamedLWLockTranche(NAME.as_ptr(), 1);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn start_shared_memory() {
    let (_, _, size) = layout(capacity());
    // SAFETY: as pg_stat_statements' pgss_shmem_startup: under AddinShmemInitLock the first
    // process to get here zeroes the area (zero is a free slot) and finds the tranche's lock.
    unsafe {
        if let Some(previous) = PREVIOUS_STARTUP_HOOK {
            previous();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let header = pg_sys::ShmemInitStruct(NAME.as_ptr(), size, &mut found).cast::<Header>();
        if !found {
            ptr::write_bytes(header.cast::<u8>(), 0, size);
            (*header).lock = &raw mut (*pg_sys::GetNamedLWLockTranche(NAME.as_ptr())).lock;
            (*header).capacity = capacity();
        }
        pg_sys::LWLockRelease(init_lock);
        SHARED.store(header, Ordering::Release);
    }
}

/// Whether the shared cache is in use (the library was preloaded).
pub(super) fn enabled() -> bool {
    !SHARED.load(Ordering::Acquire).is_null()
}

/// The shared tables, under the lock.
pub(super) struct Tables<'a> {
    pub(super) cache: &'a mut [CacheSlot],
    pub(super) stats: &'a mut [StatsSlot],
}

/// Runs `f` on the shared tables under their lock (exclusive: look-ups count hits), or
/// returns None without preloading. `f` only reads and writes the records: it does not
/// call Postgres, and an ERROR while the lock is held would release it anyway
/// (LWLockReleaseAll at abort).
pub(super) fn with_tables<R>(f: impl FnOnce(Tables) -> R) -> Option<R> {
    let header = SHARED.load(Ordering::Acquire);
    if header.is_null() {
        return None;
    }
    // SAFETY: the area was laid out by start_shared_memory for `capacity` slots of each
    // kind; the exclusive lock makes this process the only one touching it until release.
    unsafe {
        let capacity = (*header).capacity;
        let (cache, stats, _) = layout(capacity);
        let base = header.cast::<u8>();
        pg_sys::LWLockAcquire((*header).lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let result = f(Tables {
            cache: std::slice::from_raw_parts_mut(base.add(cache).cast::<CacheSlot>(), capacity),
            stats: std::slice::from_raw_parts_mut(base.add(stats).cast::<StatsSlot>(), capacity),
        });
        pg_sys::LWLockRelease((*header).lock);
        Some(result)
    }
}
