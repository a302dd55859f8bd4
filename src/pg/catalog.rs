//! Catalog look-ups (servers, user mappings, users), the backend's caches of what they
//! hold, and the syscache/relcache invalidation callbacks that keep those caches true.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, CStr};
use std::ptr;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::aggregate::Candidate;
use crate::cache::IdentityCache;
use crate::error::FdwError;
use crate::options::{self, ServerKind, ServerOptions};
use crate::sts::{self, ConnectionSettings};

use super::identities;
use super::report::report;
use super::tuple::Attribute;

thread_local! {
    /// The backend's identity cache (a backend is single-threaded).
    pub(super) static IDENTITY_CACHE: RefCell<IdentityCache> = RefCell::new(IdentityCache::new());
    static INVALIDATION_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// Parsed options per server, so a scan does not re-read and re-parse them (config's
    /// HCL included); emptied by any change to pg_foreign_server.
    static SERVERS: RefCell<HashMap<pg_sys::Oid, (String, ServerKind)>> = RefCell::new(HashMap::new());
    /// Parsed user mapping per (user, server); emptied by any change to pg_user_mapping or
    /// pg_foreign_server.
    pub(super) static MAPPINGS: RefCell<HashMap<(pg_sys::Oid, pg_sys::Oid), CachedMapping>> = RefCell::new(HashMap::new());
    /// What each attribute of a foreign table reads, per relation; an entry goes with the
    /// relation's relcache invalidation (ALTER FOREIGN TABLE, column options).
    pub(super) static TABLES: RefCell<HashMap<pg_sys::Oid, Rc<Vec<Option<Attribute>>>>> = RefCell::new(HashMap::new());
    /// The settings each server and user mapping (by syscache hash) was called with, so that
    /// altering one drops the STS clients built for its old settings (and their credentials).
    static CLIENT_SOURCES: RefCell<HashMap<u32, HashSet<ConnectionSettings>>> = RefCell::new(HashMap::new());
}

/// Past this many remembered settings the map starts over: the client pool is bounded by
/// itself, so a forgotten source only leaves a client to age out of it.
const CLIENT_SOURCES_LIMIT: usize = 1024;

/// Remembers that these settings were called for these servers and user mappings.
pub(super) fn remember_client(sources: &[u32], settings: &ConnectionSettings) {
    CLIENT_SOURCES.with(|map| {
        let mut map = map.borrow_mut();
        if map.values().map(HashSet::len).sum::<usize>() >= CLIENT_SOURCES_LIMIT {
            map.clear();
        }
        for source in sources {
            map.entry(*source).or_default().insert(settings.clone());
        }
    });
}

/// Drops the clients of a changed server or user mapping (every client for hash 0, which
/// invalidation sends when it cannot say which row changed).
fn forget_clients_of(hash_value: u32) {
    if hash_value == 0 {
        sts::clear_clients();
        CLIENT_SOURCES.with(|map| map.borrow_mut().clear());
        return;
    }
    let settings = CLIENT_SOURCES.with(|map| map.borrow_mut().remove(&hash_value));
    for settings in settings.into_iter().flatten() {
        sts::forget_client(&settings);
    }
}

/// A user mapping as a scan needs it: its oid (for cache invalidation) and options.
pub(super) type CachedMapping = (pg_sys::Oid, Result<options::UserMappingOptions, FdwError>);

pub(super) fn forget_catalog_state() {
    SERVERS.with(|servers| servers.borrow_mut().clear());
    MAPPINGS.with(|mappings| mappings.borrow_mut().clear());
    TABLES.with(|tables| tables.borrow_mut().clear());
}

#[pg_guard]
unsafe extern "C-unwind" fn invalidate_on_catalog_change(
    _arg: pg_sys::Datum,
    cache_id: c_int,
    hash_value: u32,
) {
    // Parsed options are cheap to rebuild: any change drops them all. A change to who is a
    // superuser or a member of which role can change what a scan may use, too.
    MAPPINGS.with(|mappings| mappings.borrow_mut().clear());
    if cache_id != pg_sys::SysCacheIdentifier::USERMAPPINGOID as c_int {
        SERVERS.with(|servers| servers.borrow_mut().clear());
    }
    if cache_id == pg_sys::SysCacheIdentifier::FOREIGNSERVEROID as c_int
        || cache_id == pg_sys::SysCacheIdentifier::USERMAPPINGOID as c_int
    {
        let is_mapping = cache_id == pg_sys::SysCacheIdentifier::USERMAPPINGOID as c_int;
        identities::invalidate(is_mapping, hash_value);
        forget_clients_of(hash_value);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn invalidate_on_relation_change(
    _arg: pg_sys::Datum,
    relation_id: pg_sys::Oid,
) {
    TABLES.with(|tables| {
        let mut tables = tables.borrow_mut();
        if relation_id == pg_sys::InvalidOid {
            tables.clear();
        } else {
            tables.remove(&relation_id);
        }
    });
}

/// The syscache hash value of a catalog row, as invalidation callbacks receive it.
pub(super) fn syscache_hash(cache_id: pg_sys::SysCacheIdentifier::Type, oid: pg_sys::Oid) -> u32 {
    let zero = pg_sys::Datum::from(0);
    // SAFETY: hashes the key the way the syscache does; no catalog access.
    unsafe {
        pg_sys::GetSysCacheHashValue(
            cache_id as c_int,
            pg_sys::Datum::from(oid),
            zero,
            zero,
            zero,
        )
    }
}

/// A change to a foreign server or user mapping, in any session, forgets the identities
/// cached through it (as postgres_fdw drops the connections made through it). Registered
/// once per backend, on first use (or by the postmaster when preloaded, so that every
/// backend removes the shared entries of what it alters).
pub(super) fn register_invalidation() {
    if INVALIDATION_REGISTERED.with(|registered| registered.replace(true)) {
        return;
    }
    for cache_id in [
        pg_sys::SysCacheIdentifier::FOREIGNSERVEROID,
        pg_sys::SysCacheIdentifier::USERMAPPINGOID,
        pg_sys::SysCacheIdentifier::AUTHOID,
        pg_sys::SysCacheIdentifier::AUTHMEMROLEMEM,
    ] {
        // SAFETY: registers a plain function pointer for the backend's lifetime.
        unsafe {
            pg_sys::CacheRegisterSyscacheCallback(
                cache_id as c_int,
                Some(invalidate_on_catalog_change),
                pg_sys::Datum::from(0),
            );
        }
    }
    // SAFETY: as above, for relcache invalidations (column options, ALTER FOREIGN TABLE),
    // and for transaction ends (the shared cache's removals, at commit).
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(invalidate_on_relation_change),
            pg_sys::Datum::from(0),
        );
        pg_sys::RegisterXactCallback(Some(identities::at_transaction_event), ptr::null_mut());
    }
}

