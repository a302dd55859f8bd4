//! The identity cache and call statistics a scan uses: in shared memory for the whole
//! cluster when aws_sts is preloaded (src/pg/shmem.rs), else this backend's own. Scans,
//! EXPLAIN and pruning look identities up only through a [`ScanConfig`], that is after
//! the user's permission to use the server's credentials was checked (src/pg/resolve.rs).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use pgrx::pg_sys;

use crate::cache::{self, Lookup};
use crate::row::CallerIdentity;
use crate::shared::{self, CacheRow, Event, Fill, Owner, Source, Stats};
use crate::sts::Answer;

use super::catalog::IDENTITY_CACHE;
use super::resolve::ScanConfig;
use super::shmem;

thread_local! {
    /// The changed servers and user mappings whose shared entries this transaction removes
    /// when it commits.
    static PENDING: RefCell<Vec<Source>> = const { RefCell::new(Vec::new()) };
    /// This backend's call statistics per server, without preloading.
    static LOCAL_STATS: RefCell<HashMap<u32, Stats>> = RefCell::new(HashMap::new());
}

pub(super) fn database_id() -> u32 {
    // SAFETY: MyDatabaseId is set once the backend is connected, before any query.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

fn key(config: &ScanConfig) -> [u8; 32] {
    shared::settings_key(database_id(), config.server_id.to_u32(), &config.settings)
}

/// Whether the shared cache is in use.
pub(super) fn shared() -> bool {
    shmem::enabled()
}

/// The fresh cached identity for a resolved server, if caching is on for it; a scan the
/// entry answers counts a hit (`count_hit`), EXPLAIN and pruning do not.
pub(super) fn cached(config: &ScanConfig, count_hit: bool) -> Option<CallerIdentity> {
    if !config.settings.server.caching() {
        return None;
    }
    let key = key(config);
    let now = SystemTime::now();
    match shmem::with_tables(|tables| shared::get(tables.cache, &key, now, count_hit)) {
        Some(found) => found.map(|(identity, _)| identity),
        None => IDENTITY_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if count_hit {
                cache.hit(&config.settings, Instant::now())
            } else {
                cache.get(&config.settings, Instant::now()).cloned()
            }
        }),
    }
}

/// What EXPLAIN says of the cache for a resolved server.
pub(super) fn lookup(config: &ScanConfig) -> Lookup {
    if !config.settings.server.caching() {
        return Lookup::Disabled;
    }
    let key = key(config);
    let now = SystemTime::now();
    match shmem::with_tables(|tables| shared::get(tables.cache, &key, now, false)) {
        Some(Some((_, remaining))) => Lookup::Hit { remaining },
        Some(None) => Lookup::Miss,
        None => {
            IDENTITY_CACHE.with(|cache| cache.borrow().lookup(&config.settings, Instant::now()))
        }
    }
}

/// Caches a fresh answer for its lifetime (cache_ttl, bounded by expiring credentials).
pub(super) fn store(config: &ScanConfig, answer: &Answer) {
    let lifetime = cache::lifetime(
        &config.settings,
        answer.credentials_expiry,
        SystemTime::now(),
    );
    let owner = Owner {
        database_id: database_id(),
        server_id: config.server_id.to_u32(),
        user_id: config.user_id.to_u32(),
    };
    let key = key(config);
    let fill = Fill {
        owner,
        server_source: config.sources.first().copied().unwrap_or_default(),
        mapping_source: config.sources.get(1).copied().unwrap_or_default(),
        identity: &answer.identity,
        lifetime,
    };
    let now = SystemTime::now();
    if shmem::with_tables(|tables| shared::put(tables.cache, &key, fill, now)).is_none() {
        IDENTITY_CACHE.with(|cache| {
            cache.borrow_mut().put_for(
                owner,
                &config.settings,
                answer.identity.clone(),
                lifetime,
                &config.sources,
                Instant::now(),
            )
        });
    }
}

