//! Option parsing and validation, the counterpart of postgres_fdw's option.c.
//!
//! Pure logic: the FDW validator and the scan both call into this module with plain
//! `(name, value)` pairs, so it is unit-tested without Postgres.

use std::fmt;
use std::time::Duration;

use crate::aggregate::{self, AggregatorOptions, OnError};
use crate::config;
use crate::error::{FdwError, SqlState};

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

/// One valid option: where it may appear and whether its value is a secret
/// (a secret value is never echoed in any message).
struct OptionSpec {
    name: &'static str,
    catalog: Catalog,
    secret: bool,
}

/// The static table of valid options, as postgres_fdw and file_fdw keep one.
const VALID_OPTIONS: &[OptionSpec] = &[
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
    /// Whether the default chain may ask EC2 instance metadata (bounded to 1 s).
    pub instance_metadata: bool,
    /// Whether answers are cached in the backend (`cache`), and for how long (`cache_ttl`).
    pub cache: bool,
    pub cache_ttl: Duration,
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

    /// Whether `error` carries an AWS error code listed in `ignore_error_codes`: the table
    /// is then empty rather than the query failing.
    pub fn ignores(&self, error: &FdwError) -> bool {
        error.aws_code.as_deref().is_some_and(|code| {
            self.ignore_error_codes
                .iter()
                .any(|pattern| aggregate::glob_match(pattern, code))
        })
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            region: None,
            regions: Vec::new(),
            endpoint_url: None,
            profile: None,
            keys: None,
            assume_role: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_retry_delay: DEFAULT_MIN_RETRY_DELAY,
            ignore_error_codes: Vec::new(),
            instance_metadata: true,
            cache: true,
            cache_ttl: DEFAULT_CACHE_TTL,
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
            ServerKind::Connection(server) if server.keys.is_some() => {
                if !is_superuser {
                    return Err(FdwError::new(
                        SqlState::InsufficientPrivilege,
                        "only a superuser may put AWS keys in server options",
                    )
                    .with_hint(
                        "Every user can read a server's options. Put the keys in a user mapping:                          CREATE USER MAPPING FOR CURRENT_USER SERVER <server> OPTIONS (access_key '...', secret_key '...').",
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
/// reach the server log.
pub fn may_carry_secrets(options: &[(String, String)]) -> bool {
    options
        .iter()
        .any(|(name, _)| is_secret(name) || name == "config")
}

fn check_known(catalog: Catalog, name: &str) -> Result<(), FdwError> {
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

fn is_secret(name: &str) -> bool {
    VALID_OPTIONS
        .iter()
        .any(|spec| spec.name == name && spec.secret)
}

fn invalid_value(name: &str, value: &str, why: &str, hint: &str) -> FdwError {
    let shown = if is_secret(name) {
        String::new()
    } else {
        format!(" \"{value}\"")
    };
    FdwError::new(
        SqlState::InvalidAttributeValue,
        format!("invalid value{shown} for option \"{name}\": {why}"),
    )
    .with_hint(hint.to_string())
}

fn find<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The options only an aggregator server takes.
const AGGREGATOR_OPTIONS: [&str; 4] = ["type", "connections", "concurrency", "on_error"];

/// A server is one AWS connection, or an aggregator over other servers.
// Built once per server per scan, never kept in bulk: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    Connection(ServerOptions),
    Aggregator(AggregatorOptions),
}

/// Parses a server's options into a connection or an aggregator.
pub fn parse_server_kind(options: &[(String, String)]) -> Result<ServerKind, FdwError> {
    for (name, _) in options {
        check_known(Catalog::Server, name)?;
    }
    match find(options, "type").map(str::to_ascii_lowercase).as_deref() {
        Some("aggregator") => {
            if let Some((name, _)) = options.iter().find(|(name, _)| !AGGREGATOR_OPTIONS.contains(&name.as_str())) {
                return Err(FdwError::new(
                    SqlState::InvalidOptionName,
                    format!("option \"{name}\" does not apply to an aggregator server"),
                )
                .with_hint("Set it on the member servers; an aggregator takes type, connections, concurrency and on_error."));
            }
            let Some(connections) = find(options, "connections") else {
                return Err(FdwError::new(
                    SqlState::OptionNameNotFound,
                    "an aggregator server needs option \"connections\"",
                )
                .with_hint("Name the member servers, with wildcards: OPTIONS (type 'aggregator', connections 'aws_*')."));
            };
            Ok(ServerKind::Aggregator(AggregatorOptions {
                patterns: aggregate::parse_patterns(connections)?,
                concurrency: find(options, "concurrency")
                    .map(aggregate::parse_concurrency)
                    .transpose()?
                    .unwrap_or(aggregate::DEFAULT_CONCURRENCY),
                on_error: find(options, "on_error")
                    .map(aggregate::parse_on_error)
                    .transpose()?
                    .unwrap_or(OnError::Fail),
            }))
        }
        Some("connection") | None => {
            if let Some((name, _)) = options
                .iter()
                .find(|(name, _)| name != "type" && AGGREGATOR_OPTIONS.contains(&name.as_str()))
            {
                return Err(FdwError::new(
                    SqlState::InvalidOptionName,
                    format!("option \"{name}\" applies only to an aggregator server"),
                )
                .with_hint("Add type 'aggregator' to make this server an aggregator over other servers."));
            }
            parse_server(options).map(ServerKind::Connection)
        }
        Some(_) => Err(invalid_value(
            "type",
            find(options, "type").unwrap_or_default(),
            "neither 'connection' nor 'aggregator'",
            "Leave type out for an AWS connection, or set type 'aggregator' with connections 'pattern, ...'.",
        )),
    }
}

/// One option value as given: a plain server option, or a key of `config` with its line.
struct Given {
    name: String,
    value: String,
    config_line: Option<usize>,
}

impl Given {
    /// Says where the value came from in an error about it.
    fn locate(&self, mut error: FdwError) -> FdwError {
        if let Some(line) = self.config_line {
            error.message = format!("{} (config line {line})", error.message);
        }
        error
    }
}

/// The plain options and the keys of `config`, as one list. A setting given both ways is
/// an error, so that no one has to guess which wins.
fn merge_config(options: &[(String, String)]) -> Result<Vec<Given>, FdwError> {
    let mut merged: Vec<Given> = options
        .iter()
        .filter(|(name, _)| name != "config")
        .map(|(name, value)| Given {
            name: name.clone(),
            value: value.clone(),
            config_line: None,
        })
        .collect();
    if let Some(text) = find(options, "config") {
        for entry in config::parse(text)? {
            if merged.iter().any(|given| given.name == entry.name) {
                return Err(FdwError::new(
                    SqlState::InvalidOptionName,
                    format!(
                        "option \"{}\" is set both as a server option and in config (line {})",
                        entry.name, entry.line
                    ),
                )
                .with_hint("Set it one way only."));
            }
            merged.push(Given {
                name: entry.name.to_string(),
                value: entry.value,
                config_line: Some(entry.line),
            });
        }
    }
    if let (Some(region), Some(_)) = (
        merged.iter().find(|given| given.name == "region"),
        merged.iter().find(|given| given.name == "default_region"),
    ) {
        return Err(region.locate(
            FdwError::new(
                SqlState::InvalidOptionName,
                "options \"region\" and \"default_region\" name the same thing",
            )
            .with_hint("Keep one of them."),
        ));
    }
    Ok(merged)
}

/// Parses and validates server options (plain, and Steampipe's `config`). Unknown names
/// are rejected.
pub fn parse_server(options: &[(String, String)]) -> Result<ServerOptions, FdwError> {
    for (name, _) in options {
        check_known(Catalog::Server, name)?;
    }
    let merged = merge_config(options)?;
    let mut parsed = ServerOptions::default();
    for given in &merged {
        let value = given.value.as_str();
        let apply = |parsed: &mut ServerOptions| -> Result<(), FdwError> {
            match given.name.as_str() {
                "region" | "default_region" => parsed.region = Some(parse_region(&given.name, value)?),
                "regions" => parsed.regions = parse_region_patterns(value)?,
                "endpoint_url" => {
                    check_endpoint_url(value)?;
                    parsed.endpoint_url = Some(value.trim_end_matches('/').to_string());
                }
                "profile" => {
                    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(invalid_value(
                            "profile",
                            value,
                            "a profile name is not empty and has no spaces",
                            "Name a profile from the database server's ~/.aws/config or ~/.aws/credentials.",
                        ));
                    }
                    parsed.profile = Some(value.to_string());
                }
                "connect_timeout" => parsed.connect_timeout = parse_timeout("connect_timeout", value)?,
                "timeout" => parsed.timeout = parse_timeout("timeout", value)?,
                "max_error_retry_attempts" => {
                    parsed.max_attempts = match value.trim().parse::<u32>() {
                        Ok(attempts) if (1..=MAX_ATTEMPTS).contains(&attempts) => attempts,
                        _ => {
                            return Err(invalid_value(
                                "max_error_retry_attempts",
                                value,
                                "not a whole number from 1 to 100",
                                "Give how many attempts a call may make, the first included ('1' turns retries off).",
                            ))
                        }
                    }
                }
                "min_error_retry_delay" => {
                    parsed.min_retry_delay = match parse_millis(value) {
                        Some(delay) if !delay.is_zero() && delay <= MAX_TIMEOUT => delay,
                        _ => {
                            return Err(invalid_value(
                                "min_error_retry_delay",
                                value,
                                "not a delay above 0 and at most 1h",
                                "Give milliseconds ('25', as Steampipe) or a value with a unit ('25ms', '1s').",
                            ))
                        }
                    }
                }
                "ignore_error_codes" => parsed.ignore_error_codes = parse_error_codes(value)?,
                "instance_metadata" => {
                    parsed.instance_metadata = parse_bool(value).ok_or_else(|| {
                        invalid_value("instance_metadata", value, "not a boolean", "Use 'true' or 'false'.")
                    })?
                }
                "cache" => {
                    parsed.cache = parse_bool(value).ok_or_else(|| {
                        invalid_value("cache", value, "not a boolean", "Use 'true' or 'false'.")
                    })?
                }
                "cache_ttl" => {
                    parsed.cache_ttl = match parse_duration(value) {
                        Some(ttl) if ttl <= MAX_CACHE_TTL => ttl,
                        _ => {
                            return Err(invalid_value(
                                "cache_ttl",
                                value,
                                "not a duration from 0 to 24h",
                                "Give seconds ('300') or a value with a unit ('5min'); '0' turns caching off.",
                            ))
                        }
                    }
                }
                // Checked here for the line; as pairs below.
                "access_key" | "secret_key" | "session_token" => check_key_text(&given.name, value)?,
                // role_arn, role_session_name, external_id, duration_seconds: together below.
                _ => {}
            }
            Ok(())
        };
        apply(&mut parsed).map_err(|error| given.locate(error))?;
    }
    let given = |name: &str| merged.iter().find(|given| given.name == name);
    let value = |name: &str| given(name).map(|given| given.value.as_str());
    parsed.keys = parse_keys(
        value("access_key"),
        value("secret_key"),
        value("session_token"),
        "server",
    )?;
    parsed.assume_role = parse_assume_role(
        given("role_arn"),
        given("role_session_name"),
        given("external_id"),
        given("duration_seconds"),
    )?;
    Ok(parsed)
}

fn parse_region(name: &str, value: &str) -> Result<String, FdwError> {
    if !is_region_name(value) {
        return Err(invalid_value(
            name,
            value,
            "not an AWS region name",
            "Use a region code such as us-east-1, eu-west-2 or us-gov-west-1.",
        ));
    }
    Ok(value.to_string())
}

/// Steampipe's `regions`: region codes or wildcards ('*', 'us-*', 'us-??st-1').
fn parse_region_patterns(value: &str) -> Result<Vec<String>, FdwError> {
    let patterns: Vec<String> = value
        .split(',')
        .map(|pattern| pattern.trim().to_string())
        .collect();
    for pattern in &patterns {
        let wildcard = pattern.contains(['*', '?']);
        let valid = if wildcard {
            pattern
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-*?".contains(c))
        } else {
            is_region_name(pattern)
        };
        if pattern.is_empty() || !valid {
            return Err(invalid_value(
                "regions",
                value,
                &format!("\"{pattern}\" is neither a region code nor a wildcard"),
                "List regions as Steampipe does: us-east-1, eu-*, us-??st-1 or *.",
            ));
        }
    }
    Ok(patterns)
}

/// AWS error codes, or glob patterns of them, for `ignore_error_codes`.
fn parse_error_codes(value: &str) -> Result<Vec<String>, FdwError> {
    let codes: Vec<String> = value
        .split(',')
        .map(|code| code.trim().to_string())
        .collect();
    for code in &codes {
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "*?._-".contains(c))
        {
            return Err(invalid_value(
                "ignore_error_codes",
                value,
                &format!("\"{code}\" is not an AWS error code or pattern"),
                "List AWS error codes, with * and ? as wildcards: AccessDenied, Unauthorized*.",
            ));
        }
    }
    Ok(codes)
}

fn parse_assume_role(
    role_arn: Option<&Given>,
    session_name: Option<&Given>,
    external_id: Option<&Given>,
    duration: Option<&Given>,
) -> Result<Option<AssumeRole>, FdwError> {
    let Some(role_given) = role_arn else {
        if let Some(given) = session_name.or(external_id).or(duration) {
            return Err(given.locate(
                FdwError::new(
                    SqlState::OptionNameNotFound,
                    format!("option \"{}\" requires role_arn", given.name),
                )
                .with_hint(
                    "Name the role to assume: role_arn 'arn:aws:iam::123456789012:role/name'.",
                ),
            ));
        }
        return Ok(None);
    };
    let role_arn = role_given.value.clone();
    if !is_role_arn(&role_arn) {
        return Err(role_given.locate(invalid_value(
            "role_arn",
            &role_arn,
            "not an IAM role ARN",
            "Give the role's ARN: arn:aws:iam::123456789012:role/name (role paths allowed).",
        )));
    }
    let session_name = match session_name {
        Some(given) => {
            let name = given.value.clone();
            let valid = (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
            if !valid {
                return Err(given.locate(invalid_value(
                    "role_session_name",
                    &name,
                    "not 2 to 64 letters, digits or _+=,.@-",
                    "AWS allows 2 to 64 characters from [A-Za-z0-9_+=,.@-].",
                )));
            }
            name
        }
        None => DEFAULT_ROLE_SESSION_NAME.to_string(),
    };
    let external_id = match external_id {
        Some(given) => {
            let id = given.value.clone();
            let valid = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
            if !valid {
                return Err(given.locate(invalid_value(
                    "external_id",
                    &id,
                    "not 2 to 1224 letters, digits or _+=,.@:/-",
                    "Copy the external ID the role's trust policy expects.",
                )));
            }
            Some(id)
        }
        None => None,
    };
    let duration = match duration {
        Some(given) => match given.value.trim().parse::<u64>() {
            Ok(seconds) if (900..=43_200).contains(&seconds) => Some(Duration::from_secs(seconds)),
            _ => {
                return Err(given.locate(invalid_value(
                    "duration_seconds",
                    &given.value,
                    "not a whole number of seconds from 900 to 43200",
                    "AWS role sessions last 15 minutes to 12 hours (and at most the role's maximum session duration).",
                )))
            }
        },
        None => None,
    };
    Ok(Some(AssumeRole {
        role_arn,
        session_name,
        external_id,
        duration,
    }))
}

/// arn:<partition>:iam::<12 digits>:role/<path/>name
fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(),
    ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| {
                !name.is_empty()
                    && !name.ends_with('/')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c))
            }))
}

