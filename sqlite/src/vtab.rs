//! The virtual table `aws_sts_caller_identity`: eponymous (usable without CREATE VIRTUAL
//! TABLE, with the connection's configuration) and creatable with module arguments
//! (`CREATE VIRTUAL TABLE prod USING aws_sts_caller_identity(config='...',
//! connection_name='prod')`). One row per scan; every value comes from `aws_sts::row`.

use std::borrow::Cow;
use std::ffi::{c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use aws_sts::row::ALL_COLUMNS;
use aws_sts::sts::ConnectionSettings;
use rusqlite::vtab::{
    parameter, sqlite3_vtab, sqlite3_vtab_cursor, Context, CreateVTab, Filters, IndexInfo, VTab,
    VTabConnection, VTabCursor, VTabKind,
};
use rusqlite::{Error, Result};

use crate::settings::{self, SharedState, DEFAULT_CONNECTION_NAME};
use crate::words;

pub const MODULE_NAME: &str = aws_sts::row::TABLE_NAME;

/// The module argument that names the connection (`sp_connection_name`); every other
/// argument is a server option for the core's parser.
pub(crate) const CONNECTION_NAME_ARGUMENT: &str = "connection_name";

/// Runs a callback body, turning a panic into an SQLite error: a panic must never unwind
/// into SQLite's C frames (it would abort the host process).
fn guarded<T>(body: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(Error::ModuleError(format!(
            "{MODULE_NAME}: internal error: {why}"
        )))
    })
}

/// `CREATE TABLE x(...)` for sqlite3_declare_vtab: the core's columns, in the core's order,
/// all TEXT (akas, sp_ctx and _ctx hold JSON text, as in Steampipe's SQLite extensions).
fn declaration() -> Result<CString> {
    let columns: Vec<String> = ALL_COLUMNS
        .iter()
        .map(|column| format!("\"{}\" TEXT", column.name()))
        .collect();
    CString::new(format!("CREATE TABLE x({})", columns.join(", ")))
        .map_err(|_| Error::ModuleError(format!("{MODULE_NAME}: a column name holds a NUL")))
}

#[repr(C)]
pub struct CallerIdentityTable {
    /// SQLite's part of the object; must come first.
    base: sqlite3_vtab,
    state: SharedState,
    /// The table's own settings when CREATE VIRTUAL TABLE gave options; `None` follows the
    /// connection's `aws_sts_configure`.
    own_settings: Option<ConnectionSettings>,
    connection_name: String,
}

/// What CREATE VIRTUAL TABLE's module arguments say.
#[derive(Debug, Default, PartialEq, Eq)]
struct TableArguments {
    connection_name: Option<String>,
    /// Everything else: server options for the core's parser (`config` among them).
    options: Vec<(String, String)>,
}

/// Splits module arguments into the connection name and the server options.
fn parse_arguments(arguments: &[&[u8]]) -> Result<TableArguments> {
    let mut connection_name = None;
    let mut options = Vec::new();
    for argument in arguments {
        let (name, value) = parameter(argument).map_err(|_| {
            Error::ModuleError(format!(
                "{MODULE_NAME}: module arguments are name='value' pairs, such as config='profile = \"dev\"' \
                 or connection_name='prod'"
            ))
        })?;
        if name == CONNECTION_NAME_ARGUMENT {
            if value.trim().is_empty() {
                return Err(Error::ModuleError(format!(
                    "{MODULE_NAME}: connection_name must not be empty"
                )));
            }
            connection_name = Some(value.into_owned());
        } else {
            options.push((name.to_string(), value.into_owned()));
        }
    }
    Ok(TableArguments {
        connection_name,
        options,
    })
}

// SAFETY: CallerIdentityTable is #[repr(C)] with sqlite3_vtab as its first field, as the
// trait requires.
unsafe impl<'vtab> VTab<'vtab> for CallerIdentityTable {
    type Aux = SharedState;
    type Cursor = CallerIdentityCursor;

