//! The planner callbacks: row estimates (one row per server, or per aggregator member the
//! quals leave), the one path, and the plan.

use std::ffi::CString;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::options::ServerKind;

use super::catalog::server_of;
use super::compat;
use super::pins;
use super::resolve::aggregator_members;

/// Cost of one GetCallerIdentity round trip, in planner units (postgres_fdw's default
/// fdw_startup_cost is 100 for a connection).
const STARTUP_COST: f64 = 100.0;

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn get_foreign_rel_size(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreign_table_id: pg_sys::Oid,
) {
    // SAFETY: GetForeignTable errors out itself for an unknown table.
    let server_id = unsafe { (*pg_sys::GetForeignTable(foreign_table_id)).serverid };
    // GetCallerIdentity answers one row per server: one, or one per aggregator member.
    let rows = match server_of(server_id).1 {
        ServerKind::Connection(_) => 1,
        ServerKind::Aggregator(options) => {
            let pins = pins::find(baserel, foreign_table_id);
            // SAFETY: the planner's RelOptInfo; fdw_private is ours to set.
            unsafe { (*baserel).fdw_private = pins::to_rel_private(&pins).cast() };
            // SAFETY: GetUserId only reads the current user.
            let user_id = unsafe { pg_sys::GetUserId() };
            let members = aggregator_members(server_id, &options, &pins.known, user_id).len();
            if pins.one_name_at_runtime() {
                members.min(1)
            } else {
                members
            }
        }
    };
    // SAFETY: the planner hands us its RelOptInfo to fill in.
    unsafe {
        (*baserel).rows = rows.max(1) as f64;
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn get_foreign_paths(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreign_table_id: pg_sys::Oid,
) {
    // SAFETY: one plain foreign scan path with no pathkeys, outer rels or private data.
    unsafe {
        let rows = (*baserel).rows;
        let path = compat::create_plain_foreignscan_path(
            root,
            baserel,
            rows,
            STARTUP_COST,
            STARTUP_COST + rows * pg_sys::DEFAULT_CPU_TUPLE_COST,
        );
        pg_sys::add_path(baserel, path.cast());
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn get_foreign_plan(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreign_table_id: pg_sys::Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    // SAFETY: as file_fdw does: every qual is checked locally by the executor; the pins'
    // parameters go to fdw_exprs, so setrefs fixes them up for BeginForeignScan.
    unsafe {
        let local_quals = pg_sys::extract_actual_clauses(scan_clauses, false);
        let (mut private, expressions) = pins::split_rel_private((*baserel).fdw_private.cast());
        if private.is_null() {
            // The pins' two entries come first on every plan (empty: nothing pinned).
            for _ in 0..2 {
                private = pg_sys::lappend(
                    private,
                    pg_sys::makeString(pg_sys::pstrdup(c"".as_ptr())).cast(),
                );
            }
        }
        let read = CString::new(columns_read(baserel, local_quals)).unwrap_or_default();
        private = pg_sys::lappend(
            private,
            pg_sys::makeString(pg_sys::pstrdup(read.as_ptr())).cast(),
        );
        pg_sys::make_foreignscan(
            tlist,
            local_quals,
            (*baserel).relid,
            expressions,
            private,
            ptr::null_mut(),
            ptr::null_mut(),
            outer_plan,
        )
    }
}

/// The attribute numbers a query reads from the table (its output and its quals, as
/// postgres_fdw finds them), comma-separated, or `*` for a whole-row reference: the scan
/// leaves the other columns NULL instead of converting them, so a hand-written table's
/// column of an unsuitable type fails only the queries that read it.
fn columns_read(baserel: *mut pg_sys::RelOptInfo, local_quals: *mut pg_sys::List) -> String {
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    // SAFETY: the planner's RelOptInfo of this scan and its quals; the Bitmapset is palloc'd
    // in the planner's context.
    unsafe {
        let mut attributes: *mut pg_sys::Bitmapset = ptr::null_mut();
        let relid = (*baserel).relid;
        pg_sys::pull_varattnos((*(*baserel).reltarget).exprs.cast(), relid, &mut attributes);
        pg_sys::pull_varattnos(local_quals.cast(), relid, &mut attributes);
        if pg_sys::bms_is_member(-offset, attributes) {
            return "*".to_string();
        }
        let mut read = Vec::new();
        let mut member = pg_sys::bms_next_member(attributes, -1);
        while member >= 0 {
            // System columns (negative) are the executor's own.
            if member + offset > 0 {
                read.push((member + offset).to_string());
            }
            member = pg_sys::bms_next_member(attributes, member);
        }
        read.join(",")
    }
}
