//! The quals on `sp_connection_name` and `account_id` that prune an aggregator's members
//! (`=`, `IN (...)`, `= ANY(...)`, `LIKE`, `ILIKE`, `NOT LIKE`, `NOT ILIKE`, `<>`), so that it
//! calls only the members that can match: constants are read when planning, parameters
//! (generic plans, as drivers that prepare statements use) when the scan begins.

use std::ffi::CString;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::aggregate::{self, Filter, FilterOp, Pinned};
use crate::row::Column;

use super::catalog::cstr_to_string;

/// The columns whose quals prune aggregator members.
const PINNED_COLUMNS: [Column; 2] = [Column::SpConnectionName, Column::AccountId];

/// The operators on text besides `=` that prune, by their fixed OIDs in pg_catalog (an
/// operator of the same name elsewhere may mean anything, and prunes nothing).
const FILTER_OPERATORS: [(u32, FilterOp); 5] = [
    (pg_sys::OID_TEXT_LIKE_OP, FilterOp::Like),
    (1210, FilterOp::NotLike),
    (pg_sys::OID_TEXT_ICLIKE_OP, FilterOp::ILike),
    (1628, FilterOp::NotILike),
    (531, FilterOp::NotEqual),
];

/// How a qual known only at execution compares its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// `= $1`.
    Equal,
    /// `= ANY($1)`: an array.
    AnyEqual,
    Filter(FilterOp),
}

impl Comparison {
    fn name(self) -> &'static str {
        match self {
            Comparison::Equal => "=",
            Comparison::AnyEqual => "= ANY",
            Comparison::Filter(op) => op.name(),
        }
    }

    fn from_name(name: &str) -> Option<Comparison> {
        match name {
            "=" => Some(Comparison::Equal),
            "= ANY" => Some(Comparison::AnyEqual),
            _ => FilterOp::from_name(name).map(Comparison::Filter),
        }
    }
}

/// What a scan's quals pin, as the planner finds it: the values known now, and the
/// expressions known only at execution, each with its column and comparison.
pub(super) struct Pins {
    pub(super) known: Pinned,
    runtime: Vec<(Column, Comparison, *mut pg_sys::Node)>,
}

impl Pins {
    /// Whether some member choice waits for execution: EXPLAIN says so.
    pub(super) fn has_runtime(private: *mut pg_sys::List) -> bool {
        !runtime_from_private(private).is_empty()
    }

    /// Whether a parameter pins `sp_connection_name` to one value (`= $1`): at most one row.
    pub(super) fn one_name_at_runtime(&self) -> bool {
        self.runtime.iter().any(|(column, comparison, _)| {
            *column == Column::SpConnectionName && *comparison == Comparison::Equal
        })
    }
}

/// Reads the restriction clauses of the scanned relation for both pinned columns.
pub(super) fn find(baserel: *mut pg_sys::RelOptInfo, relation_id: pg_sys::Oid) -> Pins {
    let mut pins = Pins {
        known: Pinned::default(),
        runtime: Vec::new(),
    };
    for column in PINNED_COLUMNS {
        let mut filters = Vec::new();
        let values = column_pins(
            baserel,
            relation_id,
            column,
            &mut filters,
            &mut pins.runtime,
        );
        match column {
            Column::SpConnectionName => {
                pins.known.connection_names = values;
                pins.known.name_filters = filters;
            }
            _ => {
                pins.known.account_ids = values;
                pins.known.account_filters = filters;
            }
        }
    }
    pins
}

/// An expression the executor can evaluate once, before the scan: constants and the
/// statement's parameters, through casts and ARRAY[...]; never a column, a subquery's
/// output or a function call.
fn known_at_execution(node: *mut pg_sys::Node) -> bool {
    if node.is_null() {
        return false;
    }
    // SAFETY: node tags are checked before each cast.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_Const => true,
            pg_sys::NodeTag::T_Param => {
                (*(node as *mut pg_sys::Param)).paramkind == pg_sys::ParamKind::PARAM_EXTERN
            }
            pg_sys::NodeTag::T_RelabelType => {
                known_at_execution((*(node as *mut pg_sys::RelabelType)).arg.cast())
            }
            pg_sys::NodeTag::T_CoerceViaIO => {
                known_at_execution((*(node as *mut pg_sys::CoerceViaIO)).arg.cast())
            }
            pg_sys::NodeTag::T_ArrayExpr => {
                pgrx::PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::ArrayExpr)).elements)
                    .iter_ptr()
                    .all(known_at_execution)
            }
            _ => false,
        }
    }
}

