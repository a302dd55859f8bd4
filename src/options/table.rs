//! The static table of valid options: where each may appear and whether it is a secret.

use super::Catalog;
use crate::error::{FdwError, SqlState};

/// One valid option: where it may appear and whether its value is a secret
/// (a secret value is never echoed in any message).
pub(super) struct OptionSpec {
    pub(super) name: &'static str,
    catalog: Catalog,
    secret: bool,
}

/// The static table of valid options, as postgres_fdw and file_fdw keep one.
pub(super) const VALID_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "region",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "endpoint_url",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "profile",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "connect_timeout",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "timeout",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "max_error_retry_attempts",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "min_error_retry_delay",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "cache",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "cache_ttl",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "config",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "default_region",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "regions",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "ignore_error_codes",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "ignore_error_messages",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "access_key",
        catalog: Catalog::Server,
        secret: true,
    },
    OptionSpec {
        name: "secret_key",
        catalog: Catalog::Server,
        secret: true,
    },
    OptionSpec {
        name: "session_token",
        catalog: Catalog::Server,
        secret: true,
    },
    OptionSpec {
        name: "role_arn",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "role_session_name",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "external_id",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "duration_seconds",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "instance_metadata",
        catalog: Catalog::Server,
        secret: false,
    },
    // How requests leave the database server: the CAs trusted, the HTTP proxy.
    OptionSpec {
        name: "ca_bundle",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "proxy_url",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "use_fips_endpoint",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "use_dualstack_endpoint",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "type",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "connections",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "concurrency",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "on_error",
        catalog: Catalog::Server,
        secret: false,
    },
    OptionSpec {
        name: "access_key",
        catalog: Catalog::UserMapping,
        secret: true,
    },
    OptionSpec {
        name: "secret_key",
        catalog: Catalog::UserMapping,
        secret: true,
    },
    OptionSpec {
        name: "session_token",
        catalog: Catalog::UserMapping,
        secret: true,
    },
    OptionSpec {
        name: "ambient_credentials",
        catalog: Catalog::UserMapping,
        secret: false,
    },
    OptionSpec {
        name: "column_name",
        catalog: Catalog::Column,
        secret: false,
    },
];

pub(super) fn check_known(catalog: Catalog, name: &str) -> Result<(), FdwError> {
    if VALID_OPTIONS
        .iter()
        .any(|spec| spec.catalog == catalog && spec.name == name)
    {
        return Ok(());
    }
    let valid: Vec<&str> = VALID_OPTIONS
        .iter()
        .filter(|spec| spec.catalog == catalog)
        .map(|spec| spec.name)
        .collect();
    let hint = match VALID_OPTIONS.iter().find(|spec| spec.name == name) {
        Some(spec) => format!(
            "\"{name}\" is an option of a {}, not of a {}.",
            spec.catalog.describe(),
            catalog.describe()
        ),
        None if valid.is_empty() => {
            format!("A {} of aws_sts takes no options.", catalog.describe())
        }
        None => format!(
            "Valid options for a {} are: {}.",
            catalog.describe(),
            valid.join(", ")
        ),
    };
    Err(FdwError::new(
        SqlState::InvalidOptionName,
        format!("invalid option \"{name}\""),
    )
    .with_hint(hint))
}

/// Whether any catalog takes an option of this name.
pub(super) fn is_option_name(name: &str) -> bool {
    VALID_OPTIONS.iter().any(|spec| spec.name == name)
}

pub(super) fn is_secret(name: &str) -> bool {
    VALID_OPTIONS
        .iter()
        .any(|spec| spec.name == name && spec.secret)
}

/// The options only an aggregator server takes.
pub const AGGREGATOR_OPTIONS: [&str; 4] = ["type", "connections", "concurrency", "on_error"];

/// The options of a server that is one AWS connection (not an aggregator), in the table's
/// order: what a front end without aggregators or user mappings takes.
pub fn connection_option_names() -> Vec<&'static str> {
    VALID_OPTIONS
        .iter()
        .filter(|spec| spec.catalog == Catalog::Server && !AGGREGATOR_OPTIONS.contains(&spec.name))
        .map(|spec| spec.name)
        .collect()
}