    fn connect(
        _db: &mut VTabConnection,
        aux: Option<&SharedState>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        arguments: &[&[u8]],
    ) -> Result<(Cow<'static, CStr>, Self)> {
        guarded(|| {
            let state = aux.cloned().ok_or_else(|| {
                Error::ModuleError(format!("{MODULE_NAME}: registered without its state"))
            })?;
            let TableArguments {
                connection_name,
                options,
            } = parse_arguments(arguments)?;
            let own_settings = if options.is_empty() {
                None
            } else {
                let parsed = settings::settings_from_options(&options).map_err(|error| {
                    Error::ModuleError(format!("{MODULE_NAME}: {}", words::error_text(&error)))
                })?;
                Some(parsed)
            };
            let table = CallerIdentityTable {
                base: sqlite3_vtab::default(),
                state,
                own_settings,
                connection_name: connection_name
                    .unwrap_or_else(|| DEFAULT_CONNECTION_NAME.to_string()),
            };
            Ok((Cow::Owned(declaration()?), table))
        })
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<bool> {
        guarded(|| {
            // One row, whatever the constraints: SQLite checks them itself. A low cost keeps
            // the planner from preferring to rescan this table for each row of a join (the
            // cache would answer, but one scan is cleaner).
            info.set_estimated_cost(1.0);
            info.set_estimated_rows(1);
            Ok(true)
        })
    }

    fn open(&'vtab mut self) -> Result<CallerIdentityCursor> {
        guarded(|| {
            Ok(CallerIdentityCursor {
                base: sqlite3_vtab_cursor::default(),
                state: self.state.clone(),
                own_settings: self.own_settings.clone(),
                connection_name: self.connection_name.clone(),
                row: None,
            })
        })
    }
}

impl CreateVTab<'_> for CallerIdentityTable {
    // Eponymous: `select ... from aws_sts_caller_identity` works right after `.load`, and
    // CREATE VIRTUAL TABLE ... USING aws_sts_caller_identity(...) makes configured copies.
    const KIND: VTabKind = VTabKind::Eponymous;
}

#[repr(C)]
pub struct CallerIdentityCursor {
    /// SQLite's part of the object; must come first.
    base: sqlite3_vtab_cursor,
    state: SharedState,
    own_settings: Option<ConnectionSettings>,
    connection_name: String,
    /// The values of the one row, in ALL_COLUMNS order; `None` once past it (or when an
    /// ignored error left the scan empty).
    row: Option<Vec<Option<String>>>,
}

// SAFETY: CallerIdentityCursor is #[repr(C)] with sqlite3_vtab_cursor as its first field, as
// the trait requires.
unsafe impl VTabCursor for CallerIdentityCursor {
    fn filter(
        &mut self,
        _idx_num: c_int,
        _idx_str: Option<&str>,
        _args: &Filters<'_>,
    ) -> Result<()> {
        guarded(|| {
            let settings = match &self.own_settings {
                Some(settings) => settings.clone(),
                None => settings::configured_settings(&self.state),
            };
            let identity = settings::scan_identity(&self.state, &settings).map_err(|error| {
                Error::ModuleError(format!(
                    "{MODULE_NAME} (connection \"{}\"): {}",
                    self.connection_name,
                    words::error_text(&error)
                ))
            })?;
            self.row = identity.map(|identity| {
                ALL_COLUMNS
                    .iter()
                    .map(|column| column.value(&identity, &self.connection_name))
                    .collect()
            });
            Ok(())
        })
    }

    fn next(&mut self) -> Result<()> {
        self.row = None;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.row.is_none()
    }

    fn column(&self, context: &mut Context, index: c_int) -> Result<()> {
        guarded(|| {
            let value = usize::try_from(index)
                .ok()
                .and_then(|index| self.row.as_ref()?.get(index))
                .ok_or_else(|| {
                    Error::ModuleError(format!("{MODULE_NAME}: no column {index} in this row"))
                })?;
            context.set_result(value)
        })
    }

    fn rowid(&self) -> Result<i64> {
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_lists_the_core_columns_in_order() {
        let declared = declaration().expect("no NUL").into_string().expect("UTF-8");
        assert_eq!(
            declared,
            "CREATE TABLE x(\"arn\" TEXT, \"user_id\" TEXT, \"title\" TEXT, \"akas\" TEXT, \
             \"partition\" TEXT, \"account_id\" TEXT, \"sp_connection_name\" TEXT, \
             \"sp_ctx\" TEXT, \"_ctx\" TEXT)"
        );
    }

    #[test]
    fn arguments_split_into_connection_name_and_options() {
        let arguments: [&[u8]; 2] = [
            b"config='region = \"eu-west-1\"'",
            b" connection_name = 'prod' ",
        ];
        let parsed = parse_arguments(&arguments).expect("valid arguments");
        assert_eq!(
            parsed,
            TableArguments {
                connection_name: Some("prod".to_string()),
                options: vec![("config".to_string(), "region = \"eu-west-1\"".to_string())],
            }
        );
        assert!(parse_arguments(&[b"no_equals_sign"]).is_err());
        assert!(parse_arguments(&[b"connection_name=''"]).is_err());
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let result: Result<()> = guarded(|| panic!("boom"));
        match result {
            Err(Error::ModuleError(text)) => assert!(text.ends_with("internal error: boom")),
            other => panic!("expected a module error, got {other:?}"),
        }
    }
}