fn check_key_text(name: &str, value: &str) -> Result<(), FdwError> {
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid_value(
            name,
            value,
            "must be non-empty printable ASCII without spaces",
            "Copy the value exactly as AWS issued it.",
        ));
    }
    Ok(())
}

/// access_key and secret_key together, session_token only with them.
fn parse_keys(
    access_key: Option<&str>,
    secret_key: Option<&str>,
    session_token: Option<&str>,
    place: &str,
) -> Result<Option<StaticKeys>, FdwError> {
    for (name, value) in [
        ("access_key", access_key),
        ("secret_key", secret_key),
        ("session_token", session_token),
    ] {
        if let Some(value) = value {
            check_key_text(name, value)?;
        }
    }
    match (access_key, secret_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(StaticKeys {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
        })),
        (None, None) if session_token.is_none() => Ok(None),
        _ => {
            let (present, missing) = match (access_key, secret_key) {
                (Some(_), None) => ("access_key", "secret_key"),
                (None, Some(_)) => ("secret_key", "access_key"),
                _ => ("session_token", "access_key and secret_key"),
            };
            Err(FdwError::new(
                SqlState::OptionNameNotFound,
                format!("option \"{present}\" requires {missing} in the same {place}"),
            )
            .with_hint("Give access_key and secret_key together (and session_token for temporary credentials), or none of them to use the default credential chain."))
        }
    }
}

