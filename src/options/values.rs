//! Single option values parsed and checked: booleans, durations, regions, URLs, keys, role ARNs.

use std::time::Duration;

use super::table::is_secret;
use super::MAX_TIMEOUT;
use crate::error::{FdwError, Remedy, SqlState};

pub(super) fn invalid_value(name: &str, value: &str, why: &str, hint: &str) -> FdwError {
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

pub(super) fn find<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

const GLOBAL_REGION: &str = "aws-global";

/// A region code, or `aws-global`: the SDK's pseudo-region for STS's global endpoint
/// (https://sts.amazonaws.com, signed for us-east-1), which the endpoint rules know.
pub(super) fn parse_region(name: &str, value: &str) -> Result<String, FdwError> {
    if !is_region_name(value) && value != GLOBAL_REGION {
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
pub(super) fn parse_region_patterns(value: &str) -> Result<Vec<String>, FdwError> {
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
pub(super) fn parse_error_codes(value: &str) -> Result<Vec<String>, FdwError> {
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

/// arn:<partition>:iam::<12 digits>:role/<path/>name
pub(super) fn is_role_arn(arn: &str) -> bool {
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

pub(super) fn check_key_text(name: &str, value: &str) -> Result<(), FdwError> {
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

/// Postgres-style boolean spellings.
pub(super) fn parse_bool(value: &str) -> Option<bool> {
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

pub(super) fn check_endpoint_url(url: &str) -> Result<(), FdwError> {
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
        )
        .with_remedy(Remedy::KeysOutOfUrl));
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
pub(super) fn parse_millis(value: &str) -> Option<Duration> {
    match value.trim().parse::<u64>() {
        Ok(millis) => Some(Duration::from_millis(millis)),
        Err(_) => parse_duration(value)
            .filter(|_| value.trim().ends_with(|c: char| c.is_ascii_alphabetic())),
    }
}

pub(super) fn parse_timeout(name: &str, value: &str) -> Result<Duration, FdwError> {
    let hint = "Give seconds ('2', '0.5') or a value with a unit ('500ms', '2s', '1min'), above 0 and at most 1h.";
    match parse_duration(value) {
        Some(duration) if !duration.is_zero() && duration <= MAX_TIMEOUT => Ok(duration),
        Some(_) => Err(invalid_value(name, value, "out of range", hint)),
        None => Err(invalid_value(name, value, "not a duration", hint)),
    }
}

/// `ca_bundle`: the absolute path of a PEM file (read when a request first needs it, so that
/// a missing file is an error that names it at call time, not here).
pub(super) fn check_ca_bundle(path: &str) -> Result<String, FdwError> {
    let hint = "Give the absolute path of a PEM file of CA certificates, such as \
                /etc/ssl/certs/corporate-ca.pem.";
    if path.is_empty() || path.chars().any(char::is_control) {
        return Err(invalid_value("ca_bundle", path, "not a file path", hint));
    }
    if !path.starts_with('/') {
        return Err(invalid_value(
            "ca_bundle",
            path,
            "not an absolute path",
            hint,
        ));
    }
    Ok(path.to_string())
}

/// `proxy_url`: http://host:port, without user information (a server's options are no place
/// for a password), path, query or fragment.
pub(super) fn check_proxy_url(url: &str) -> Result<String, FdwError> {
    let hint = "Give the proxy as http://host:port, such as http://proxy.example.com:3128.";
    let Some(rest) = url.strip_prefix("http://") else {
        let why = if url.starts_with("https://") {
            "aws_sts talks to a proxy in plain HTTP (HTTPS requests go through a CONNECT tunnel)"
        } else {
            "must start with http://"
        };
        return Err(invalid_value("proxy_url", url, why, hint));
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.contains('@') {
        // The value is not echoed: it holds a password, most likely.
        return Err(FdwError::new(
            SqlState::InvalidAttributeValue,
            "invalid value for option \"proxy_url\": user information in the URL is not allowed",
        )
        .with_hint(
            "Anyone who can read the options would read the proxy's password. Give the proxy's \
             credentials in HTTPS_PROXY (http://user:password@host:port) in the environment \
             instead, and leave proxy_url unset.",
        ));
    }
    if authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid_value("proxy_url", url, "not a valid URL", hint));
    }
    if !path.is_empty() && path != "/" {
        return Err(invalid_value(
            "proxy_url",
            url,
            "a proxy URL has no path, query or fragment",
            hint,
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid_value("proxy_url", url, "not a valid URL", hint));
    }
    match port.map(str::parse::<u16>) {
        Some(Ok(port)) if port > 0 => Ok(format!("http://{authority}")),
        None => Err(invalid_value("proxy_url", url, "the URL has no port", hint)),
        Some(_) => Err(invalid_value(
            "proxy_url",
            url,
            "the port is not a number from 1 to 65535",
            hint,
        )),
    }
}
