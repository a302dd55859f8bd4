//! What a scan calls, resolved for a user: one server's settings with the user mapping's
//! keys and the rule on the database server's own credentials, or an aggregator's members.

use pgrx::pg_sys;

use crate::aggregate::{self, AggregatorOptions, Candidate, OnError, Pinned};
use crate::error::{FdwError, SqlState};
use crate::options::{self, ServerKind, ServerOptions};
use crate::row;
use crate::sts::ConnectionSettings;

use super::catalog::{
    aws_sts_servers, server_of, syscache_hash, user_mapping_options, user_name, MAPPINGS,
};
use super::compat;
use super::files::descriptor_limit;
use super::identities;
use super::report::report;

/// What a scan needs, resolved from the catalogs: no secret is ever printed from here.
pub(super) struct ScanConfig {
    pub(super) server_id: pg_sys::Oid,
    /// The user the settings were resolved for (whose entry the cache view shows).
    pub(super) user_id: pg_sys::Oid,
    pub(super) server_name: String,
    pub(super) settings: ConnectionSettings,
    /// Syscache hash values of the server and user mapping, for cache invalidation.
    pub(super) sources: Vec<u32>,
}

/// Resolves what a scan of one AWS connection server needs: its options and the user
/// mapping's. The database server's own (ambient) credentials, the default chain or a
/// profile, are used only where a superuser decides where they go: on a server a superuser
/// owns (its owner sets endpoint_url, role_arn, profile), and by a user who is a superuser
/// or whose mapping a superuser gave `ambient_credentials`. Scans, EXPLAIN and pruning all
/// resolve through here, so none of them reads what the rule refuses. Errors name the
/// server.
fn try_scan_config(
    server_id: pg_sys::Oid,
    server_name: &str,
    server: ServerOptions,
    user_id: pg_sys::Oid,
) -> Result<ScanConfig, FdwError> {
    let cached = MAPPINGS.with(|mappings| mappings.borrow().get(&(user_id, server_id)).cloned());
    let (mapping_id, mapping) = match cached {
        Some(cached) => cached,
        None => {
            let (mapping_id, mapping) =
                user_mapping_options(user_id, server_id).unwrap_or_default();
            let parsed = (mapping_id, options::parse_user_mapping(&mapping));
            MAPPINGS.with(|mappings| {
                mappings
                    .borrow_mut()
                    .insert((user_id, server_id), parsed.clone())
            });
            parsed
        }
    };
    let mapping = mapping.map_err(|error| error.for_server(server_name))?;
    let mut sources = vec![syscache_hash(
        pg_sys::SysCacheIdentifier::FOREIGNSERVEROID,
        server_id,
    )];
    if mapping_id != pg_sys::InvalidOid {
        sources.push(syscache_hash(
            pg_sys::SysCacheIdentifier::USERMAPPINGOID,
            mapping_id,
        ));
    }
    let settings = ConnectionSettings::new(server, mapping.keys);
    // SAFETY: superuser_arg only reads the role's syscache entry.
    let is_superuser = unsafe { pg_sys::superuser_arg(user_id) };
    if settings.uses_ambient_credentials() && !mapping.ambient_credentials && !is_superuser {
        let user = user_name(user_id);
        let server = row::quote_ident(server_name);
        let error = match &settings.server.profile {
            Some(profile) => FdwError::new(
                SqlState::InsufficientPrivilege,
                format!("user \"{user}\" may not use profile \"{profile}\" of the database server's AWS configuration"),
            )
            .with_hint(format!(
                "A profile reads the database server's own files; ask a superuser to set ambient_credentials 'true' \
                 on your user mapping (ALTER USER MAPPING FOR \"{user}\" SERVER {server} OPTIONS (ADD ambient_credentials 'true')), \
                 or use a server without profile and keys in your user mapping."
            )),
            None => FdwError::new(
                SqlState::InsufficientPrivilege,
                format!("user \"{user}\" has no AWS keys for this server and may not use the database server's own credentials"),
            )
            .with_hint(format!(
                "Create a user mapping with keys: CREATE USER MAPPING FOR \"{user}\" SERVER {server} OPTIONS (access_key '...', secret_key '...'); \
                 or ask a superuser to set ambient_credentials 'true' on it."
            )),
        };
        return Err(error.for_server(server_name));
    }
    if settings.uses_ambient_credentials() {
        owner_may_direct_ambient_credentials(server_id, server_name)?;
    }
    Ok(ScanConfig {
        server_id,
        user_id,
        server_name: server_name.to_string(),
        settings,
        sources,
    })
}