/// A server or user mapping of this database changed (the syscache hash of its row).
///
/// Every backend of the database hears of the change, each when it next reads the
/// invalidation queue (the backend that made it too, once more): removing shared entries
/// then would also remove those filled since, with the new settings. So only the backend
/// that makes the change removes them: it hears of it while its transaction (which wrote
/// the catalog, so has a transaction id) runs, and removes them just before it commits
/// ([`at_transaction_event`]), when nothing can fill them again from the old settings. A
/// hash of 0 (a backend that missed invalidations resets its caches) forgets only this
/// backend's. Entries left behind could not be reached anyway: changed settings are a
/// changed key.
pub(super) fn invalidate(is_mapping: bool, hash_value: u32) {
    IDENTITY_CACHE.with(|cache| cache.borrow_mut().invalidate(hash_value));
    // SAFETY: reads the backend's transaction state.
    let writing = unsafe { pg_sys::GetTopTransactionIdIfAny() } != pg_sys::InvalidTransactionId;
    if hash_value == 0 || !writing || !shared() {
        return;
    }
    let source = if is_mapping {
        Source::Mapping(hash_value)
    } else {
        Source::Server(hash_value)
    };
    PENDING.with(|pending| pending.borrow_mut().push(source));
}

/// Removes the shared entries of what this transaction changed, just before it commits
/// (or is prepared); forgets them when it aborts.
#[pgrx::pg_guard]
pub(super) unsafe extern "C-unwind" fn at_transaction_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    let sources = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    let committing = event == pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_PRE_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE;
    if !committing || sources.is_empty() {
        return;
    }
    let database = database_id();
    shmem::with_tables(|tables| {
        for source in sources {
            shared::invalidate(tables.cache, database, source);
        }
    });
}

/// Forgets this backend's identities and, when shared, this database's shared ones;
/// returns how many there were.
pub(super) fn clear() -> usize {
    let local = IDENTITY_CACHE.with(|cache| cache.borrow_mut().clear());
    let database = database_id();
    let now = SystemTime::now();
    local + shmem::with_tables(|tables| shared::clear(tables.cache, database, now)).unwrap_or(0)
}

/// Adds what a scan did with one server to its statistics.
pub(super) fn record(server_id: pg_sys::Oid, event: &Event) {
    let (database, server) = (database_id(), server_id.to_u32());
    let now = SystemTime::now();
    if shmem::with_tables(|tables| shared::record(tables.stats, database, server, event, now))
        .is_none()
    {
        LOCAL_STATS.with(|stats| {
            stats
                .borrow_mut()
                .entry(server)
                .or_default()
                .record(event, now)
        });
    }
}

/// This database's live cached identities (shared, else this backend's).
pub(super) fn cache_rows() -> Vec<CacheRow> {
    let database = database_id();
    let now = SystemTime::now();
    shmem::with_tables(|tables| shared::rows(tables.cache, now))
        .unwrap_or_else(|| IDENTITY_CACHE.with(|cache| cache.borrow().rows(Instant::now())))
        .into_iter()
        .filter(|row| row.owner.database_id == database)
        .collect()
}

/// This database's statistics per server id (shared, else this backend's).
pub(super) fn stats_rows() -> Vec<(u32, Stats)> {
    let database = database_id();
    shmem::with_tables(|tables| {
        shared::stats_rows(tables.stats)
            .into_iter()
            .filter(|slot| slot.database_id == database)
            .map(|slot| (slot.server_id, slot.stats))
            .collect()
    })
    .unwrap_or_else(|| {
        LOCAL_STATS.with(|stats| {
            stats
                .borrow()
                .iter()
                .map(|(server, stats)| (*server, *stats))
                .collect()
        })
    })
}

/// Forgets this database's statistics (shared, else this backend's).
pub(super) fn reset_stats() {
    let database = database_id();
    if shmem::with_tables(|tables| shared::reset_stats(tables.stats, database, None)).is_none() {
        LOCAL_STATS.with(|stats| stats.borrow_mut().clear());
    }
}
