//! The Postgres glue: the wrapper's SQL, the handler and the validator; all `unsafe` in
//! aws_sts lives under this folder, and everything it decides is delegated to the
//! Postgres-free core.

mod catalog;
mod compat;
mod explain;
mod files;
mod identities;
mod import;
mod interrupts;
mod pins;
mod plan;
mod report;
mod resolve;
mod scan;
mod shmem;
mod tuple;
mod views;

use std::ptr;

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::error::{FdwError, SqlState};
use crate::options::{self, Catalog};
use crate::row::{self, Column};
use crate::sts;

use catalog::{def_elems, forget_catalog_state};
use report::report;

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

// Every function and the event trigger say what they are for in \df+ and \dy+ (added in
// 0.2.0: sql/aws_sts--0.1.0--0.2.0.sql has the same statements for upgrades).
extension_sql!(
    r#"
COMMENT ON FUNCTION aws_sts_fdw_handler() IS 'Handler of the aws_sts foreign data wrapper: plans and runs scans of aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_fdw_validator(text[], oid) IS 'Validator of the aws_sts foreign data wrapper: checks the options of its servers, user mappings and foreign tables';
COMMENT ON FUNCTION aws_sts_table_comment() IS 'The comment IMPORT FOREIGN SCHEMA puts on aws_sts_caller_identity';
COMMENT ON FUNCTION aws_sts_column_comment(text) IS 'The comment of a column of aws_sts_caller_identity, NULL for an unknown column name';
COMMENT ON FUNCTION aws_sts_clear_cache() IS 'Empties this backend''s identity cache (and, with shared_preload_libraries, this database''s shared entries) and drops its STS clients and the credentials they hold; returns how many identities were cached';
COMMENT ON FUNCTION aws_sts_comment_imported_tables() IS 'Event trigger function: comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';
COMMENT ON EVENT TRIGGER aws_sts_comment_imported_tables IS 'Comments the tables and columns IMPORT FOREIGN SCHEMA creates for aws_sts servers';
"#,
    name = "comments",
    finalize,
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

/// Empties this backend's identity cache and, when aws_sts is preloaded, this database's
/// entries of the shared one, and drops the backend's STS clients (and the credentials they
/// hold); returns how many cached identities there were.
#[pg_extern(volatile, parallel_unsafe)]
fn aws_sts_clear_cache() -> i64 {
    forget_everything() as i64
}

fn forget_everything() -> usize {
    sts::clear_clients();
    forget_catalog_state();
    identities::clear()
}

/// Loads with the library: the shared cache's GUC, and with shared_preload_libraries its
/// shared memory and the invalidation callbacks that keep it true in every backend.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    shmem::init();
    // SAFETY: read in _PG_init, single-threaded.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        catalog::register_invalidation();
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
    // The error context stack as it was, when this statement may hold secrets.
    let mut saved_context = None;
    if options::may_carry_secrets(&options) {
        // Postgres logs a failing (or warned-about) statement's text, which here holds
        // keys: keep the statement out of the server log for the rest of this command, and
        // out of the CONTEXT lines that PL/pgSQL (DO, EXECUTE, functions) adds to our
        // messages.
        // SAFETY: debug_query_string is only read when a message is logged; Postgres sets
        // it again for the next statement. error_context_stack is put back below after
        // warnings; an ERROR's unwinding restores it (PG_CATCH, or the top level).
        unsafe {
            pg_sys::debug_query_string = ptr::null();
            saved_context = Some(pg_sys::error_context_stack);
            pg_sys::error_context_stack = ptr::null_mut();
        }
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
    if let Some(context) = saved_context {
        // SAFETY: puts back the stack saved above; nothing was pushed on it since.
        unsafe { pg_sys::error_context_stack = context };
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
        routine.GetForeignRelSize = Some(plan::get_foreign_rel_size);
        routine.GetForeignPaths = Some(plan::get_foreign_paths);
        routine.GetForeignPlan = Some(plan::get_foreign_plan);
        routine.BeginForeignScan = Some(scan::begin_foreign_scan);
        routine.IterateForeignScan = Some(scan::iterate_foreign_scan);
        routine.ReScanForeignScan = Some(scan::rescan_foreign_scan);
        routine.EndForeignScan = Some(scan::end_foreign_scan);
        routine.ExplainForeignScan = Some(explain::explain_foreign_scan);
        routine.ImportForeignSchema = Some(import::import_foreign_schema);
        routine.into_pg()
    };
    pg_sys::Datum::from(routine)
}