/// Whether the server's owner is a superuser: only then may the server send the database
/// server's own credentials anywhere, as its owner alone chooses endpoint_url, role_arn and
/// profile (a signed GetCallerIdentity is a bearer proof of the identity).
fn owner_may_direct_ambient_credentials(
    server_id: pg_sys::Oid,
    server_name: &str,
) -> Result<(), FdwError> {
    // SAFETY: GetForeignServer errors out itself for an unknown server; superuser_arg only
    // reads the role's syscache entry.
    let (owner, owner_is_superuser) = unsafe {
        let owner = (*pg_sys::GetForeignServer(server_id)).owner;
        (owner, pg_sys::superuser_arg(owner))
    };
    if owner_is_superuser {
        return Ok(());
    }
    let owner = user_name(owner);
    Err(FdwError::new(
        SqlState::InsufficientPrivilege,
        format!(
            "the server is owned by \"{owner}\", who is not a superuser, so it may not use the database server's own AWS credentials"
        ),
    )
    .with_detail("The default credential chain and profiles are used only on servers a superuser owns: the owner chooses where requests signed with them go (endpoint_url, role_arn, profile).")
    .with_hint(format!(
        "Put keys in a user mapping, or have a superuser take the server over: ALTER SERVER {} OWNER TO <superuser>.",
        row::quote_ident(server_name)
    ))
    .for_server(server_name))
}

/// The servers an aggregator scan calls: the aws_sts servers matching its patterns, less
/// those the query's `sp_connection_name` quals exclude. The planner counts them; the
/// executor resolves each.
fn member_servers(
    aggregator_id: pg_sys::Oid,
    options: &AggregatorOptions,
    pinned: &Pinned,
) -> Vec<Candidate<(pg_sys::Oid, Option<ServerOptions>)>> {
    // SAFETY: GetForeignServer errors out itself for an unknown server.
    let fdw_id = unsafe { (*pg_sys::GetForeignServer(aggregator_id)).fdwid };
    aggregate::select_members(&aws_sts_servers(fdw_id), &options.patterns, pinned)
}

/// The members an aggregator scan calls, each resolved for `user_id` (or the error that
/// member gives: no USAGE on it, no keys, ...).
pub(super) fn aggregator_members(
    aggregator_id: pg_sys::Oid,
    options: &AggregatorOptions,
    pinned: &Pinned,
    user_id: pg_sys::Oid,
) -> Vec<Result<ScanConfig, FdwError>> {
    member_servers(aggregator_id, options, pinned)
        .into_iter()
        .filter_map(|member| {
            let (server_id, server) = member.id;
            let allowed = compat::foreign_server_aclcheck(
                server_id,
                user_id,
                pg_sys::ACL_USAGE as pg_sys::AclMode,
            ) == pg_sys::AclResult::ACLCHECK_OK;
            if !allowed {
                return Some(Err(FdwError::new(
                    SqlState::InsufficientPrivilege,
                    format!("permission denied for foreign server {}", member.name),
                )
                .with_hint(format!(
                    "GRANT USAGE ON FOREIGN SERVER {} to the user.",
                    row::quote_ident(&member.name)
                ))
                .for_server(&member.name)));
            }
            // select_members leaves aggregators (the servers without options here) out.
            server.map(|server| try_scan_config(server_id, &member.name, server, user_id))
        })
        // account_id quals: leave out members whose account is known not to match.
        .filter(|member| match member {
            Ok(config) => {
                let cached_account =
                    identities::cached(config, false).map(|identity| identity.account_id);
                let role_arn = config
                    .settings
                    .server
                    .assume_role
                    .as_ref()
                    .map(|role| role.role_arn.as_str());
                pinned.admits_account(
                    aggregate::known_account(role_arn, cached_account.as_deref()).as_deref(),
                )
            }
            Err(_) => true,
        })
        .collect()
}

/// What a scan calls: the members of an aggregator, or the one server.
pub(super) struct ScanPlan {
    pub(super) server_name: String,
    pub(super) members: Vec<Result<ScanConfig, FdwError>>,
    /// How many members are called at once: `concurrency`, capped by the descriptors the
    /// backend may hold (see [`aggregate::effective_concurrency`]).
    pub(super) concurrency: usize,
    /// The aggregator's `concurrency` option (1 for a single server).
    pub(super) configured_concurrency: usize,
    pub(super) on_error: OnError,
    pub(super) aggregator: bool,
}

pub(super) fn scan_plan(
    server_id: pg_sys::Oid,
    pinned: &Pinned,
    user_id: pg_sys::Oid,
    report_errors: bool,
) -> ScanPlan {
    let (server_name, kind) = server_of(server_id);
    match kind {
        ServerKind::Connection(server) => {
            let config = try_scan_config(server_id, &server_name, server, user_id);
            if report_errors {
                if let Err(error) = &config {
                    report(error.clone());
                }
            }
            ScanPlan {
                server_name,
                members: vec![config],
                concurrency: 1,
                configured_concurrency: 1,
                on_error: OnError::Fail,
                aggregator: false,
            }
        }
        ServerKind::Aggregator(options) => ScanPlan {
            members: aggregator_members(server_id, &options, pinned, user_id),
            server_name,
            concurrency: aggregate::effective_concurrency(options.concurrency, descriptor_limit()),
            configured_concurrency: options.concurrency,
            on_error: options.on_error,
            aggregator: true,
        },
    }
}

/// The user whose mapping a scan uses: the view owner for a scan through a view, else the
/// current user (as postgres_fdw does with checkAsUser).
pub(super) fn scan_user(node: *const pg_sys::ForeignScanState) -> pg_sys::Oid {
    // SAFETY: `node` is the scan being begun or explained.
    unsafe {
        let check_as_user = compat::scan_check_as_user(node);
        if check_as_user != pg_sys::InvalidOid {
            check_as_user
        } else {
            pg_sys::GetUserId()
        }
    }
}