/// Parses and validates user mapping options.
pub fn parse_user_mapping(options: &[(String, String)]) -> Result<UserMappingOptions, FdwError> {
    for (name, _) in options {
        check_known(Catalog::UserMapping, name)?;
    }
    let keys = parse_keys(
        find(options, "access_key"),
        find(options, "secret_key"),
        find(options, "session_token"),
        "user mapping",
    )?;
    let ambient_credentials = match find(options, "ambient_credentials") {
        Some(value) => parse_bool(value).ok_or_else(|| {
            invalid_value(
                "ambient_credentials",
                value,
                "not a boolean",
                "Use 'true' or 'false'.",
            )
        })?,
        None => false,
    };
    Ok(UserMappingOptions {
        keys,
        ambient_credentials,
    })
}

/// Parses and validates the options of one foreign table column.
pub fn parse_column(options: &[(String, String)]) -> Result<ColumnOptions, FdwError> {
    for (name, _) in options {
        check_known(Catalog::Column, name)?;
    }
    let column_name = match find(options, "column_name") {
        Some(name) if crate::row::Column::by_name(name).is_none() => {
            return Err(invalid_value(
                "column_name",
                name,
                "not a column of aws_sts_caller_identity",
                &format!(
                    "Valid columns are: {}.",
                    crate::row::column_names().join(", ")
                ),
            ));
        }
        other => other.map(str::to_string),
    };
    Ok(ColumnOptions { column_name })
}

