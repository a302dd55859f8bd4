//! Option parsing and validation, the counterpart of postgres_fdw's option.c.
//!
//! Pure logic: the FDW validator and the scan both call into this module with plain
//! `(name, value)` pairs, so it is unit-tested without Postgres.

mod parse;
mod patterns;
mod table;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use crate::aggregate::{self, AggregatorOptions};
use crate::error::{FdwError, SqlState};

use table::{check_known, is_option_name, is_secret};

pub use parse::{parse_column, parse_server, parse_server_kind, parse_user_mapping};
pub use patterns::MessagePatterns;
pub use table::{connection_option_names, AGGREGATOR_OPTIONS};
pub use values::parse_duration;

/// The catalog an option list belongs to (the validator's second argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    Wrapper,
    Server,
    UserMapping,
    ForeignTable,
    Column,
}

impl Catalog {
    fn describe(self) -> &'static str {
        match self {
            Catalog::Wrapper => "foreign-data wrapper",
            Catalog::Server => "server",
            Catalog::UserMapping => "user mapping",
            Catalog::ForeignTable => "foreign table",
            Catalog::Column => "foreign table column",
        }
    }
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Steampipe's retry defaults: 9 attempts, the first retry after 25 ms, then exponential
/// backoff with jitter.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 9;
pub const DEFAULT_MIN_RETRY_DELAY: Duration = Duration::from_millis(25);
const MAX_ATTEMPTS: u32 = 100;
/// Steampipe's default cache lifetime.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
const MAX_CACHE_TTL: Duration = Duration::from_secs(86_400);

/// Options of a foreign server: the plain options and the keys of `config`, merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerOptions {
    /// The STS region (`region`, or Steampipe's `default_region`).
    pub region: Option<String>,
    /// Steampipe's `regions`: a last hint for the region when nothing else names one.
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// `use_fips_endpoint` and `use_dualstack_endpoint`; `None` leaves them to the
    /// environment (AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT) and the profile, as
    /// the SDK does.
    pub use_fips: Option<bool>,
    pub use_dual_stack: Option<bool>,
    pub profile: Option<String>,
    /// Keys in the server's own options (superuser only; a user mapping's keys win).
    pub keys: Option<StaticKeys>,
    /// A role to assume with the credentials found, before asking who we are.
    pub assume_role: Option<AssumeRole>,
    pub connect_timeout: Duration,
    /// The whole GetCallerIdentity operation, retries and credential loading included.
    pub timeout: Duration,
    /// Attempts per call, the first included (`max_error_retry_attempts`).
    pub max_attempts: u32,
    /// The backoff before the first retry (`min_error_retry_delay`).
    pub min_retry_delay: Duration,
    /// AWS error codes (glob patterns) that make the table empty instead of failing.
    pub ignore_error_codes: Vec<String>,
    /// Regular expressions over the AWS error message that do the same.
    pub ignore_error_messages: MessagePatterns,
    /// Whether the default chain may ask EC2 instance metadata (bounded to 1 s).
    pub instance_metadata: bool,
    /// Whether answers are cached in the backend (`cache`), and for how long (`cache_ttl`).
    pub cache: bool,
    pub cache_ttl: Duration,
    // How requests leave the database server (src/sts/transport.rs).
    /// A PEM file of CA certificates trusted instead of the system's (`ca_bundle`, absolute,
    /// superuser only: it reads the database server's files); else AWS_CA_BUNDLE.
    pub ca_bundle: Option<String>,
    /// The HTTP proxy every request but instance metadata's and container credentials' goes
    /// through (`proxy_url`, http://host:port), instead of the environment's HTTPS_PROXY,
    /// HTTP_PROXY, ALL_PROXY and NO_PROXY.
    pub proxy_url: Option<String>,
}

/// AssumeRole parameters (`role_arn`, `role_session_name`, `external_id`, `duration_seconds`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration: Option<Duration>,
}

/// The role session name when none is given.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "aws_sts";

impl ServerOptions {
    /// Whether a scan may be answered from the backend's identity cache.
    pub fn caching(&self) -> bool {
        self.cache && !self.cache_ttl.is_zero()
    }

    /// Whether these options make the extension read the database server's own files
    /// (a named profile), which only trusted users may do.
    pub fn reads_server_files(&self) -> bool {
        self.profile.is_some()
    }

