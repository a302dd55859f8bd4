//! FdwError raised as a Postgres ERROR or WARNING, with its SQLSTATE, detail and hint.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::error::{FdwError, SqlState};

/// Raises `error` as a Postgres ERROR; never returns.
pub(super) fn report(error: FdwError) -> ! {
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
    // SAFETY: superuser() only reads the current user's role from the syscache.
    let privileged_reader = !error.detail_is_privileged || unsafe { pg_sys::superuser() };
    let detail = match error.detail {
        // What the database server's own credential_process printed is its business.
        Some(_) if !privileged_reader => Some(
            "The output of the database server's credential process is shown to superusers only."
                .to_string(),
        ),
        detail => detail,
    };
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

pub(super) fn warn(error: &FdwError) {
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