/// Postgres-style boolean spellings.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" | "t" | "y" => Some(true),
        "false" | "off" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// A region code: lowercase letters, digits and dashes, starting with a letter and ending
/// with a digit (us-east-1, us-gov-west-1, cn-northwest-1, eu-isoe-west-1).
fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region.ends_with(|c: char| c.is_ascii_digit())
}

fn check_endpoint_url(url: &str) -> Result<(), FdwError> {
    let hint = "Give a URL such as https://sts.us-east-1.amazonaws.com or http://127.0.0.1:5000.";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid_value(
                "endpoint_url",
                url,
                "must start with http:// or https://",
                hint,
            )
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        // Never keep credentials in a server option that every user can read.
        return Err(FdwError::new(
            SqlState::InvalidAttributeValue,
            "invalid value for option \"endpoint_url\": user information in the URL is not allowed",
        )
        .with_hint(
            "Put credentials in a user mapping (access_key, secret_key), never in the endpoint.",
        ));
    }
    if authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid_value("endpoint_url", url, "not a valid URL", hint));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return Err(invalid_value(
                "endpoint_url",
                url,
                "the port is not a number from 0 to 65535",
                hint,
            ));
        }
    }
    Ok(())
}

/// Parses a duration: a bare number is seconds ('2', '0.5'); Postgres units work too
/// ('500ms', '2s', '1min', '1h', '250us').
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * seconds_per_unit).ok()
}

