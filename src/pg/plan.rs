//! The planner callbacks: row estimates, the one path, the plan, and the `=`/`IN` quals on
//! `sp_connection_name` and `account_id` that prune aggregator members.

use std::ffi::CString;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::aggregate::Pinned;
use crate::options::ServerKind;
use crate::row::Column;

use super::catalog::{cstr_to_string, server_of};
use super::resolve::aggregator_members;

/// Cost of one GetCallerIdentity round trip, in planner units (postgres_fdw's default
/// fdw_startup_cost is 100 for a connection).
const STARTUP_COST: f64 = 100.0;

/// The values the query pins a text column to with `=` or `IN (...)` quals, if any: an
/// aggregator calls only the members that can match. Other quals are left to the executor.
fn pinned_values(
    baserel: *mut pg_sys::RelOptInfo,
    relation_id: pg_sys::Oid,
    column: Column,
) -> Option<Vec<String>> {
    let column = CString::new(column.name()).unwrap_or_default();
    // SAFETY: reads the planner's restriction clauses of this relation: node tags are
    // checked before each cast, and Const values are converted as text (or text[]) only
    // when their type says so.
    unsafe {
        let attnum = pg_sys::get_attnum(relation_id, column.as_ptr());
        if attnum == pg_sys::InvalidAttrNumber as pg_sys::AttrNumber {
            return None;
        }
        let is_column = |node: *mut pg_sys::Node| {
            !node.is_null()
                && (*node).type_ == pg_sys::NodeTag::T_Var
                && (*(node as *mut pg_sys::Var)).varattno == attnum
                && (*(node as *mut pg_sys::Var)).varno as u32 == (*baserel).relid
        };
        let constant = |node: *mut pg_sys::Node| -> Option<*mut pg_sys::Const> {
            (!node.is_null()
                && (*node).type_ == pg_sys::NodeTag::T_Const
                && !(*(node as *mut pg_sys::Const)).constisnull)
                .then_some(node as *mut pg_sys::Const)
        };
        let mut pinned: Option<Vec<String>> = None;
        for info in
            pgrx::PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr()
        {
            let clause = (*info).clause as *mut pg_sys::Node;
            let names: Option<Vec<String>> = match (*clause).type_ {
                pg_sys::NodeTag::T_OpExpr
                    if (*(clause as *mut pg_sys::OpExpr)).opno
                        == pg_sys::Oid::from(pg_sys::TextEqualOperator) =>
                {
                    let args = pgrx::PgList::<pg_sys::Node>::from_pg(
                        (*(clause as *mut pg_sys::OpExpr)).args,
                    );
                    match (args.get_ptr(0), args.get_ptr(1)) {
                        (Some(left), Some(right)) if is_column(left) => constant(right),
                        (Some(left), Some(right)) if is_column(right) => constant(left),
                        _ => None,
                    }
                    .filter(|value| (**value).consttype == pg_sys::TEXTOID)
                    .and_then(|value| String::from_datum((*value).constvalue, false))
                    .map(|name| vec![name])
                }
                pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                    let expr = clause as *mut pg_sys::ScalarArrayOpExpr;
                    let args = pgrx::PgList::<pg_sys::Node>::from_pg((*expr).args);
                    match (args.get_ptr(0), args.get_ptr(1)) {
                        (Some(left), Some(right))
                            if (*expr).useOr
                                && (*expr).opno == pg_sys::Oid::from(pg_sys::TextEqualOperator)
                                && is_column(left) =>
                        {
                            constant(right)
                                .filter(|value| (**value).consttype == pg_sys::TEXTARRAYOID)
                                .and_then(|value| {
                                    Vec::<Option<String>>::from_datum((*value).constvalue, false)
                                })
                                .map(|names| names.into_iter().flatten().collect())
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(names) = names {
                pinned = Some(match pinned {
                    None => names,
                    Some(previous) => previous
                        .into_iter()
                        .filter(|name| names.contains(name))
                        .collect(),
                });
            }
        }
        pinned
    }
}

/// What the quals pin travels from the planner to the executor in the ForeignScan's
/// fdw_private: one String node holding JSON.
fn pinned_to_private(pinned: &Pinned) -> *mut pg_sys::List {
    let json = CString::new(pinned.to_json()).unwrap_or_default();
    // SAFETY: a one-element List of a String node, palloc'd in the planner's context.
    unsafe {
        pg_sys::lappend(
            ptr::null_mut(),
            pg_sys::makeString(pg_sys::pstrdup(json.as_ptr())).cast(),
        )
    }
}

pub(super) fn pinned_from_private(private: *mut pg_sys::List) -> Pinned {
    // SAFETY: fdw_private is NIL or what pinned_to_private built (copied by the plan cache).
    let json = unsafe {
        let items = pgrx::PgList::<pg_sys::String>::from_pg(private);
        match items.get_ptr(0) {
            Some(node) => cstr_to_string((*node).sval),
            None => return Pinned::default(),
        }
    };
    Pinned::from_json(&json)
}

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
            let pinned = Pinned {
                connection_names: pinned_values(
                    baserel,
                    foreign_table_id,
                    Column::SpConnectionName,
                ),
                account_ids: pinned_values(baserel, foreign_table_id, Column::AccountId),
            };
            // SAFETY: the planner's RelOptInfo; fdw_private is ours to set.
            unsafe { (*baserel).fdw_private = pinned_to_private(&pinned).cast() };
            // SAFETY: GetUserId only reads the current user.
            let user_id = unsafe { pg_sys::GetUserId() };
            aggregator_members(server_id, &options, &pinned, user_id, false).len()
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
        let path = pg_sys::create_foreignscan_path(
            root,
            baserel,
            ptr::null_mut(),
            rows,
            STARTUP_COST,
            STARTUP_COST + rows * pg_sys::DEFAULT_CPU_TUPLE_COST,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
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
    // SAFETY: as file_fdw does: every qual is checked locally by the executor.
    unsafe {
        let local_quals = pg_sys::extract_actual_clauses(scan_clauses, false);
        pg_sys::make_foreignscan(
            tlist,
            local_quals,
            (*baserel).relid,
            ptr::null_mut(),
            (*baserel).fdw_private.cast(),
            ptr::null_mut(),
            ptr::null_mut(),
            outer_plan,
        )
    }
}
