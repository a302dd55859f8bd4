//! aws_sts for SQLite: a loadable extension that registers the virtual table
//! `aws_sts_caller_identity` (Steampipe's columns) and the configuration function
//! `aws_sts_configure('HCL config')` (also as Steampipe's `steampipe_configure_aws`), on the
//! same core as the Postgres extension: its option parser, STS client, runtime, cache and rows.
//!
//! ```text
//! sqlite> .load target/sqlite/aws_sts
//! sqlite> select arn, user_id, title, account_id, akas from aws_sts_caller_identity;
//! ```

mod settings;
mod vtab;
mod words;

use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::vtab::Module;
use rusqlite::{ffi, Connection, Error, Result};

use settings::SharedState;
use vtab::CallerIdentityTable;

// A const, promoted to a static by `&MODULE`: SQLite keeps the pointer for the connection's life.
const MODULE: Module<'static, CallerIdentityTable> = Module::read_only_module();

/// The configuration function's names: ours, and the one Steampipe's AWS SQLite extension
/// documents, so Steampipe's instructions work unchanged.
const CONFIGURE_FUNCTIONS: [&str; 2] = ["aws_sts_configure", "steampipe_configure_aws"];

/// The entry point SQLite derives from `aws_sts.so` (`.load target/sqlite/aws_sts`).
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_awssts_init(
    db: *mut ffi::sqlite3,
    error_message: *mut *mut c_char,
    api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: the arguments come straight from SQLite's loader, as extension_init2 expects.
    unsafe { Connection::extension_init2(db, error_message, api, register) }
}

/// The entry point SQLite derives from the build output's name, `libaws_sts_sqlite.so`.
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_awsstssqlite_init(
    db: *mut ffi::sqlite3,
    error_message: *mut *mut c_char,
    api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: as above, the loader's own arguments.
    unsafe { sqlite3_awssts_init(db, error_message, api) }
}

/// Registers the module and the configuration functions on one connection; they share that
/// connection's state (configuration and identity cache).
fn register(db: Connection) -> Result<bool> {
    catch_unwind(AssertUnwindSafe(|| {
        let state = settings::new_shared_state();
        db.create_module(vtab::MODULE_NAME, &MODULE, Some(state.clone()))?;
        for name in CONFIGURE_FUNCTIONS {
            let state = state.clone();
            db.create_scalar_function(
                name,
                1,
                // Direct only: a view or trigger must not change credentials behind the
                // user's back.
                FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
                move |context| configure(&state, context),
            )?;
        }
        // Stay loaded after this connection closes: the core keeps a runtime and clients in
        // thread-locals whose destructors live in this library.
        Ok(true)
    }))
    .unwrap_or_else(|_| {
        Err(Error::ModuleError(
            "aws_sts: internal error while registering".to_string(),
        ))
    })
}

/// `aws_sts_configure(config)`: validates a Steampipe AWS connection config (HCL) and makes it
/// the connection's configuration; NULL returns to the defaults (environment credentials).
/// Returns a one-line summary without secrets.
fn configure(state: &SharedState, context: &Context<'_>) -> Result<String> {
    let config: Option<String> = context.get(0)?;
    let Some(config) = config else {
        settings::configure(state, None);
        return Ok(settings::describe(&settings::default_settings()));
    };
    let parsed = settings::settings_from_config(&config).map_err(|error| {
        Error::UserFunctionError(format!("aws_sts_configure: {}", words::error_text(&error)).into())
    })?;
    let summary = settings::describe(&parsed);
    settings::configure(state, Some(parsed));
    Ok(summary)
}
