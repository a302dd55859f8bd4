//! aws_sts: AWS STS `GetCallerIdentity` as a Steampipe-compatible foreign table.
//!
//! The modules split as postgres_fdw splits its files: [`options`] (option.c), [`sts`]
//! (connection.c: credentials and the client), [`row`] (the table's columns), [`runtime`]
//! (the embedded async runtime), [`cache`] (the identity cache) and, with the `pg` feature,
//! the Postgres glue in `pg/`, one concern a file. Everything but `pg` is free of Postgres
//! and tested with plain `cargo test`.

pub mod aggregate;
pub mod cache;
pub mod config;
pub mod error;
pub mod like;
pub mod options;
pub mod row;
pub mod runtime;
pub mod shared;
pub mod sts;

#[cfg(feature = "pg")]
mod pg;

#[cfg(feature = "pg")]
::pgrx::pg_module_magic!();