pub(super) fn cstr_to_string(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: callers pass NUL-terminated strings owned by Postgres catalogs or nodes.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// A List of DefElem (catalog options) as name/value pairs.
pub(super) fn def_elems(list: *mut pg_sys::List) -> Vec<(String, String)> {
    // SAFETY: `list` is NIL or a List of DefElem pointers from the catalogs (GetForeignServer,
    // untransformRelOptions, GetForeignColumnOptions); each value is a string node.
    unsafe {
        pgrx::PgList::<pg_sys::DefElem>::from_pg(list)
            .iter_ptr()
            .map(|def| {
                (
                    cstr_to_string((*def).defname),
                    cstr_to_string(pg_sys::defGetString(def)),
                )
            })
            .collect()
    }
}

/// The options of the user mapping for (user, server), else for (PUBLIC, server), else none.
/// Unlike GetUserMapping, a missing mapping is not an error: credentials are optional.
pub(super) fn user_mapping_options(
    user_id: pg_sys::Oid,
    server_id: pg_sys::Oid,
) -> Option<(pg_sys::Oid, Vec<(String, String)>)> {
    for mapped_user in [user_id, pg_sys::InvalidOid] {
        // SAFETY: a syscache lookup by (umuser, umserver), released before returning; the
        // options datum is copied by untransformRelOptions before the release.
        unsafe {
            let tuple = pg_sys::SearchSysCache2(
                pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as c_int,
                pg_sys::Datum::from(mapped_user),
                pg_sys::Datum::from(server_id),
            );
            if tuple.is_null() {
                continue;
            }
            let mut is_null = false;
            let datum = pg_sys::SysCacheGetAttr(
                pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as c_int,
                tuple,
                pg_sys::Anum_pg_user_mapping_umoptions as pg_sys::AttrNumber,
                &mut is_null,
            );
            let options = if is_null {
                Vec::new()
            } else {
                def_elems(pg_sys::untransformRelOptions(datum))
            };
            let mapping_id =
                (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_user_mapping>(tuple)).oid;
            pg_sys::ReleaseSysCache(tuple);
            return Some((mapping_id, options));
        }
    }
    None
}

pub(super) fn user_name(user_id: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId with noerr=true returns NULL for an unknown role.
    cstr_to_string(unsafe { pg_sys::GetUserNameFromId(user_id, true) })
}

/// A server's name and parsed options; a parse error (options edited behind the
/// validator's back) is reported naming the server.
pub(super) fn server_of(server_id: pg_sys::Oid) -> (String, ServerKind) {
    register_invalidation();
    if let Some(cached) = SERVERS.with(|servers| servers.borrow().get(&server_id).cloned()) {
        return cached;
    }
    // SAFETY: GetForeignServer errors out itself for an unknown server.
    let (server_name, server_options) = unsafe {
        let server = pg_sys::GetForeignServer(server_id);
        (
            cstr_to_string((*server).servername),
            def_elems((*server).options),
        )
    };
    match options::parse_server_kind(&server_options) {
        Ok(kind) => {
            let parsed = (server_name, kind);
            SERVERS.with(|servers| servers.borrow_mut().insert(server_id, parsed.clone()));
            parsed
        }
        Err(error) => report(error.for_server(&server_name)),
    }
}

/// Every aws_sts server (of the wrapper `fdw_id`), for an aggregator to choose from, with
/// the options of those that are AWS connections.
pub(super) fn aws_sts_servers(
    fdw_id: pg_sys::Oid,
) -> Vec<Candidate<(pg_sys::Oid, Option<ServerOptions>)>> {
    let mut server_ids = Vec::new();
    // SAFETY: a plain catalog scan of pg_foreign_server under AccessShareLock, closed
    // before any other catalog access.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let relation = pg_sys::table_open(pg_sys::ForeignServerRelationId, lock);
        let scan = pg_sys::table_beginscan_catalog(relation, 0, ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_foreign_server>(tuple);
            if (*form).srvfdw == fdw_id {
                server_ids.push((*form).oid);
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(relation, lock);
    }
    server_ids
        .into_iter()
        .map(|id| {
            let (name, kind) = server_of(id);
            let (is_aggregator, options) = match kind {
                ServerKind::Connection(options) => (false, Some(options)),
                ServerKind::Aggregator(_) => (true, None),
            };
            Candidate {
                id: (id, options),
                name,
                is_aggregator,
            }
        })
        .collect()
}
