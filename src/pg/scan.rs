//! The executor callbacks: Begin/Iterate/ReScan/EndForeignScan, and the calls a scan makes
//! (through the identity cache, `concurrency` at a time).

use std::collections::{HashMap, HashSet};
use std::ffi::c_int;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;

use futures_util::StreamExt;

use crate::aggregate::OnError;
use crate::error::FdwError;
use crate::row::CallerIdentity;
use crate::shared::Event;
use crate::sts::{self, ConnectionSettings};

use super::catalog::{cstr_to_string, remember_client, TABLES};
use super::identities;
use super::interrupts::block_on;
use super::pins;
use super::report::{report, warn};
use super::resolve::{scan_plan, scan_user, ScanConfig, ScanPlan};
use super::tuple::{datum_of, table_attributes, Attribute};

/// What a scan did, for EXPLAIN ANALYZE.
#[derive(Default)]
pub(super) struct ScanStats {
    pub(super) cache_hits: u64,
    pub(super) aws_calls: u64,
    pub(super) aws_time: Duration,
}

/// Calls at once up to which a scan leaves its idle keep-alive connections for the next
/// queries; a scan running more closes them as it ends.
const KEEP_IDLE_UP_TO: usize = 8;

/// How long a call started after another ended waits, for the connection the ended call
/// used to be back in the pool: it returns two task hops after the call ends (its
/// connection's task, then hyper's idle watcher), and a call that finds no idle connection
/// opens one more (hyper races a new connection against the pool), which makes more
/// connections than `concurrency`. Waiting on a timer lets the runtime run every task that
/// is ready first, which a few yields do not when hundreds of calls end together.
const FOLLOWING_CALL_PAUSE: Duration = Duration::from_millis(1);

/// Closes the backend's idle connections when dropped: after a scan's calls, on return and
/// on the unwind of a cancel alike.
struct CloseIdleConnections;

impl Drop for CloseIdleConnections {
    fn drop(&mut self) {
        sts::close_idle_connections();
        crate::runtime::settle_parked();
    }
}

/// One call to STS, for the cache and the statistics.
struct Call {
    answer: Result<sts::Answer, FdwError>,
    attempts: u32,
    time: Duration,
}

/// Every member's identity: from the (shared or backend's) cache when fresh, else from STS, called
/// `concurrency` at a time (and then cached). A member's error fails the scan, or with
/// on_error 'skip' leaves its row out with a WARNING.
fn fetch_rows(plan: &ScanPlan, stats: &mut ScanStats) -> Vec<(String, CallerIdentity)> {
    let mut outcomes: Vec<Option<Result<CallerIdentity, FdwError>>> =
        vec![None; plan.members.len()];
    let mut pending: Vec<(usize, &ScanConfig)> = Vec::new();
    for (index, member) in plan.members.iter().enumerate() {
        match member {
            Err(error) => outcomes[index] = Some(Err(error.clone())),
            Ok(config) => match identities::cached(config, true) {
                Some(identity) => {
                    identities::record(config.server_id, &Event::CacheHit);
                    stats.cache_hits += 1;
                    outcomes[index] = Some(Ok(identity));
                }
                None => pending.push((index, config)),
            },
        }
    }
    if !pending.is_empty() {
        let started = Instant::now();
        // Members with the same settings (the same credentials sent to the same place) are
        // the same identity: one call answers them all.
        let mut distinct: Vec<&ConnectionSettings> = Vec::new();
        let mut seen: HashSet<&ConnectionSettings> = HashSet::new();
        for (_, config) in &pending {
            if seen.insert(&config.settings) {
                distinct.push(&config.settings);
            }
        }
        // `then`, not `then_some`: a guard built and discarded would run its Drop at once,
        // closing every idle connection after each small scan.
        let _close =
            (distinct.len().min(plan.concurrency) > KEEP_IDLE_UP_TO).then(|| CloseIdleConnections);
        // Whether a call has ended: a call started after one ended may find its connection.
        let ended = std::cell::Cell::new(false);
        let answers: HashMap<&ConnectionSettings, Call> = block_on(
            futures_util::stream::iter(distinct.iter().map(|&settings| {
                let ended = &ended;
                async move {
                    if ended.get() {
                        tokio::time::sleep(FOLLOWING_CALL_PAUSE).await;
                    }
                    let started = Instant::now();
                    let (answer, attempts) = sts::get_caller_identity_counted(settings).await;
                    ended.set(true);
                    (
                        settings,
                        Call {
                            answer,
                            attempts,
                            time: started.elapsed(),
                        },
                    )
                }
            }))
            .buffer_unordered(plan.concurrency)
            .collect::<HashMap<_, _>>(),
        );
        stats.aws_calls += distinct.len() as u64;
        stats.aws_time += started.elapsed();
        let answers = pending
            .iter()
            .filter_map(|&(index, config)| answers.get(&config.settings).map(|call| (index, call)));
        for (index, call) in answers {
            let Ok(config) = &plan.members[index] else {
                continue;
            };
            remember_client(&config.sources, &config.settings);
            let error = call
                .answer
                .as_ref()
                .err()
                .map(|error| error.message.as_str());
            identities::record(
                config.server_id,
                &Event::Call {
                    time: call.time,
                    attempts: call.attempts,
                    error,
                },
            );
            outcomes[index] = Some(match call.answer.clone() {
                Ok(answer) => {
                    identities::store(config, &answer);
                    Ok(answer.identity)
                }
                Err(error) if config.settings.server.ignores(&error) => {
                    // ignore_error_codes: this server contributes no row, as in Steampipe.
                    pgrx::debug1!(
                        "aws_sts server \"{}\": ignoring {} (ignore_error_codes or ignore_error_messages)",
                        config.server_name,
                        error.aws_code.as_deref().unwrap_or_default()
                    );
                    continue;
                }
                Err(error) => Err(error.for_server(&config.server_name)),
            });
        }
    }
    let mut rows = Vec::new();
    for (member, outcome) in plan.members.iter().zip(outcomes) {
        match outcome {
            Some(Ok(identity)) => {
                let name = member
                    .as_ref()
                    .map(|config| config.server_name.clone())
                    .unwrap_or_default();
                rows.push((name, identity));
            }
            Some(Err(error)) if plan.on_error == OnError::Skip => warn(&error),
            Some(Err(error)) => report(error),
            None => {}
        }
    }
    rows
}