    /// Whether `error` carries an AWS error code listed in `ignore_error_codes`, or an AWS
    /// error message that a pattern of `ignore_error_messages` matches: the table is then
    /// empty rather than the query failing.
    pub fn ignores(&self, error: &FdwError) -> bool {
        let code_listed = error.aws_code.as_deref().is_some_and(|code| {
            self.ignore_error_codes
                .iter()
                .any(|pattern| aggregate::glob_match(pattern, code))
        });
        code_listed
            || error
                .aws_message
                .as_deref()
                .is_some_and(|message| self.ignore_error_messages.matches(message))
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            region: None,
            regions: Vec::new(),
            endpoint_url: None,
            use_fips: None,
            use_dual_stack: None,
            profile: None,
            keys: None,
            assume_role: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_retry_delay: DEFAULT_MIN_RETRY_DELAY,
            ignore_error_codes: Vec::new(),
            ignore_error_messages: MessagePatterns::default(),
            instance_metadata: true,
            cache: true,
            cache_ttl: DEFAULT_CACHE_TTL,
            ca_bundle: None,
            proxy_url: None,
        }
    }
}

/// Static keys from a user mapping. `Debug` never prints the secret parts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl StaticKeys {
    /// Values that must never reach a message, a log line or EXPLAIN.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.secret_access_key.clone()];
        secrets.extend(self.session_token.clone());
        secrets
    }
}

/// Options of a user mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserMappingOptions {
    pub keys: Option<StaticKeys>,
    /// Set by a superuser: this user may use the database server's own AWS credentials.
    pub ambient_credentials: bool,
}

/// Options of one foreign table column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnOptions {
    /// The aws_sts_caller_identity column this one reads, when its own name differs.
    pub column_name: Option<String>,
}

/// Validates an option list for a catalog, as the FDW validator does at CREATE/ALTER time.
/// `is_superuser` is whether the user running the command is a superuser. Returns the
/// warnings to show when the options are accepted.
pub fn validate(
    catalog: Catalog,
    options: &[(String, String)],
    is_superuser: bool,
) -> Result<Vec<String>, FdwError> {
    for (name, _) in options {
        check_known(catalog, name)?;
    }
    match catalog {
        Catalog::Server => match parse_server_kind(options)? {
            ServerKind::Connection(server) if server.ca_bundle.is_some() && !is_superuser => {
                Err(FdwError::new(
                    SqlState::InsufficientPrivilege,
                    "only a superuser may set ca_bundle",
                )
                .with_hint(
                    "ca_bundle makes the database server read a file of its own. Ask a superuser to set it, \
                     or to set AWS_CA_BUNDLE in the database server's environment.",
                ))
            }
            ServerKind::Connection(server) if server.keys.is_some() => {
                if !is_superuser {
                    return Err(FdwError::new(
                        SqlState::InsufficientPrivilege,
                        "only a superuser may put AWS keys in server options",
                    )
                    .with_hint(
                        "Every user can read a server's options. Put the keys in a user mapping: \
                         CREATE USER MAPPING FOR CURRENT_USER SERVER <server> OPTIONS (access_key '...', secret_key '...').",
                    ));
                }
                Ok(vec![SERVER_KEYS_WARNING.to_string()])
            }
            _ => Ok(Vec::new()),
        },
        Catalog::UserMapping => {
            let parsed = parse_user_mapping(options)?;
            if parsed.ambient_credentials && !is_superuser {
                return Err(FdwError::new(
                    SqlState::InsufficientPrivilege,
                    "only a superuser may set ambient_credentials on a user mapping",
                )
                .with_hint(
                    "ambient_credentials lets the mapped user act with the database server's own AWS \
                     credentials; ask a superuser to set it, or give the mapping access_key and secret_key.",
                ));
            }
            Ok(Vec::new())
        }
        Catalog::Column => parse_column(options).map(|_| Vec::new()),
        Catalog::Wrapper | Catalog::ForeignTable => Ok(Vec::new()),
    }
}

/// Said when a superuser puts keys in a server's options (accepted for Steampipe).
pub const SERVER_KEYS_WARNING: &str = "AWS keys in server options are readable by every user of the database \
     (pg_foreign_server.srvoptions); prefer a user mapping, whose options only its user and superusers can read";

/// Whether an option list may carry a secret, so that a failing statement's text must not
/// reach the server log: a key option, `config`, a name that is no option at all (a
/// misspelt `acess_key` holds a key all the same), or a value with user information in it.
pub fn may_carry_secrets(options: &[(String, String)]) -> bool {
    options.iter().any(|(name, value)| {
        is_secret(name) || name == "config" || !is_option_name(name) || value.contains('@')
    })
}

/// A server is one AWS connection, or an aggregator over other servers.
// Built once per server per scan, never kept in bulk: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    Connection(ServerOptions),
    Aggregator(AggregatorOptions),
}
