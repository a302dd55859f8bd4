//! Option parsing and validation, the counterpart of postgres_fdw's option.c.
//!
//! Pure logic: the FDW validator and the scan both call into this module with plain
//! `(name, value)` pairs, so it is unit-tested without Postgres.

use std::fmt;
use std::time::Duration;

use crate::aggregate::{self, AggregatorOptions, OnError};
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

/// Options of a foreign server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerOptions {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub connect_timeout: Duration,
    /// The whole GetCallerIdentity operation, retries and credential loading included.
    pub timeout: Duration,
    /// Attempts per call, the first included (`max_error_retry_attempts`).
    pub max_attempts: u32,
    /// The backoff before the first retry (`min_error_retry_delay`).
    pub min_retry_delay: Duration,
    /// Whether answers are cached in the backend (`cache`), and for how long (`cache_ttl`).
    pub cache: bool,
    pub cache_ttl: Duration,
}

impl ServerOptions {
    /// Whether a scan may be answered from the backend's identity cache.
    pub fn caching(&self) -> bool {
        self.cache && !self.cache_ttl.is_zero()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            region: None,
            endpoint_url: None,
            profile: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_retry_delay: DEFAULT_MIN_RETRY_DELAY,
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
/// `is_superuser` is whether the user running the command is a superuser.
pub fn validate(
    catalog: Catalog,
    options: &[(String, String)],
    is_superuser: bool,
) -> Result<(), FdwError> {
    for (name, _) in options {
        check_known(catalog, name)?;
    }
    match catalog {
        Catalog::Server => parse_server_kind(options).map(drop),
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
            Ok(())
        }
        Catalog::Column => parse_column(options).map(drop),
        Catalog::Wrapper | Catalog::ForeignTable => Ok(()),
    }
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

/// Parses and validates server options. Unknown names are rejected.
pub fn parse_server(options: &[(String, String)]) -> Result<ServerOptions, FdwError> {
    for (name, _) in options {
        check_known(Catalog::Server, name)?;
    }
    let mut parsed = ServerOptions::default();
    if let Some(region) = find(options, "region") {
        if !is_region_name(region) {
            return Err(invalid_value(
                "region",
                region,
                "not an AWS region name",
                "Use a region code such as us-east-1, eu-west-2 or us-gov-west-1.",
            ));
        }
        parsed.region = Some(region.to_string());
    }
    if let Some(url) = find(options, "endpoint_url") {
        check_endpoint_url(url)?;
        parsed.endpoint_url = Some(url.trim_end_matches('/').to_string());
    }
    if let Some(profile) = find(options, "profile") {
        if profile.is_empty() || profile.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid_value(
                "profile",
                profile,
                "a profile name is not empty and has no spaces",
                "Name a profile from the database server's ~/.aws/config or ~/.aws/credentials.",
            ));
        }
        parsed.profile = Some(profile.to_string());
    }
    if let Some(value) = find(options, "connect_timeout") {
        parsed.connect_timeout = parse_timeout("connect_timeout", value)?;
    }
    if let Some(value) = find(options, "timeout") {
        parsed.timeout = parse_timeout("timeout", value)?;
    }
    if let Some(value) = find(options, "max_error_retry_attempts") {
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
        };
    }
    if let Some(value) = find(options, "min_error_retry_delay") {
        parsed.min_retry_delay =
            match parse_millis(value) {
                Some(delay) if !delay.is_zero() && delay <= MAX_TIMEOUT => delay,
                _ => return Err(invalid_value(
                    "min_error_retry_delay",
                    value,
                    "not a delay above 0 and at most 1h",
                    "Give milliseconds ('25', as Steampipe) or a value with a unit ('25ms', '1s').",
                )),
            };
    }
    if let Some(value) = find(options, "cache") {
        parsed.cache = parse_bool(value).ok_or_else(|| {
            invalid_value("cache", value, "not a boolean", "Use 'true' or 'false'.")
        })?;
    }
    if let Some(value) = find(options, "cache_ttl") {
        parsed.cache_ttl =
            match parse_duration(value) {
                Some(ttl) if ttl <= MAX_CACHE_TTL => ttl,
                _ => return Err(invalid_value(
                    "cache_ttl",
                    value,
                    "not a duration from 0 to 24h",
                    "Give seconds ('300') or a value with a unit ('5min'); '0' turns caching off.",
                )),
            };
    }
    Ok(parsed)
}

/// Parses and validates user mapping options.
pub fn parse_user_mapping(options: &[(String, String)]) -> Result<UserMappingOptions, FdwError> {
    for (name, _) in options {
        check_known(Catalog::UserMapping, name)?;
    }
    for name in ["access_key", "secret_key", "session_token"] {
        if let Some(value) = find(options, name) {
            if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
                return Err(invalid_value(
                    name,
                    value,
                    "must be non-empty printable ASCII without spaces",
                    "Copy the value exactly as AWS issued it.",
                ));
            }
        }
    }
    let access_key = find(options, "access_key");
    let secret_key = find(options, "secret_key");
    let session_token = find(options, "session_token");
    let keys = match (access_key, secret_key) {
        (Some(access_key_id), Some(secret_access_key)) => Some(StaticKeys {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
        }),
        (None, None) if session_token.is_none() => None,
        _ => {
            let (present, missing) = match (access_key, secret_key) {
                (Some(_), None) => ("access_key", "secret_key"),
                (None, Some(_)) => ("secret_key", "access_key"),
                _ => ("session_token", "access_key and secret_key"),
            };
            return Err(FdwError::new(
                SqlState::OptionNameNotFound,
                format!("option \"{present}\" requires {missing} in the same user mapping"),
            )
            .with_hint("Give access_key and secret_key together (and session_token for temporary credentials), or none of them to use the default credential chain."));
        }
    };
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
        let err = validate(Catalog::Server, &opts(&[("access_key", "AKIA")]), true).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidOptionName);
        assert_eq!(
            err.hint.as_deref(),
            Some("\"access_key\" is an option of a user mapping, not of a server.")
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
