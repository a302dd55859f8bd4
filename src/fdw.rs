//! The thin FDW glue: the handler, the validator and the scan callbacks. All `unsafe` in
//! aws_sts lives here; everything it decides is delegated to the Postgres-free modules.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgMemoryContexts, PgSqlErrorCode};

use futures_util::StreamExt;

use crate::aggregate::{self, AggregatorOptions, Candidate, OnError, Pinned};
use crate::cache::{IdentityCache, Lookup};
use crate::error::{FdwError, SqlState};
use crate::options::{self, Catalog, ServerKind, ServerOptions};
use crate::row::{self, CallerIdentity, Column};
use crate::runtime::{self, Interrupted};
use crate::sts::{self, ConnectionSettings};

extension_sql!(
    r#"
CREATE FUNCTION aws_sts_fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'aws_sts_fdw_handler' LANGUAGE C STRICT;
CREATE FUNCTION aws_sts_fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'aws_sts_fdw_validator' LANGUAGE C STRICT;
CREATE FOREIGN DATA WRAPPER aws_sts HANDLER aws_sts_fdw_handler VALIDATOR aws_sts_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER aws_sts IS 'AWS STS caller identity (Steampipe-compatible aws_sts_caller_identity)';

-- IMPORT FOREIGN SCHEMA may only return CREATE FOREIGN TABLE statements, so the comments
-- on imported tables and their columns are added when the IMPORT command ends.
CREATE FUNCTION aws_sts_comment_imported_tables() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    imported record;
    col record;
BEGIN
    FOR imported IN
        SELECT DISTINCT cmd.objid
        FROM pg_event_trigger_ddl_commands() AS cmd
        JOIN pg_foreign_table AS ft ON ft.ftrelid = cmd.objid
        JOIN pg_foreign_server AS srv ON srv.oid = ft.ftserver
        JOIN pg_foreign_data_wrapper AS fdw ON fdw.oid = srv.srvfdw
        WHERE cmd.object_type = 'foreign table' AND fdw.fdwname = 'aws_sts'
    LOOP
        EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L',
                       imported.objid::regclass, @extschema@.aws_sts_table_comment());
        FOR col IN
            SELECT attname FROM pg_attribute
            WHERE attrelid = imported.objid AND attnum > 0 AND NOT attisdropped
        LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L',
                           imported.objid::regclass, col.attname,
                           @extschema@.aws_sts_column_comment(col.attname));
        END LOOP;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER aws_sts_comment_imported_tables ON ddl_command_end
    WHEN TAG IN ('IMPORT FOREIGN SCHEMA')
    EXECUTE FUNCTION aws_sts_comment_imported_tables();
"#,
    name = "foreign_data_wrapper",
    requires = [aws_sts_table_comment, aws_sts_column_comment],
);

/// The comment IMPORT FOREIGN SCHEMA puts on `aws_sts_caller_identity`.
#[pg_extern(immutable, parallel_safe)]
fn aws_sts_table_comment() -> &'static str {
    row::TABLE_COMMENT
}

/// The comment of a column of `aws_sts_caller_identity`, NULL for an unknown name.
#[pg_extern(immutable, parallel_safe)]
fn aws_sts_column_comment(column_name: &str) -> Option<&'static str> {
    Column::by_name(column_name).map(Column::comment)
}

