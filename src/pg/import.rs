//! IMPORT FOREIGN SCHEMA: every server has the one table, aws_sts_caller_identity.

use std::ffi::CString;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{FdwError, SqlState};
use crate::row;

use super::catalog::cstr_to_string;
use super::report::report;

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn import_foreign_schema(
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