/// The values the quals pin one text column to with constants, if any, and the filters
/// (`LIKE`, `<>`, ...) with constants go to `filters`; expressions known only at execution
/// go to `runtime`. Other quals are left to the executor (which checks every qual anyway).
fn column_pins(
    baserel: *mut pg_sys::RelOptInfo,
    relation_id: pg_sys::Oid,
    column: Column,
    filters: &mut Vec<Filter>,
    runtime: &mut Vec<(Column, Comparison, *mut pg_sys::Node)>,
) -> Option<Vec<String>> {
    let name = CString::new(column.name()).unwrap_or_default();
    // SAFETY: reads the planner's restriction clauses of this relation: node tags are
    // checked before each cast, and Const values are converted as text (or text[]) only
    // when their type says so.
    unsafe {
        let attnum = pg_sys::get_attnum(relation_id, name.as_ptr());
        if attnum == pg_sys::InvalidAttrNumber as pg_sys::AttrNumber {
            return None;
        }
        let is_column = |node: *mut pg_sys::Node| {
            !node.is_null()
                && (*node).type_ == pg_sys::NodeTag::T_Var
                && (*(node as *mut pg_sys::Var)).varattno == attnum
                && (*(node as *mut pg_sys::Var)).varno as u32 == (*baserel).relid
        };
        let constant = |node: *mut pg_sys::Node, type_id: pg_sys::Oid| {
            (!node.is_null()
                && (*node).type_ == pg_sys::NodeTag::T_Const
                && !(*(node as *mut pg_sys::Const)).constisnull
                && (*(node as *mut pg_sys::Const)).consttype == type_id)
                .then(|| (*(node as *mut pg_sys::Const)).constvalue)
        };
        let text_eq = pg_sys::Oid::from(pg_sys::TextEqualOperator);
        let mut pinned: Option<Vec<String>> = None;
        for info in
            pgrx::PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr()
        {
            let clause = (*info).clause as *mut pg_sys::Node;
            // The other side of `column = x`, `column = ANY(x)` or `column LIKE x` (...), and
            // how they compare.
            let other = match (*clause).type_ {
                pg_sys::NodeTag::T_OpExpr => {
                    let opno = (*(clause as *mut pg_sys::OpExpr)).opno;
                    let comparison = if opno == text_eq {
                        Some(Comparison::Equal)
                    } else {
                        FILTER_OPERATORS
                            .iter()
                            .find(|(oid, _)| pg_sys::Oid::from(*oid) == opno)
                            .map(|(_, op)| Comparison::Filter(*op))
                    };
                    // `x = column` and `x <> column` mean the same turned round; a pattern
                    // is always on the right.
                    let symmetric = matches!(
                        comparison,
                        Some(Comparison::Equal | Comparison::Filter(FilterOp::NotEqual))
                    );
                    let args = pgrx::PgList::<pg_sys::Node>::from_pg(
                        (*(clause as *mut pg_sys::OpExpr)).args,
                    );
                    match (comparison, args.get_ptr(0), args.get_ptr(1)) {
                        (Some(comparison), Some(left), Some(right)) if is_column(left) => {
                            Some((right, comparison))
                        }
                        (Some(comparison), Some(left), Some(right))
                            if symmetric && is_column(right) =>
                        {
                            Some((left, comparison))
                        }
                        _ => None,
                    }
                }
                pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                    let expr = clause as *mut pg_sys::ScalarArrayOpExpr;
                    let args = pgrx::PgList::<pg_sys::Node>::from_pg((*expr).args);
                    match (args.get_ptr(0), args.get_ptr(1)) {
                        (Some(left), Some(right))
                            if (*expr).useOr && (*expr).opno == text_eq && is_column(left) =>
                        {
                            Some((right, Comparison::AnyEqual))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some((other, comparison)) = other else {
                continue;
            };
            let text = || {
                constant(other, pg_sys::TEXTOID).and_then(|value| String::from_datum(value, false))
            };
            let known = match comparison {
                Comparison::AnyEqual => constant(other, pg_sys::TEXTARRAYOID)
                    .and_then(|value| Vec::<Option<String>>::from_datum(value, false))
                    .map(|names| {
                        aggregate::narrow(&mut pinned, names.into_iter().flatten().collect())
                    }),
                Comparison::Equal => text().map(|name| aggregate::narrow(&mut pinned, vec![name])),
                Comparison::Filter(op) => text().map(|operand| {
                    filters.push(Filter {
                        op,
                        operand: Some(operand),
                    })
                }),
            };
            if known.is_none() && known_at_execution(other) {
                runtime.push((column, comparison, other));
            }
        }
        pinned
    }
}

/// The planner's finding as the RelOptInfo's fdw_private: [known JSON, runtime JSON,
/// runtime expressions].
pub(super) fn to_rel_private(pins: &Pins) -> *mut pg_sys::List {
    let known = CString::new(pins.known.to_json()).unwrap_or_default();
    let columns: Vec<(&str, &str)> = pins
        .runtime
        .iter()
        .map(|(column, comparison, _)| (column.name(), comparison.name()))
        .collect();
    let columns =
        CString::new(serde_json::to_string(&columns).unwrap_or_default()).unwrap_or_default();
    // SAFETY: Lists and String nodes palloc'd in the planner's context; the expressions are
    // the planner's own nodes, handed on to the plan's fdw_exprs (which setrefs fixes up).
    unsafe {
        let mut expressions: *mut pg_sys::List = ptr::null_mut();
        for (_, _, expression) in &pins.runtime {
            expressions = pg_sys::lappend(expressions, (*expression).cast());
        }
        let mut private = pg_sys::lappend(
            ptr::null_mut(),
            pg_sys::makeString(pg_sys::pstrdup(known.as_ptr())).cast(),
        );
        private = pg_sys::lappend(
            private,
            pg_sys::makeString(pg_sys::pstrdup(columns.as_ptr())).cast(),
        );
        pg_sys::lappend(private, expressions.cast())
    }
}

/// Splits the RelOptInfo's fdw_private into the plan's fdw_private (the two JSON strings:
/// a plan may be cached and copied, so no pointers) and its fdw_exprs.
pub(super) fn split_rel_private(
    private: *mut pg_sys::List,
) -> (*mut pg_sys::List, *mut pg_sys::List) {
    // SAFETY: NIL, or the three-element List to_rel_private built.
    unsafe {
        let items = pgrx::PgList::<pg_sys::Node>::from_pg(private);
        match (items.get_ptr(0), items.get_ptr(1), items.get_ptr(2)) {
            (Some(known), Some(columns), Some(expressions)) => {
                let plan_private = pg_sys::lappend(
                    pg_sys::lappend(ptr::null_mut(), known.cast()),
                    columns.cast(),
                );
                (plan_private, expressions.cast())
            }
            _ => (ptr::null_mut(), ptr::null_mut()),
        }
    }
}

/// The String node at `index` of a plan's fdw_private.
pub(super) fn string_at(private: *mut pg_sys::List, index: usize) -> Option<String> {
    // SAFETY: fdw_private is NIL or what split_rel_private built (copied by the plan cache).
    unsafe {
        let items = pgrx::PgList::<pg_sys::String>::from_pg(private);
        items
            .get_ptr(index)
            .map(|node| cstr_to_string((*node).sval))
    }
}

/// What the quals pinned when planning, from the plan's fdw_private.
pub(super) fn known_from_private(private: *mut pg_sys::List) -> Pinned {
    string_at(private, 0)
        .map(|json| Pinned::from_json(&json))
        .unwrap_or_default()
}

fn runtime_from_private(private: *mut pg_sys::List) -> Vec<(String, Comparison)> {
    let columns: Vec<(String, String)> = string_at(private, 1)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    columns
        .into_iter()
        .filter_map(|(column, comparison)| Some((column, Comparison::from_name(&comparison)?)))
        .collect()
}

/// What a parameter's value is, read as the planner found it typed.
enum Value {
    /// `= $1` and `= ANY($1)`: the values pinned (none for a NULL).
    Pinned(Vec<String>),
    /// `LIKE $1` (...): the operand (None for a NULL).
    Operand(Option<String>),
}

/// What the quals pin for this execution: the planner's constants, narrowed by the values
/// of the parameters the plan left for now (a NULL matches nothing).
pub(super) fn at_execution(node: *mut pg_sys::ForeignScanState) -> Pinned {
    // SAFETY: the plan node of this scan.
    let (private, expressions) = unsafe {
        let plan = (*node).ss.ps.plan as *const pg_sys::ForeignScan;
        ((*plan).fdw_private, (*plan).fdw_exprs)
    };
    let mut pinned = known_from_private(private);
    let columns = runtime_from_private(private);
    if columns.is_empty() {
        return pinned;
    }
    // SAFETY: fdw_exprs holds one expression per runtime column, fixed up by setrefs; each is
    // initialised against this scan's PlanState and evaluated once in its ExprContext, the
    // result read as text or text[] as the planner found it typed.
    let values: Vec<Value> = unsafe {
        let econtext = (*node).ss.ps.ps_ExprContext;
        pgrx::PgList::<pg_sys::Node>::from_pg(expressions)
            .iter_ptr()
            .zip(&columns)
            .map(|(expression, (_, comparison))| {
                let state = pg_sys::ExecInitExpr(expression.cast(), node.cast());
                let mut is_null = false;
                let datum = pg_sys::ExecEvalExpr(state, econtext, &mut is_null);
                match comparison {
                    Comparison::AnyEqual => Value::Pinned(
                        Vec::<Option<String>>::from_datum(datum, is_null)
                            .map(|names| names.into_iter().flatten().collect())
                            .unwrap_or_default(),
                    ),
                    Comparison::Equal => {
                        Value::Pinned(String::from_datum(datum, is_null).into_iter().collect())
                    }
                    Comparison::Filter(_) => Value::Operand(String::from_datum(datum, is_null)),
                }
            })
            .collect()
    };
    for ((column, comparison), value) in columns.iter().zip(values) {
        let names = column == Column::SpConnectionName.name();
        match (value, comparison) {
            (Value::Pinned(values), _) => aggregate::narrow(
                if names {
                    &mut pinned.connection_names
                } else {
                    &mut pinned.account_ids
                },
                values,
            ),
            (Value::Operand(operand), Comparison::Filter(op)) => {
                let filter = Filter { op: *op, operand };
                if names {
                    pinned.name_filters.push(filter);
                } else {
                    pinned.account_filters.push(filter);
                }
            }
            (Value::Operand(_), _) => {}
        }
    }
    pinned
}
