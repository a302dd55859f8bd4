//! Row building: what each attribute of a foreign table reads, and a value as a datum of
//! the attribute's type.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::rc::Rc;

use pgrx::pg_sys;

use crate::error::{FdwError, SqlState};
use crate::options;
use crate::row::{self, Column};

use super::catalog::{cstr_to_string, def_elems};
use super::compat;
use super::report::report;

thread_local! {
    /// jsonb values by their text (akas, sp_ctx, _ctx repeat from scan to scan): parsed once,
    /// copied into each row.
    static JSONB_VALUES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// Enough distinct jsonb values for many servers' rows; past it the map starts over.
const JSONB_VALUES_LIMIT: usize = 4096;

/// How a foreign table attribute gets its value.
#[derive(Debug, Clone)]
pub(super) struct Attribute {
    pub(super) column: Column,
    pub(super) kind: AttributeKind,
}

#[derive(Debug, Clone)]
pub(super) enum AttributeKind {
    Text,
    Jsonb,
    /// Any other type: through its input function, as COPY would; a value it rejects is
    /// reported with `context` (the column and the table) as the CONTEXT line.
    Other {
        type_id: pg_sys::Oid,
        typmod: i32,
        context: Rc<CString>,
    },
}

unsafe extern "C-unwind" {
    // Variadic, so not in pgrx's bindings; the errcontext() macro's second half.
    fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
}

/// Adds the CONTEXT line naming the column and table to an error raised while converting a
/// value, as postgres_fdw's conversion_error_callback does.
unsafe extern "C-unwind" fn conversion_context(arg: *mut c_void) {
    // SAFETY: `arg` is the palloc'd C string ConversionContext::push pointed it at.
    unsafe { errcontext_msg(c"%s".as_ptr(), arg as *const c_char) };
}

/// An error context callback on Postgres' stack while a value is converted. pgrx turns the
/// conversion's ERROR into a panic, keeps none of its CONTEXT, and raises it again where the
/// panic ends: so on a panic the callback stays pushed (in palloc'd memory, alive until the
/// error is reported) for that raise to name the column; the error's unwinding then restores
/// the stack (PG_CATCH, or the top level). Otherwise it is popped on drop.
struct ConversionContext {
    callback: *mut pg_sys::ErrorContextCallback,
}

impl ConversionContext {
    fn push(context: &CString) -> ConversionContext {
        // SAFETY: palloc'd in the current (per-query) memory context, which outlives the
        // error's report; error_context_stack is the backend's.
        unsafe {
            let callback = pg_sys::palloc0(std::mem::size_of::<pg_sys::ErrorContextCallback>())
                .cast::<pg_sys::ErrorContextCallback>();
            (*callback).previous = pg_sys::error_context_stack;
            (*callback).callback = Some(conversion_context);
            (*callback).arg = pg_sys::pstrdup(context.as_ptr()).cast();
            pg_sys::error_context_stack = callback;
            ConversionContext { callback }
        }
    }
}

impl Drop for ConversionContext {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: puts back the stack as push found it.
            unsafe { pg_sys::error_context_stack = (*self.callback).previous };
        }
    }
}

/// What each attribute of a foreign table reads (its own name, or `column_name`) and how its
/// value is made; an unknown column is an error naming it.
pub(super) fn table_attributes(
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
            let attribute = unsafe { compat::tuple_desc_attr(tupdesc, index) };
            if attribute.attisdropped {
                return None;
            }
            let attribute_name = cstr_to_string(attribute.attname.data.as_ptr());
            // SAFETY: options of an existing column of this foreign table.
            let column_options = def_elems(unsafe { pg_sys::GetForeignColumnOptions(relation_id, attribute.attnum) });
            let column_options = options::parse_column(&column_options)
                .unwrap_or_else(|error| report(error.for_server(server_name)));
            let wanted = column_options.column_name.unwrap_or_else(|| attribute_name.clone());
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
                    context: Rc::new(
                        CString::new(format!(
                            "column \"{attribute_name}\" of foreign table \"{table_name}\""
                        ))
                        .unwrap_or_default(),
                    ),
                },
            };
            Some(Attribute { column, kind })
        })
        .collect()
}

/// A value as a datum of its attribute's type, in the current memory context.
pub(super) fn datum_of(kind: &AttributeKind, text: &str, server_name: &str) -> pg_sys::Datum {
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
        AttributeKind::Other {
            type_id,
            typmod,
            context,
        } => {
            let _context = ConversionContext::push(context);
            through_input_function(*type_id, *typmod)
        }
    }
}
