//! Option lists parsed into a server (connection or aggregator), a user mapping or a column.

use std::time::Duration;

use super::patterns::MessagePatterns;
use super::table::{check_known, AGGREGATOR_OPTIONS};
use super::values::{
    check_ca_bundle, check_endpoint_url, check_key_text, check_proxy_url, find, invalid_value,
    is_role_arn, parse_bool, parse_duration, parse_error_codes, parse_millis, parse_region,
    parse_region_patterns, parse_timeout,
};
use super::{
    AssumeRole, Catalog, ColumnOptions, ServerKind, ServerOptions, StaticKeys, UserMappingOptions,
    DEFAULT_ROLE_SESSION_NAME, MAX_ATTEMPTS, MAX_CACHE_TTL, MAX_TIMEOUT,
};
use crate::aggregate::{self, AggregatorOptions, OnError};
use crate::config;
use crate::error::{FdwError, Remedy, SqlState};

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
                        )
                        .with_remedy(Remedy::NameProfile));
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
                "ignore_error_messages" => parsed.ignore_error_messages = MessagePatterns::parse(value)?,
                "use_fips_endpoint" => {
                    parsed.use_fips = Some(parse_bool(value).ok_or_else(|| {
                        invalid_value("use_fips_endpoint", value, "not a boolean", "Use 'true' or 'false'.")
                    })?)
                }
                "use_dualstack_endpoint" => {
                    parsed.use_dual_stack = Some(parse_bool(value).ok_or_else(|| {
                        invalid_value("use_dualstack_endpoint", value, "not a boolean", "Use 'true' or 'false'.")
                    })?)
                }
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
                // How requests leave the database server.
                "ca_bundle" => parsed.ca_bundle = Some(check_ca_bundle(value)?),
                "proxy_url" => parsed.proxy_url = Some(check_proxy_url(value)?),
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
    check_custom_endpoint(
        given("endpoint_url"),
        [
            ("use_fips_endpoint", parsed.use_fips, "FIPS"),
            (
                "use_dualstack_endpoint",
                parsed.use_dual_stack,
                "dual-stack",
            ),
        ],
    )?;
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

/// The SDK's endpoint rules refuse FIPS and dual-stack with a custom endpoint ("FIPS and
/// custom endpoint are not supported"): say so when the server is created, not at its
/// first query.
fn check_custom_endpoint(
    endpoint_url: Option<&Given>,
    variants: [(&str, Option<bool>, &str); 2],
) -> Result<(), FdwError> {
    let Some(endpoint_url) = endpoint_url else {
        return Ok(());
    };
    match variants.iter().find(|(_, on, _)| *on == Some(true)) {
        Some((name, _, variant)) => Err(endpoint_url.locate(
            FdwError::new(
                SqlState::InvalidOptionName,
                format!(
                    "options \"endpoint_url\" and \"{name}\" cannot be combined: a custom endpoint has no {variant} variant"
                ),
            )
            .with_hint(format!(
                "Give the {variant} endpoint itself as endpoint_url, or leave endpoint_url out to have the SDK choose the region's {variant} endpoint."
            )),
        )),
        None => Ok(()),
    }
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