thread_local! {
    /// The backend's identity cache (a backend is single-threaded).
    static IDENTITY_CACHE: RefCell<IdentityCache> = RefCell::new(IdentityCache::new());
    static INVALIDATION_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// Parsed options per server, so a scan does not re-read and re-parse them (config's
    /// HCL included); emptied by any change to pg_foreign_server.
    static SERVERS: RefCell<HashMap<pg_sys::Oid, (String, ServerKind)>> = RefCell::new(HashMap::new());
    /// Parsed user mapping per (user, server); emptied by any change to pg_user_mapping or
    /// pg_foreign_server.
    static MAPPINGS: RefCell<HashMap<(pg_sys::Oid, pg_sys::Oid), CachedMapping>> = RefCell::new(HashMap::new());
    /// What each attribute of a foreign table reads, per relation; an entry goes with the
    /// relation's relcache invalidation (ALTER FOREIGN TABLE, column options).
    static TABLES: RefCell<HashMap<pg_sys::Oid, Rc<Vec<Option<Attribute>>>>> = RefCell::new(HashMap::new());
    /// jsonb values by their text (akas, sp_ctx, _ctx repeat from scan to scan): parsed once,
    /// copied into each row.
    static JSONB_VALUES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// A user mapping as a scan needs it: its oid (for cache invalidation) and options.
type CachedMapping = (pg_sys::Oid, Result<options::UserMappingOptions, FdwError>);

/// Enough distinct jsonb values for many servers' rows; past it the map starts over.
const JSONB_VALUES_LIMIT: usize = 4096;

/// How a foreign table attribute gets its value.
#[derive(Debug, Clone, Copy)]
struct Attribute {
    column: Column,
    kind: AttributeKind,
}

#[derive(Debug, Clone, Copy)]
enum AttributeKind {
    Text,
    Jsonb,
    /// Any other type: through its input function, as COPY would.
    Other {
        type_id: pg_sys::Oid,
        typmod: i32,
    },
}

/// Empties this backend's identity cache and drops its STS clients (and the credentials
/// they hold); returns how many cached identities there were.
#[pg_extern(volatile, parallel_unsafe)]
fn aws_sts_clear_cache() -> i64 {
    forget_everything() as i64
}

fn forget_everything() -> usize {
    sts::clear_clients();
    forget_catalog_state();
    IDENTITY_CACHE.with(|cache| cache.borrow_mut().clear())
}

fn forget_catalog_state() {
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
        IDENTITY_CACHE.with(|cache| cache.borrow_mut().invalidate(hash_value));
        if hash_value == 0 {
            sts::clear_clients();
        }
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
fn syscache_hash(cache_id: pg_sys::SysCacheIdentifier::Type, oid: pg_sys::Oid) -> u32 {
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
/// once per backend, on first use.
fn register_invalidation() {
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
    // SAFETY: as above, for relcache invalidations (column options, ALTER FOREIGN TABLE).
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(invalidate_on_relation_change),
            pg_sys::Datum::from(0),
        );
    }
}

/// Cost of one GetCallerIdentity round trip, in planner units (postgres_fdw's default
/// fdw_startup_cost is 100 for a connection).
const STARTUP_COST: f64 = 100.0;

/// Raises `error` as a Postgres ERROR; never returns.
fn report(error: FdwError) -> ! {
    let code = match error.state {
        SqlState::FdwError => PgSqlErrorCode::ERRCODE_FDW_ERROR,
        SqlState::InvalidOptionName => PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME,
        SqlState::InvalidAttributeValue => PgSqlErrorCode::ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
        SqlState::OptionNameNotFound => PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
        SqlState::UnableToEstablishConnection => {
            PgSqlErrorCode::ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION
        }
        SqlState::UnableToCreateReply => PgSqlErrorCode::ERRCODE_FDW_UNABLE_TO_CREATE_REPLY,
        SqlState::InvalidColumnName => PgSqlErrorCode::ERRCODE_FDW_INVALID_COLUMN_NAME,
        SqlState::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
    };
    let mut report = ErrorReport::new(code, error.message, "aws_sts");
    if let Some(detail) = error.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

fn cstr_to_string(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: callers pass NUL-terminated strings owned by Postgres catalogs or nodes.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// A List of DefElem (catalog options) as name/value pairs.
fn def_elems(list: *mut pg_sys::List) -> Vec<(String, String)> {
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

fn catalog_of(catalog_oid: pg_sys::Oid) -> Option<Catalog> {
    match catalog_oid {
        pg_sys::ForeignDataWrapperRelationId => Some(Catalog::Wrapper),
        pg_sys::ForeignServerRelationId => Some(Catalog::Server),
        pg_sys::UserMappingRelationId => Some(Catalog::UserMapping),
        pg_sys::ForeignTableRelationId => Some(Catalog::ForeignTable),
        pg_sys::AttributeRelationId => Some(Catalog::Column),
        _ => None,
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_aws_sts_fdw_validator() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Validates options at CREATE/ALTER of the wrapper, a server, a user mapping, a foreign
/// table or a column, using the static option table in [`options`].
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn aws_sts_fdw_validator(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: Postgres calls the validator (declared STRICT) with a text[] and an oid.
    let (options, catalog_oid) = unsafe {
        let options = pg_sys::untransformRelOptions(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
        let catalog_oid =
            pg_sys::Oid::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1), false);
        (
            def_elems(options),
            catalog_oid.unwrap_or(pg_sys::InvalidOid),
        )
    };
    let Some(catalog) = catalog_of(catalog_oid) else {
        report(FdwError::new(
            SqlState::FdwError,
            format!("aws_sts options are not valid for catalog {catalog_oid:?}"),
        ));
    };
    // SAFETY: superuser() only reads the current user's role from the syscache.
    let is_superuser = unsafe { pg_sys::superuser() };
    if options::may_carry_secrets(&options) {
        // Postgres logs a failing (or warned-about) statement's text, which here holds
        // keys: keep the statement out of the server log for the rest of this command.
        // SAFETY: debug_query_string is only read when a message is logged; Postgres sets
        // it again for the next statement.
        unsafe { pg_sys::debug_query_string = ptr::null() };
    }
    match options::validate(catalog, &options, is_superuser) {
        Ok(warnings) => {
            for warning in warnings {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, warning, "aws_sts")
                    .set_hint("CREATE USER MAPPING FOR <user> SERVER <server> OPTIONS (access_key '...', secret_key '...') keeps keys private to that user.")
                    .report(PgLogLevel::WARNING);
            }
        }
        Err(error) => report(error),
    }
    pg_sys::Datum::from(0)
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_aws_sts_fdw_handler() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Returns the FdwRoutine with the scan callbacks and IMPORT FOREIGN SCHEMA.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn aws_sts_fdw_handler(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: makeNode in the current memory context, as every FDW handler does.
    let routine = unsafe {
        let mut routine = PgBox::<pg_sys::FdwRoutine>::alloc_node(pg_sys::NodeTag::T_FdwRoutine);
        routine.GetForeignRelSize = Some(get_foreign_rel_size);
        routine.GetForeignPaths = Some(get_foreign_paths);
        routine.GetForeignPlan = Some(get_foreign_plan);
        routine.BeginForeignScan = Some(begin_foreign_scan);
        routine.IterateForeignScan = Some(iterate_foreign_scan);
        routine.ReScanForeignScan = Some(rescan_foreign_scan);
        routine.EndForeignScan = Some(end_foreign_scan);
        routine.ExplainForeignScan = Some(explain_foreign_scan);
        routine.ImportForeignSchema = Some(import_foreign_schema);
        routine.into_pg()
    };
    pg_sys::Datum::from(routine)
}

/// What a scan needs, resolved from the catalogs: no secret is ever printed from here.
struct ScanConfig {
    server_name: String,
    settings: ConnectionSettings,
    /// Syscache hash values of the server and user mapping, for cache invalidation.
    sources: Vec<u32>,
}

/// The options of the user mapping for (user, server), else for (PUBLIC, server), else none.
/// Unlike GetUserMapping, a missing mapping is not an error: credentials are optional.
fn user_mapping_options(
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

fn user_name(user_id: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId with noerr=true returns NULL for an unknown role.
    cstr_to_string(unsafe { pg_sys::GetUserNameFromId(user_id, true) })
}

/// A server's name and parsed options; a parse error (options edited behind the
/// validator's back) is reported naming the server.
fn server_of(server_id: pg_sys::Oid) -> (String, ServerKind) {
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

/// Resolves what a scan of one AWS connection server needs: its options and the user
/// mapping's. With `enforce_policy`, a user who is not a superuser may use the database
/// server's own (ambient) credentials only when a superuser set `ambient_credentials` on
/// their mapping. Errors name the server.
fn try_scan_config(
    server_id: pg_sys::Oid,
    server_name: &str,
    server: ServerOptions,
    user_id: pg_sys::Oid,
    enforce_policy: bool,
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
    if enforce_policy
        && settings.uses_ambient_credentials()
        && !mapping.ambient_credentials
        && !is_superuser
    {
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
    Ok(ScanConfig {
        server_name: server_name.to_string(),
        settings,
        sources,
    })
}

/// Every aws_sts server (of the wrapper `fdw_id`), for an aggregator to choose from, with
/// the options of those that are AWS connections.
fn aws_sts_servers(fdw_id: pg_sys::Oid) -> Vec<Candidate<(pg_sys::Oid, Option<ServerOptions>)>> {
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

/// The servers an aggregator scan calls: the aws_sts servers matching its patterns, less
/// those the query's `sp_connection_name` quals exclude. The planner counts them; the
/// executor resolves each.
fn member_servers(
    aggregator_id: pg_sys::Oid,
    options: &AggregatorOptions,
    pinned_names: Option<&[String]>,
) -> Vec<Candidate<(pg_sys::Oid, Option<ServerOptions>)>> {
    // SAFETY: GetForeignServer errors out itself for an unknown server.
    let fdw_id = unsafe { (*pg_sys::GetForeignServer(aggregator_id)).fdwid };
    aggregate::select_members(&aws_sts_servers(fdw_id), &options.patterns, pinned_names)
}

/// The members an aggregator scan calls, each resolved for `user_id` (or the error that
/// member gives: no USAGE on it, no keys, ...).
fn aggregator_members(
    aggregator_id: pg_sys::Oid,
    options: &AggregatorOptions,
    pinned: &Pinned,
    user_id: pg_sys::Oid,
    enforce_policy: bool,
) -> Vec<Result<ScanConfig, FdwError>> {
    let now = Instant::now();
    member_servers(aggregator_id, options, pinned.connection_names.as_deref())
        .into_iter()
        .filter_map(|member| {
            let (server_id, server) = member.id;
            // SAFETY: an ACL check of an existing server for an existing role.
            let allowed = unsafe {
                pg_sys::pg_foreign_server_aclcheck(
                    server_id,
                    user_id,
                    pg_sys::ACL_USAGE as pg_sys::AclMode,
                ) == pg_sys::AclResult::ACLCHECK_OK
            };
            if enforce_policy && !allowed {
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
            server.map(|server| {
                try_scan_config(server_id, &member.name, server, user_id, enforce_policy)
            })
        })
        // account_id quals: leave out members whose account is known not to match.
        .filter(|member| match member {
            Ok(config) => {
                let cached_account = IDENTITY_CACHE.with(|cache| {
                    cache
                        .borrow()
                        .get(&config.settings, now)
                        .map(|identity| identity.account_id.clone())
                });
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
struct ScanPlan {
    server_name: String,
    members: Vec<Result<ScanConfig, FdwError>>,
    concurrency: usize,
    on_error: OnError,
    aggregator: bool,
}

fn scan_plan(
    server_id: pg_sys::Oid,
    pinned: &Pinned,
    user_id: pg_sys::Oid,
    enforce_policy: bool,
) -> ScanPlan {
    let (server_name, kind) = server_of(server_id);
    match kind {
        ServerKind::Connection(server) => {
            let config = try_scan_config(server_id, &server_name, server, user_id, enforce_policy);
            if enforce_policy {
                if let Err(error) = &config {
                    report(error.clone());
                }
            }
            ScanPlan {
                server_name,
                members: vec![config],
                concurrency: 1,
                on_error: OnError::Fail,
                aggregator: false,
            }
        }
        ServerKind::Aggregator(options) => ScanPlan {
            members: aggregator_members(server_id, &options, pinned, user_id, enforce_policy),
            server_name,
            concurrency: options.concurrency,
            on_error: options.on_error,
            aggregator: true,
        },
    }
}

/// The user whose mapping a scan uses: the view owner for a scan through a view, else the
/// current user (as postgres_fdw does with the range table entry's checkAsUser).
fn scan_user(node: *const pg_sys::ForeignScanState) -> pg_sys::Oid {
    // SAFETY: `node` is the scan being begun or explained; its plan's scanrelid indexes the
    // executor's range table (exec_rt_fetch).
    unsafe {
        let plan = (*node).ss.ps.plan as *const pg_sys::ForeignScan;
        let range_table =
            pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*(*node).ss.ps.state).es_range_table);
        let check_as_user = ((*plan).scan.scanrelid as usize)
            .checked_sub(1)
            .and_then(|index| range_table.get_ptr(index))
            .map_or(pg_sys::InvalidOid, |entry| (*entry).checkAsUser);
        if check_as_user != pg_sys::InvalidOid {
            check_as_user
        } else {
            pg_sys::GetUserId()
        }
    }
}

fn interrupt_pending() -> bool {
    // SAFETY: plain reads of Postgres' interrupt flags on the backend's own thread, the same
    // test CHECK_FOR_INTERRUPTS makes (INTERRUPTS_PENDING_CONDITION and
    // INTERRUPTS_CAN_BE_PROCESSED), so a held-off interrupt never restarts the call in a loop.
    unsafe {
        ptr::read_volatile(&raw const pg_sys::InterruptPending) != 0
            && ptr::read_volatile(&raw const pg_sys::InterruptHoldoffCount) == 0
            && ptr::read_volatile(&raw const pg_sys::QueryCancelHoldoffCount) == 0
            && ptr::read_volatile(&raw const pg_sys::CritSectionCount) == 0
    }
}

/// Runs on the runtime's helper threads: Postgres' signal handlers must only ever run on
/// the backend's own thread.
fn block_signals_on_this_thread() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, ptr::null_mut());
    }
}

/// Runs a future on the backend's runtime; a query cancel or statement_timeout drops it and
/// ends the query within INTERRUPT_POLL_INTERVAL. An interrupt that turns out not to cancel
/// the query (e.g. a config reload) starts the future again.
fn block_on<F: std::future::Future>(make_future: impl Fn() -> F) -> F::Output {
    loop {
        match runtime::block_on_interruptible(
            make_future(),
            interrupt_pending,
            block_signals_on_this_thread,
        ) {
            Ok(output) => return output,
            Err(Interrupted) => {
                pgrx::check_for_interrupts!();
            }
        }
    }
}

/// What a scan did, for EXPLAIN ANALYZE.
#[derive(Default)]
struct ScanStats {
    cache_hits: u64,
    aws_calls: u64,
    aws_time: Duration,
}

fn warn(error: &FdwError) {
    let mut report = ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        error.message.clone(),
        "aws_sts",
    );
    if let Some(hint) = &error.hint {
        report = report.set_hint(format!(
            "{hint} (on_error 'skip' left this server's row out)"
        ));
    }
    report.report(PgLogLevel::WARNING);
}

/// Every member's identity: from the backend's cache when fresh, else from STS, called
/// `concurrency` at a time (and then cached). A member's error fails the scan, or with
/// on_error 'skip' leaves its row out with a WARNING.
fn fetch_rows(plan: &ScanPlan, stats: &mut ScanStats) -> Vec<(String, CallerIdentity)> {
    let now = Instant::now();
    let mut outcomes: Vec<Option<Result<CallerIdentity, FdwError>>> =
        vec![None; plan.members.len()];
    let mut pending: Vec<(usize, &ScanConfig)> = Vec::new();
    for (index, member) in plan.members.iter().enumerate() {
        match member {
            Err(error) => outcomes[index] = Some(Err(error.clone())),
            Ok(config) => match IDENTITY_CACHE
                .with(|cache| cache.borrow().get(&config.settings, now).cloned())
            {
                Some(identity) => {
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
        let answers: HashMap<&ConnectionSettings, Result<sts::Answer, FdwError>> = block_on(|| {
            futures_util::stream::iter(distinct.iter().map(|&settings| async move {
                (settings, sts::get_caller_identity(settings).await)
            }))
            .buffer_unordered(plan.concurrency)
            .collect::<HashMap<_, _>>()
        });
        stats.aws_calls += distinct.len() as u64;
        stats.aws_time += started.elapsed();
        let answers = pending.iter().filter_map(|&(index, config)| {
            answers
                .get(&config.settings)
                .map(|answer| (index, answer.clone()))
        });
        for (index, answer) in answers {
            let Ok(config) = &plan.members[index] else {
                continue;
            };
            outcomes[index] = Some(match answer {
                Ok(answer) => {
                    IDENTITY_CACHE.with(|cache| {
                        cache.borrow_mut().put(
                            &config.settings,
                            answer.identity.clone(),
                            answer.credentials_expiry,
                            &config.sources,
                            Instant::now(),
                            SystemTime::now(),
                        )
                    });
                    Ok(answer.identity)
                }
                Err(error) if config.settings.server.ignores(&error) => {
                    // ignore_error_codes: this server contributes no row, as in Steampipe.
                    pgrx::debug1!(
                        "aws_sts server \"{}\": ignoring {} (ignore_error_codes)",
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
struct ScanState {
    plan: ScanPlan,
    /// For each attribute of the foreign table, what it reads; None for dropped ones.
    attributes: Rc<Vec<Option<Attribute>>>,
    /// One row per member server that answered, fetched on the first IterateForeignScan.
    rows: Option<Vec<(String, CallerIdentity)>>,
    next_row: usize,
    stats: ScanStats,
}

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

fn pinned_from_private(private: *mut pg_sys::List) -> Pinned {
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
unsafe extern "C-unwind" fn get_foreign_rel_size(
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
unsafe extern "C-unwind" fn get_foreign_paths(
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
unsafe extern "C-unwind" fn get_foreign_plan(
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

/// What each attribute of a foreign table reads (its own name, or `column_name`) and how its
/// value is made; an unknown column is an error naming it.
fn table_attributes(
    relation_id: pg_sys::Oid,
    tupdesc: pg_sys::TupleDesc,
    table_name: &str,
    server_name: &str,
) -> Vec<Option<Attribute>> {
    // SAFETY: the descriptor's attributes are read by index below its natts.
    let natts = unsafe { (*tupdesc).natts } as usize;
    (0..natts)
        .map(|index| {
            // SAFETY: index < natts.
            let attribute = unsafe { (*tupdesc).attrs.as_slice(natts)[index] };
            if attribute.attisdropped {
                return None;
            }
            let attribute_name = cstr_to_string(attribute.attname.data.as_ptr());
            // SAFETY: options of an existing column of this foreign table.
            let column_options = def_elems(unsafe { pg_sys::GetForeignColumnOptions(relation_id, attribute.attnum) });
            let column_options = options::parse_column(&column_options)
                .unwrap_or_else(|error| report(error.for_server(server_name)));
            let wanted = column_options.column_name.unwrap_or(attribute_name);
            let Some(column) = Column::by_name(&wanted) else {
                report(
                    FdwError::new(
                        SqlState::InvalidColumnName,
                        format!("foreign table \"{table_name}\" has column \"{wanted}\", which aws_sts_caller_identity does not have"),
                    )
                    .with_hint(format!(
                        "Valid columns are: {}. Rename the column, or map it with OPTIONS (column_name '...').",
                        row::column_names().join(", ")
                    ))
                    .for_server(server_name),
                )
            };
            let kind = match attribute.atttypid {
                pg_sys::TEXTOID => AttributeKind::Text,
                pg_sys::JSONBOID => AttributeKind::Jsonb,
                type_id => AttributeKind::Other {
                    type_id,
                    typmod: attribute.atttypmod,
                },
            };
            Some(Attribute { column, kind })
        })
        .collect()
}

/// A value as a datum of its attribute's type, in the current memory context.
fn datum_of(kind: AttributeKind, text: &str, server_name: &str) -> pg_sys::Datum {
    if text.contains('\0') {
        // No Postgres text value can hold one.
        report(
            FdwError::new(
                SqlState::UnableToCreateReply,
                "the AWS answer contains a NUL character",
            )
            .for_server(server_name),
        );
    }
    let through_input_function = |type_id: pg_sys::Oid, typmod: i32| {
        let text = CString::new(text).unwrap_or_default();
        let mut input = pg_sys::InvalidOid;
        let mut io_param = pg_sys::InvalidOid;
        // SAFETY: the type's input function, called as COPY FROM does, on a C string.
        unsafe {
            pg_sys::getTypeInputInfo(type_id, &mut input, &mut io_param);
            pg_sys::OidInputFunctionCall(input, text.as_ptr().cast_mut(), io_param, typmod)
        }
    };
    match kind {
        // SAFETY: copies `text` into a new text datum.
        AttributeKind::Text => unsafe {
            pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
                text.as_ptr().cast(),
                text.len() as c_int,
            ))
        },
        AttributeKind::Jsonb => {
            let cached = JSONB_VALUES.with(|values| values.borrow().get(text).cloned());
            let bytes = cached.unwrap_or_else(|| {
                let datum = through_input_function(pg_sys::JSONBOID, -1);
                // SAFETY: jsonb_in returns a plain varlena; its bytes are copied out.
                let bytes = unsafe {
                    let pointer = datum.cast_mut_ptr::<pg_sys::varlena>();
                    std::slice::from_raw_parts(pointer.cast::<u8>(), pgrx::varsize_any(pointer))
                        .to_vec()
                };
                JSONB_VALUES.with(|values| {
                    let mut values = values.borrow_mut();
                    if values.len() >= JSONB_VALUES_LIMIT {
                        values.clear();
                    }
                    values.insert(text.to_string(), bytes.clone());
                });
                bytes
            });
            // SAFETY: a palloc'd copy of a complete jsonb varlena.
            unsafe {
                let copy = pg_sys::palloc(bytes.len()).cast::<u8>();
                ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
                pg_sys::Datum::from(copy)
            }
        }
        AttributeKind::Other { type_id, typmod } => through_input_function(type_id, typmod),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: c_int) {
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
    // SAFETY: the plan node of this scan.
    let pinned = pinned_from_private(unsafe {
        (*((*node).ss.ps.plan as *const pg_sys::ForeignScan)).fdw_private
    });
    let plan = scan_plan(server_id, &pinned, scan_user(node), true);
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
    let state = ScanState {
        plan,
        attributes,
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
unsafe extern "C-unwind" fn iterate_foreign_scan(
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
            let value = attribute.and_then(|attribute| {
                attribute
                    .column
                    .value(identity, server_name)
                    .map(|text| datum_of(attribute.kind, &text, server_name))
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
unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: fdw_state is our ScanState (set in BeginForeignScan) or NULL.
    unsafe {
        if let Some(state) = ((*node).fdw_state as *mut ScanState).as_mut() {
            // Identities do not change within a query: a rescan returns the same rows.
            state.next_row = 0;
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn end_foreign_scan(_node: *mut pg_sys::ForeignScanState) {
    // The state is dropped with the executor's memory context, on success and on error alike.
}

#[pg_guard]
unsafe extern "C-unwind" fn explain_foreign_scan(
    node: *mut pg_sys::ForeignScanState,
    es: *mut pg_sys::ExplainState,
) {
    // SAFETY: the plan node of the scan being explained.
    let (server_id, pinned) = unsafe {
        let plan = (*node).ss.ps.plan as *const pg_sys::ForeignScan;
        ((*plan).fs_server, pinned_from_private((*plan).fdw_private))
    };
    // Shows what a scan would do without doing it: no AWS call, no secret.
    let plan = scan_plan(server_id, &pinned, scan_user(node), false);
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
        properties.push((
            "AWS Servers",
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            },
        ));
        properties.push(("AWS Concurrency", plan.concurrency.to_string()));
        let on_error = if plan.on_error == OnError::Skip {
            "skip"
        } else {
            "fail"
        };
        properties.push(("AWS On Error", on_error.to_string()));
    } else if let Some(config) = configs.first() {
        let server = &config.settings.server;
        let region = block_on(|| sts::resolve_region(server));
        properties.push(("AWS Server", config.server_name.clone()));
        properties.push(("AWS Region", region.to_string()));
        properties.push((
            "AWS Endpoint",
            sts::endpoint_for_messages(server, region.as_ref()),
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
    // SAFETY: the ExplainState of this EXPLAIN; fdw_state is our ScanState once the scan ran.
    let (analyze, timing, state) = unsafe {
        (
            (*es).analyze,
            (*es).timing,
            ((*node).fdw_state as *const ScanState).as_ref(),
        )
    };
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
            let now = Instant::now();
            let lookups: Vec<Lookup> = IDENTITY_CACHE.with(|cache| {
                configs
                    .iter()
                    .map(|config| cache.borrow().lookup(&config.settings, now))
                    .collect()
            });
            let hits = lookups
                .iter()
                .filter(|lookup| matches!(lookup, Lookup::Hit { .. }))
                .count();
            let cache = match lookups.as_slice() {
                [Lookup::Disabled] => "off".to_string(),
                [Lookup::Miss] => "miss (the scan will call STS)".to_string(),
                [Lookup::Hit { .. }] => "hit".to_string(),
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

#[pg_guard]
unsafe extern "C-unwind" fn import_foreign_schema(
    _stmt: *mut pg_sys::ImportForeignSchemaStmt,
    server_id: pg_sys::Oid,
) -> *mut pg_sys::List {
    // Whatever the remote schema name, the server has one table. Postgres itself applies
    // LIMIT TO and EXCEPT to what is returned here.
    // SAFETY: GetForeignServer errors out itself for an unknown server.
    let server_name = unsafe { cstr_to_string((*pg_sys::GetForeignServer(server_id)).servername) };
    let sql = CString::new(row::create_table_sql(&server_name)).unwrap_or_else(|_| {
        report(FdwError::new(
            SqlState::FdwError,
            "the server name contains a NUL character",
        ))
    });
    // SAFETY: a one-element List holding a palloc'd copy of the statement.
    unsafe { pg_sys::lappend(ptr::null_mut(), pg_sys::pstrdup(sql.as_ptr()).cast()) }
}
