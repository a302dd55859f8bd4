//! The planner callbacks: row estimates (one row per server, or per aggregator member the
//! quals leave), the one path, and the plan.

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
        let (private, expressions) = pins::split_rel_private((*baserel).fdw_private.cast());
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
