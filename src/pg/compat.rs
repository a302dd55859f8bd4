//! What differs between PostgreSQL versions: each helper has one body per range of major
//! versions (the `pg13` … `pg18` features), so the rest of src/pg/ reads the same on all of
//! them. Only 15 and 18 are built and tested (README, "Supported PostgreSQL versions").

use std::ptr;

use pgrx::pg_sys;

/// Installs the hook that requests shared memory and returns the one it replaces. From 15 on
/// that must happen in `shmem_request_hook`; before, `_PG_init` requests it directly.
///
/// # Safety
///
/// Called from `_PG_init` while the postmaster preloads the library.
pub(super) unsafe fn install_shmem_request_hook(
    hook: unsafe extern "C-unwind" fn(),
) -> Option<unsafe extern "C-unwind" fn()> {
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    // SAFETY: before 15, RequestAddinShmemSpace is allowed in _PG_init itself.
    unsafe {
        hook();
        None
    }
    #[cfg(any(feature = "pg15", feature = "pg16", feature = "pg17", feature = "pg18"))]
    // SAFETY: hooks are chained in _PG_init of the postmaster, before any backend exists.
    unsafe {
        let previous = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(hook);
        previous
    }
}

/// `pg_foreign_server_aclcheck`: PostgreSQL 16 folded it into `object_aclcheck`.
pub(super) fn foreign_server_aclcheck(
    server_id: pg_sys::Oid,
    role_id: pg_sys::Oid,
    mode: pg_sys::AclMode,
) -> pg_sys::AclResult::Type {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: an ACL check; an unknown server or role is an ERROR, not undefined behaviour.
    let result = unsafe { pg_sys::pg_foreign_server_aclcheck(server_id, role_id, mode) };
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    // SAFETY: an ACL check; an unknown server or role is an ERROR, not undefined behaviour.
    let result = unsafe {
        pg_sys::object_aclcheck(pg_sys::ForeignServerRelationId, server_id, role_id, mode)
    };
    result
}

/// The role a foreign scan checks permissions as (a view's owner for a scan through a view),
/// or `InvalidOid` for the current user.
///
/// Up to 15 that is the range table entry's `checkAsUser`. From 16 on the planner copies it
/// from the relation's RTEPermissionInfo into `ForeignScan.checkAsUser` (what postgres_fdw
/// reads): a partition's or inheritance child's entry has no RTEPermissionInfo of its own,
/// so `getRTEPermissionInfo` on it would be an error, while the plan carries its parent's.
///
/// # Safety
///
/// `node` is a foreign scan being begun or explained: its plan is a ForeignScan and its
/// executor state holds the range table.
pub(super) unsafe fn scan_check_as_user(node: *const pg_sys::ForeignScanState) -> pg_sys::Oid {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: the caller's scan; its plan's scanrelid indexes the executor's range table
    // (exec_rt_fetch).
    unsafe {
        let plan = (*node).ss.ps.plan as *const pg_sys::ForeignScan;
        let range_table =
            pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*(*node).ss.ps.state).es_range_table);
        ((*plan).scan.scanrelid as usize)
            .checked_sub(1)
            .and_then(|index| range_table.get_ptr(index))
            .map_or(pg_sys::InvalidOid, |entry| (*entry).checkAsUser)
    }
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    // SAFETY: the caller's scan; its plan is the ForeignScan our GetForeignPlan made.
    unsafe {
        (*((*node).ss.ps.plan as *const pg_sys::ForeignScan)).checkAsUser
    }
}

/// `create_foreignscan_path` for a plain scan of `baserel`: no pathkeys, outer rels, outer
/// plan, restriction info (17+) or private data, and not disabled (18+).
///
/// # Safety
///
/// `root` and `baserel` are the planner's, as GetForeignPaths receives them.
pub(super) unsafe fn create_plain_foreignscan_path(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    rows: f64,
    startup_cost: f64,
    total_cost: f64,
) -> *mut pg_sys::ForeignPath {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16"))]
    // SAFETY: the caller's planner structures; every list and relid set is empty.
    unsafe {
        pg_sys::create_foreignscan_path(
            root,
            baserel,
            ptr::null_mut(),
            rows,
            startup_cost,
            total_cost,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    }
    #[cfg(feature = "pg17")]
    // SAFETY: the caller's planner structures; every list and relid set is empty.
    unsafe {
        pg_sys::create_foreignscan_path(
            root,
            baserel,
            ptr::null_mut(),
            rows,
            startup_cost,
            total_cost,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    }
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's planner structures; every list and relid set is empty, and no
    // node of the path is disabled (disabled_nodes 0).
    unsafe {
        pg_sys::create_foreignscan_path(
            root,
            baserel,
            ptr::null_mut(),
            rows,
            0,
            startup_cost,
            total_cost,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    }
}

/// `TupleDescAttr`: the attribute at `index` (0-based) of `tupdesc`, copied. PostgreSQL 18
/// put a CompactAttribute array first, so `attrs` is gone from the struct.
///
/// # Safety
///
/// `tupdesc` is a valid descriptor and `index` is below its `natts`.
pub(super) unsafe fn tuple_desc_attr(
    tupdesc: pg_sys::TupleDesc,
    index: usize,
) -> pg_sys::FormData_pg_attribute {
    #[cfg(any(
        feature = "pg13",
        feature = "pg14",
        feature = "pg15",
        feature = "pg16",
        feature = "pg17"
    ))]
    // SAFETY: the caller's descriptor has more than `index` attributes.
    unsafe {
        *(*tupdesc).attrs.as_ptr().add(index)
    }
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's descriptor has more than `index` attributes; TupleDescAttr is
    // PostgreSQL's own accessor (pgrx's C shim of the inline function).
    unsafe {
        *pg_sys::TupleDescAttr(tupdesc, index as std::ffi::c_int)
    }
}