/// Per-scan state, kept in the executor's memory context and dropped with it, so it is
/// freed on error too (EndForeignScan is not called then).
pub(super) struct ScanState {
    pub(super) plan: ScanPlan,
    /// For each attribute of the foreign table, what it reads; None for dropped ones.
    pub(super) attributes: Rc<Vec<Option<Attribute>>>,
    /// For each attribute, whether the query reads it (the others stay NULL).
    pub(super) read: Vec<bool>,
    /// One row per member server that answered, fetched on the first IterateForeignScan.
    pub(super) rows: Option<Vec<(String, CallerIdentity)>>,
    pub(super) next_row: usize,
    pub(super) stats: ScanStats,
}

/// Which of `count` attributes a plan's "1,3" (attribute numbers) or "*" says to read; all
/// of them when the plan says nothing.
fn columns_read(read: Option<&str>, count: usize) -> Vec<bool> {
    match read {
        Some(numbers) if numbers != "*" => {
            let mut read = vec![false; count];
            for number in numbers.split(',').filter_map(|n| n.parse::<usize>().ok()) {
                if let Some(flag) = number.checked_sub(1).and_then(|index| read.get_mut(index)) {
                    *flag = true;
                }
            }
            read
        }
        _ => vec![true; count],
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn begin_foreign_scan(
    node: *mut pg_sys::ForeignScanState,
    eflags: c_int,
) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as c_int != 0 {
        return;
    }
    // SAFETY: the executor passes an initialised ForeignScanState for a foreign table.
    let relation = unsafe { (*node).ss.ss_currentRelation };
    // SAFETY: the relation is open for the scan; its tuple descriptor lives as long.
    let (relation_id, server_id, table_name, tupdesc) = unsafe {
        let relation_id = (*relation).rd_id;
        let table = pg_sys::GetForeignTable(relation_id);
        (
            relation_id,
            (*table).serverid,
            cstr_to_string(pg_sys::get_rel_name(relation_id)),
            (*relation).rd_att,
        )
    };
    let plan = scan_plan(server_id, &pins::at_execution(node), scan_user(node), true);
    let attributes = TABLES.with(|tables| tables.borrow().get(&relation_id).cloned());
    let attributes = attributes.unwrap_or_else(|| {
        let attributes = Rc::new(table_attributes(
            relation_id,
            tupdesc,
            &table_name,
            &plan.server_name,
        ));
        TABLES.with(|tables| tables.borrow_mut().insert(relation_id, attributes.clone()));
        attributes
    });
    // SAFETY: the plan node of this scan; its fdw_private is what GetForeignPlan built.
    let read = pins::string_at(
        unsafe { (*((*node).ss.ps.plan as *const pg_sys::ForeignScan)).fdw_private },
        2,
    );
    let read = columns_read(read.as_deref(), attributes.len());
    let state = ScanState {
        plan,
        attributes,
        read,
        rows: None,
        next_row: 0,
        stats: ScanStats::default(),
    };
    let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state);
    // SAFETY: fdw_state is ours to set; it points into the executor's memory context.
    unsafe {
        (*node).fdw_state = state.cast();
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn iterate_foreign_scan(
    node: *mut pg_sys::ForeignScanState,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the scan slot and our state were set up by BeginForeignScan; the slot is
    // cleared through its own ops, as ExecClearTuple does.
    let (slot, state) = unsafe {
        let slot = (*node).ss.ss_ScanTupleSlot;
        if let Some(clear) = (*(*slot).tts_ops).clear {
            clear(slot);
        }
        (slot, &mut *((*node).fdw_state as *mut ScanState))
    };
    if state.rows.is_none() {
        state.rows = Some(fetch_rows(&state.plan, &mut state.stats));
    }
    let Some((server_name, identity)) = state
        .rows
        .as_ref()
        .and_then(|rows| rows.get(state.next_row))
    else {
        return slot;
    };
    // SAFETY: the slot's values/isnull arrays have one entry per attribute of the relation,
    // which `attributes` was built from; the datums live in the per-tuple memory context.
    unsafe {
        let natts = state.attributes.len();
        let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
        for (index, attribute) in state.attributes.iter().enumerate() {
            let attribute = attribute.as_ref().filter(|_| state.read[index]);
            let value = attribute.and_then(|attribute| {
                attribute
                    .column
                    .value(identity, server_name)
                    .map(|text| datum_of(&attribute.kind, &text, server_name))
            });
            nulls[index] = value.is_none();
            values[index] = value.unwrap_or(pg_sys::Datum::from(0));
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }
    state.next_row += 1;
    slot
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: fdw_state is our ScanState (set in BeginForeignScan) or NULL.
    unsafe {
        if let Some(state) = ((*node).fdw_state as *mut ScanState).as_mut() {
            // Identities do not change within a query: a rescan returns the same rows.
            state.next_row = 0;
        }
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn end_foreign_scan(_node: *mut pg_sys::ForeignScanState) {
    // The state is dropped with the executor's memory context, on success and on error alike.
}