/// A delay where a bare number is milliseconds, as Steampipe's min_error_retry_delay.
fn parse_millis(value: &str) -> Option<Duration> {
    match value.trim().parse::<u64>() {
        Ok(millis) => Some(Duration::from_millis(millis)),
        Err(_) => parse_duration(value)
            .filter(|_| value.trim().ends_with(|c: char| c.is_ascii_alphabetic())),
    }
}

fn parse_timeout(name: &str, value: &str) -> Result<Duration, FdwError> {
    let hint = "Give seconds ('2', '0.5') or a value with a unit ('500ms', '2s', '1min'), above 0 and at most 1h.";
    match parse_duration(value) {
        Some(duration) if !duration.is_zero() && duration <= MAX_TIMEOUT => Ok(duration),
        Some(_) => Err(invalid_value(name, value, "out of range", hint)),
        None => Err(invalid_value(name, value, "not a duration", hint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_keys_and_plain_options_merge_and_never_overlap() {
        let parsed = parse_server(&opts(&[
            ("config", "regions = [\"eu-*\"]\nmax_error_retry_attempts = 4\nignore_error_codes = [\"Access*\"]"),
            ("timeout", "2s"),
        ]))
        .unwrap();
        assert_eq!(parsed.regions, vec!["eu-*"]);
        assert_eq!(parsed.max_attempts, 4);
        assert_eq!(parsed.timeout, Duration::from_secs(2));
        let denied = FdwError::new(SqlState::FdwError, "x").with_aws_code("AccessDenied");
        assert!(parsed.ignores(&denied));
        assert!(
            !parsed.ignores(&FdwError::new(SqlState::FdwError, "x").with_aws_code("Throttling"))
        );
        assert!(!parsed.ignores(&FdwError::new(SqlState::FdwError, "no code")));

        let both =
            parse_server(&opts(&[("config", "profile = \"a\""), ("profile", "b")])).unwrap_err();
        assert_eq!(both.state, SqlState::InvalidOptionName);
        let line = parse_server(&opts(&[("config", "\n\ndefault_region = \"moon\"")])).unwrap_err();
        assert_eq!(
            line.message,
            "invalid value \"moon\" for option \"default_region\": not an AWS region name (config line 3)"
        );
        let aliases = parse_server(&opts(&[
            ("region", "us-east-1"),
            ("default_region", "us-east-2"),
        ]));
        assert!(aliases.is_err());
    }

    #[test]
    fn keys_in_server_options_need_a_superuser_and_warn() {
        let keys = opts(&[
            ("access_key", "AKIASERVER"),
            ("secret_key", "server-secret"),
        ]);
        let parsed = parse_server(&keys).unwrap();
        assert_eq!(parsed.keys.as_ref().unwrap().access_key_id, "AKIASERVER");
        assert_eq!(
            validate(Catalog::Server, &keys, true).unwrap(),
            vec![SERVER_KEYS_WARNING]
        );
        let denied = validate(Catalog::Server, &keys, false).unwrap_err();
        assert_eq!(denied.state, SqlState::InsufficientPrivilege);
        assert!(
            validate(Catalog::Server, &opts(&[("region", "us-east-1")]), false)
                .unwrap()
                .is_empty()
        );
        assert!(may_carry_secrets(&opts(&[("config", "profile = \"x\"")])));
        assert!(!may_carry_secrets(&opts(&[("region", "us-east-1")])));
    }

    #[test]
    fn assume_role_options_are_checked_together() {
        let role = parse_server(&opts(&[
            (
                "role_arn",
                "arn:aws-us-gov:iam::123456789012:role/path/to/Reader",
            ),
            ("external_id", "ext:1234/x"),
            ("duration_seconds", "3600"),
        ]))
        .unwrap()
        .assume_role
        .unwrap();
        assert_eq!(role.session_name, DEFAULT_ROLE_SESSION_NAME);
        assert_eq!(role.external_id.as_deref(), Some("ext:1234/x"));
        assert_eq!(role.duration, Some(Duration::from_secs(3600)));
        for bad in [
            "arn:aws:iam::123456789012:user/Alice",
            "arn:aws:iam::12345:role/r",
            "arn:aws:sts::123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
            "role/r",
        ] {
            assert!(parse_server(&opts(&[("role_arn", bad)])).is_err(), "{bad}");
        }
        let orphan = parse_server(&opts(&[("duration_seconds", "900")])).unwrap_err();
        assert_eq!(orphan.state, SqlState::OptionNameNotFound);
        let arn = ("role_arn", "arn:aws:iam::123456789012:role/r");
        assert!(parse_server(&opts(&[arn, ("duration_seconds", "899")])).is_err());
        assert!(parse_server(&opts(&[arn, ("duration_seconds", "43201")])).is_err());
        assert!(parse_server(&opts(&[arn, ("role_session_name", "x")])).is_err());
        assert!(parse_server(&opts(&[arn, ("external_id", "has space")])).is_err());
    }

    #[test]
    fn regions_and_error_codes_take_wildcards() {
        let parsed = parse_server(&opts(&[
            ("regions", "us-east-1, us-??st-2, eu-*, *"),
            ("ignore_error_codes", "AccessDenied, Unauthorized*"),
        ]))
        .unwrap();
        assert_eq!(parsed.regions.len(), 4);
        assert_eq!(
            parsed.ignore_error_codes,
            vec!["AccessDenied", "Unauthorized*"]
        );
        assert!(parse_server(&opts(&[("regions", "us-east-1,,eu-west-1")])).is_err());
        assert!(parse_server(&opts(&[("regions", "US-EAST-1")])).is_err());
        assert!(parse_server(&opts(&[("ignore_error_codes", "a b")])).is_err());
        assert!(parse_server(&opts(&[("instance_metadata", "off")]))
            .map(|p| !p.instance_metadata)
            .unwrap());
    }

    #[test]
    fn server_options_parse_with_defaults() {
        let parsed = parse_server(&opts(&[
            ("region", "eu-west-2"),
            ("endpoint_url", "http://127.0.0.1:5000/"),
        ]))
        .unwrap();
        assert_eq!(parsed.region.as_deref(), Some("eu-west-2"));
        assert_eq!(
            parsed.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(parsed.timeout, DEFAULT_TIMEOUT);
        assert_eq!(parsed.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn unknown_option_names_the_valid_ones() {
        let err = validate(Catalog::Server, &opts(&[("regoin", "us-east-1")]), true).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidOptionName);
        assert_eq!(err.message, "invalid option \"regoin\"");
        assert!(err
            .hint
            .as_deref()
            .unwrap()
            .contains("region, endpoint_url, profile"));
    }

    #[test]
    fn option_in_the_wrong_catalog_says_where_it_belongs() {
        let err = validate(
            Catalog::Server,
            &opts(&[("ambient_credentials", "true")]),
            true,
        )
        .unwrap_err();
        assert_eq!(err.state, SqlState::InvalidOptionName);
        assert_eq!(
            err.hint.as_deref(),
            Some("\"ambient_credentials\" is an option of a user mapping, not of a server.")
        );
        let err = validate(Catalog::Wrapper, &opts(&[("x", "1")]), true).unwrap_err();
        assert_eq!(
            err.hint.as_deref(),
            Some("A foreign-data wrapper of aws_sts takes no options.")
        );
    }

    #[test]
    fn bad_region_and_url_are_rejected() {
        for region in [
            "US-EAST-1",
            "useast1",
            "us-east-",
            "-us-east-1",
            "us east 1",
            "",
        ] {
            let err = parse_server(&opts(&[("region", region)])).unwrap_err();
            assert_eq!(err.state, SqlState::InvalidAttributeValue, "{region}");
        }
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "cn-northwest-1",
            "eu-isoe-west-1",
            "ap-southeast-3",
        ] {
            assert!(
                parse_server(&opts(&[("region", region)])).is_ok(),
                "{region}"
            );
        }
        for url in [
            "ftp://x",
            "127.0.0.1:5000",
            "http://",
            "http://a b",
            "http://h:99999",
        ] {
            let err = parse_server(&opts(&[("endpoint_url", url)])).unwrap_err();
            assert_eq!(err.state, SqlState::InvalidAttributeValue, "{url}");
        }
        let err = parse_server(&opts(&[(
            "endpoint_url",
            "https://AKIA:secret@sts.amazonaws.com",
        )]))
        .unwrap_err();
        assert!(!err.message.contains("secret"), "{}", err.message);
        assert!(parse_server(&opts(&[("endpoint_url", "http://[::1]:5000/")])).is_ok());
    }

    #[test]
    fn durations_accept_seconds_and_postgres_units() {
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("2 s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1min"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "2x", "-1", "1e3", "two"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for bad in ["0", "0ms", "2h"] {
            let err = parse_server(&opts(&[("timeout", bad)])).unwrap_err();
            assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad}");
        }
    }

    #[test]
    fn retry_options_take_steampipe_units() {
        let parsed = parse_server(&[]).unwrap();
        assert_eq!(
            (parsed.max_attempts, parsed.min_retry_delay),
            (9, Duration::from_millis(25))
        );
        let parsed = parse_server(&opts(&[
            ("max_error_retry_attempts", "3"),
            ("min_error_retry_delay", "100"),
        ]))
        .unwrap();
        assert_eq!(
            (parsed.max_attempts, parsed.min_retry_delay),
            (3, Duration::from_millis(100))
        );
        let parsed = parse_server(&opts(&[("min_error_retry_delay", "1s")])).unwrap();
        assert_eq!(parsed.min_retry_delay, Duration::from_secs(1));
        for bad in [
            ("max_error_retry_attempts", "0"),
            ("max_error_retry_attempts", "1.5"),
            ("max_error_retry_attempts", "101"),
            ("min_error_retry_delay", "0"),
            ("min_error_retry_delay", "0.5"),
            ("min_error_retry_delay", "soon"),
        ] {
            let err = parse_server(&opts(&[bad])).unwrap_err();
            assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad:?}");
        }
    }

    #[test]
    fn aggregator_servers_take_their_own_options() {
        let parsed =
            parse_server_kind(&opts(&[("type", "aggregator"), ("connections", "aws_*")])).unwrap();
        assert_eq!(
            parsed,
            ServerKind::Aggregator(AggregatorOptions {
                patterns: vec!["aws_*".into()],
                concurrency: 25,
                on_error: OnError::Fail
            })
        );
        let err = parse_server_kind(&opts(&[("type", "aggregator")])).unwrap_err();
        assert_eq!(err.state, SqlState::OptionNameNotFound);
        let err = parse_server_kind(&opts(&[
            ("type", "aggregator"),
            ("connections", "a"),
            ("region", "us-east-1"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.message,
            "option \"region\" does not apply to an aggregator server"
        );
        let err = parse_server_kind(&opts(&[("concurrency", "5")])).unwrap_err();
        assert_eq!(
            err.message,
            "option \"concurrency\" applies only to an aggregator server"
        );
        assert!(parse_server_kind(&opts(&[("type", "cluster")])).is_err());
        assert!(matches!(
            parse_server_kind(&opts(&[("type", "connection"), ("region", "eu-west-1")])).unwrap(),
            ServerKind::Connection(_)
        ));
    }

    #[test]
    fn cache_options() {
        let parsed = parse_server(&[]).unwrap();
        assert!(parsed.caching());
        assert_eq!(parsed.cache_ttl, DEFAULT_CACHE_TTL);
        let parsed = parse_server(&opts(&[("cache_ttl", "0")])).unwrap();
        assert!(!parsed.caching());
        let parsed = parse_server(&opts(&[("cache", "false"), ("cache_ttl", "10min")])).unwrap();
        assert!(!parsed.caching());
        assert_eq!(parsed.cache_ttl, Duration::from_secs(600));
        for bad in [
            ("cache", "sometimes"),
            ("cache_ttl", "2d"),
            ("cache_ttl", "25h"),
        ] {
            let err = parse_server(&opts(&[bad])).unwrap_err();
            assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad:?}");
        }
    }

    #[test]
    fn keys_come_in_pairs_and_are_never_echoed() {
        let parsed = parse_user_mapping(&opts(&[
            ("access_key", "AKIAEXAMPLE"),
            ("secret_key", "s3cr3t"),
        ]))
        .unwrap();
        let keys = parsed.keys.unwrap();
        assert_eq!(keys.access_key_id, "AKIAEXAMPLE");
        assert!(!format!("{keys:?}").contains("s3cr3t"));

        let err = parse_user_mapping(&opts(&[("access_key", "AKIAEXAMPLE")])).unwrap_err();
        assert_eq!(err.state, SqlState::OptionNameNotFound);
        assert_eq!(
            err.message,
            "option \"access_key\" requires secret_key in the same user mapping"
        );
        let err = parse_user_mapping(&opts(&[("secret_key", "s3cr3t")])).unwrap_err();
        assert_eq!(
            err.message,
            "option \"secret_key\" requires access_key in the same user mapping"
        );
        let err = parse_user_mapping(&opts(&[("session_token", "tok")])).unwrap_err();
        assert_eq!(
            err.message,
            "option \"session_token\" requires access_key and secret_key in the same user mapping"
        );

        let err = parse_user_mapping(&opts(&[
            ("access_key", "AKIA"),
            ("secret_key", "bad secret"),
        ]))
        .unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue);
        assert!(!err.message.contains("bad secret"), "{}", err.message);
        assert!(parse_user_mapping(&[]).unwrap().keys.is_none());
    }

    #[test]
    fn ambient_credentials_need_a_superuser() {
        let options = opts(&[("ambient_credentials", "true")]);
        assert!(validate(Catalog::UserMapping, &options, true).is_ok());
        let err = validate(Catalog::UserMapping, &options, false).unwrap_err();
        assert_eq!(err.state, SqlState::InsufficientPrivilege);
        assert!(validate(
            Catalog::UserMapping,
            &opts(&[("ambient_credentials", "maybe")]),
            true
        )
        .is_err());
        assert!(
            !parse_user_mapping(&opts(&[("ambient_credentials", "off")]))
                .unwrap()
                .ambient_credentials
        );
    }

    #[test]
    fn column_name_must_be_a_known_column() {
        assert_eq!(
            parse_column(&opts(&[("column_name", "arn")]))
                .unwrap()
                .column_name
                .as_deref(),
            Some("arn")
        );
        let err = parse_column(&opts(&[("column_name", "nope")])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue);
        assert!(err.hint.unwrap().contains("account_id"));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn option_name() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(
                    VALID_OPTIONS
                        .iter()
                        .map(|spec| spec.name.to_string())
                        .collect::<Vec<_>>()
                ),
                "[a-z_]{1,20}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

            /// Any option list: no panic, a well-formed error, and no secret value echoed.
            #[test]
            fn any_option_list_is_parsed_or_rejected_cleanly(
                pairs in proptest::collection::vec((option_name(), "\\PC{0,40}"), 0..6),
                is_superuser in any::<bool>(),
            ) {
                for catalog in [Catalog::Wrapper, Catalog::Server, Catalog::UserMapping, Catalog::ForeignTable, Catalog::Column] {
                    if let Err(error) = validate(catalog, &pairs, is_superuser) {
                        prop_assert_eq!(error.state.code().len(), 5);
                        prop_assert!(!error.message.is_empty());
                        for (name, value) in &pairs {
                            if is_secret(name) && value.chars().count() >= 8 {
                                let text = format!("{} {:?} {:?}", error.message, error.detail, error.hint);
                                prop_assert!(!text.contains(value.as_str()), "secret {} echoed: {}", name, text);
                            }
                        }
                    }
                }
            }

            #[test]
            fn any_duration_text_parses_or_is_none(text in "\\PC{0,12}") {
                let _ = parse_duration(&text);
                let _ = parse_millis(&text);
            }
        }
    }
}
