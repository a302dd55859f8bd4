//! EXPLAIN: what a scan would call, with which credentials source and cache state, and
//! with ANALYZE what it did; never a secret, never an AWS call.

use std::ffi::CString;
use std::time::Duration;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::aggregate::OnError;
use crate::cache::Lookup;
use crate::sts;

use super::files::descriptor_limit;
use super::identities;
use super::interrupts::block_on;
use super::pins::{self, Pins};
use super::resolve::{scan_plan, scan_user, ScanConfig};
use super::scan::ScanState;

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn explain_foreign_scan(
    node: *mut pg_sys::ForeignScanState,
    es: *mut pg_sys::ExplainState,
) {
    // SAFETY: the plan node of the scan being explained; fdw_state is our ScanState once the
    // scan began (EXPLAIN ANALYZE), else NULL.
    let (server_id, private, state) = unsafe {
        let plan = (*node).ss.ps.plan as *const pg_sys::ForeignScan;
        (
            (*plan).fs_server,
            (*plan).fdw_private,
            ((*node).fdw_state as *const ScanState).as_ref(),
        )
    };
    // EXPLAIN ANALYZE shows the members the scan called; EXPLAIN what a scan would call,
    // without calling: no AWS call, no secret.
    let planned;
    let plan = match state {
        Some(state) => &state.plan,
        None => {
            planned = scan_plan(
                server_id,
                &pins::known_from_private(private),
                scan_user(node),
                false,
            );
            &planned
        }
    };
    let chosen_at_execution = state.is_none() && Pins::has_runtime(private);
    let configs: Vec<&ScanConfig> = plan
        .members
        .iter()
        .filter_map(|member| member.as_ref().ok())
        .collect();
    let mut properties = Vec::new();
    if plan.aggregator {
        properties.push(("AWS Aggregator", plan.server_name.clone()));
        let names: Vec<&str> = configs
            .iter()
            .map(|config| config.server_name.as_str())
            .collect();
        let mut names = if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        };
        let refused = plan.members.len() - configs.len();
        if refused > 0 {
            names.push_str(&format!(" (+{refused} this user may not use)"));
        }
        properties.push((
            "AWS Servers",
            if chosen_at_execution {
                format!("chosen at execution among {names}")
            } else {
                names
            },
        ));
        let concurrency = if plan.concurrency < plan.configured_concurrency {
            format!(
                "{} (concurrency {} capped: this backend may hold {} descriptors)",
                plan.concurrency,
                plan.configured_concurrency,
                descriptor_limit()
            )
        } else {
            plan.concurrency.to_string()
        };
        properties.push(("AWS Concurrency", concurrency));
        let on_error = if plan.on_error == OnError::Skip {
            "skip"
        } else {
            "fail"
        };
        properties.push(("AWS On Error", on_error.to_string()));
    } else if configs.is_empty() {
        // The same rule as the scan's: nothing of the server's configuration is resolved
        // (no profile read, no cache looked at) for a user who may not use it.
        properties.push(("AWS Server", plan.server_name.clone()));
        properties.push(("AWS Credentials", "not usable by this user".to_string()));
    } else if let Some(config) = configs.first() {
        let server = &config.settings.server;
        let region = block_on(sts::resolve_region(server));
        properties.push(("AWS Server", config.server_name.clone()));
        properties.push(("AWS Region", region.to_string()));
        properties.push((
            "AWS Endpoint",
            block_on(sts::endpoint_for_messages(server, region.as_ref())),
        ));
        properties.push(("AWS Credentials", config.settings.credential_source()));
        properties.push(("AWS Timeout", sts::human_duration(server.timeout)));
        if !server.ignore_error_codes.is_empty() {
            properties.push((
                "AWS Ignore Error Codes",
                server.ignore_error_codes.join(", "),
            ));
        }
    }
    // SAFETY: the ExplainState of this EXPLAIN.
    let (analyze, timing) = unsafe { ((*es).analyze, (*es).timing) };
    match state {
        Some(state) if analyze => {
            properties.push(("AWS Calls", state.stats.aws_calls.to_string()));
            properties.push(("AWS Cache Hits", state.stats.cache_hits.to_string()));
            if timing {
                properties.push((
                    "AWS Call Time",
                    format!("{:.3} ms", state.stats.aws_time.as_secs_f64() * 1000.0),
                ));
            }
        }
        _ => {
            let lookups: Vec<Lookup> = configs
                .iter()
                .map(|config| identities::lookup(config))
                .collect();
            let hits = lookups
                .iter()
                .filter(|lookup| matches!(lookup, Lookup::Hit { .. }))
                .count();
            let shared = identities::shared();
            let cache = match lookups.as_slice() {
                [Lookup::Disabled] => "off".to_string(),
                [Lookup::Miss] if shared => "shared, miss (the scan will call STS)".to_string(),
                [Lookup::Miss] => "miss (the scan will call STS)".to_string(),
                // This backend's entries show no time left, so that plans stay the same
                // from run to run (regression tests compare them).
                [Lookup::Hit { remaining }] if shared => format!(
                    "shared, hit (expires in {})",
                    minutes_and_seconds(*remaining)
                ),
                [Lookup::Hit { .. }] => "hit".to_string(),
                [] => "not looked up".to_string(),
                _ if shared => format!("shared, {hits} of {} servers cached", lookups.len()),
                _ => format!("{hits} of {} servers cached", lookups.len()),
            };
            properties.push(("AWS Cache", cache));
        }
    }
    for (label, value) in properties {
        let label = CString::new(label).unwrap_or_default();
        let value = CString::new(value).unwrap_or_default();
        // SAFETY: ExplainPropertyText copies both strings into the explain output.
        unsafe { pg_sys::ExplainPropertyText(label.as_ptr(), value.as_ptr(), es) };
    }
}

/// `4m 59s`, `12s`: how long a shared entry has left.
fn minutes_and_seconds(remaining: Duration) -> String {
    let seconds = remaining.as_secs();
    match seconds / 60 {
        0 => format!("{seconds}s"),
        minutes => format!("{minutes}m {}s", seconds % 60),
    }
}
