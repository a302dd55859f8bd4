//! AWS and transport errors explained as [`FdwError`]s that say what to fix.

use std::error::Error as StdError;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;

use super::ambient::Ambient;
use super::credentials::INSTANCE_METADATA_BUDGET;
use super::http::{human_size, AnswerTooLarge, MAX_RESPONSE_BYTES};
use super::transport::{ProxyFailure, TransportError, CA_BUNDLE_VARIABLE};
use super::{human_duration, ConnectionSettings};
use crate::error::{FdwError, Remedy, SqlState};

/// The Postgres way to give keys, for hints; `<server>` becomes the server's name.
const CREATE_MAPPING: &str = "CREATE USER MAPPING FOR CURRENT_USER SERVER <server> \
                              OPTIONS (access_key '...', secret_key '...')";

/// Says how many attempts a failed call made, when it made more than one.
pub(super) fn with_attempts(mut error: FdwError, attempts: u32, max_attempts: u32) -> FdwError {
    if attempts > 1 {
        error.message = format!("{} after {attempts} attempts", error.message);
    }
    let attempts_line =
        format!("{attempts} of at most {max_attempts} attempts (max_error_retry_attempts) made.");
    error.detail = Some(match error.detail.take() {
        Some(detail) => format!("{detail}\n{attempts_line}"),
        None => attempts_line,
    });
    error
}

pub(super) fn timed_out(timeout: Duration, endpoint: &str) -> FdwError {
    FdwError::new(
        SqlState::UnableToEstablishConnection,
        format!("GetCallerIdentity at {endpoint} did not finish within the timeout of {}", human_duration(timeout)),
    )
    .with_hint("Check that the endpoint is reachable from the database server, or raise the server's timeout option.")
    .with_remedy(Remedy::RaiseTimeout)
}

/// No endpoint for the settings: the SDK's endpoint rules refused them (`why`, in its words:
/// FIPS or dual-stack with a custom endpoint, a region that is no host label, a partition
/// without that variant), so no request was sent.
pub(super) fn no_endpoint(region: &str, why: &str) -> FdwError {
    FdwError::new(
        SqlState::UnableToEstablishConnection,
        format!("no STS endpoint for region {region}: {why}"),
    )
    .with_hint(
        "A custom endpoint (endpoint_url, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS) has no FIPS or dual-stack \
         variant: turn off use_fips_endpoint and use_dualstack_endpoint (or AWS_USE_FIPS_ENDPOINT and \
         AWS_USE_DUALSTACK_ENDPOINT), or leave the custom endpoint out; else check the region.",
    )
}

/// What aws-config's errors about a `credential_process` all say; they may quote the
/// process's output, which only trusted users may see.
const PROCESS_MARK: &str = "external process";

/// How much of a credential_process's error output a message keeps: its first line, cut.
const PROCESS_OUTPUT_CHARS: usize = 200;

/// An error's text with a failed credential_process's error output cut to its first line
/// (aws-config quotes all of it after "Stderr:"), at most [`PROCESS_OUTPUT_CHARS`] long.
fn shorten_process_output(text: &str) -> String {
    let Some((before, output)) = text
        .split_once("Stderr:")
        .filter(|_| text.contains(PROCESS_MARK))
    else {
        return text.to_string();
    };
    let before = before.trim_end();
    match output.lines().map(str::trim).find(|line| !line.is_empty()) {
        Some(line) if line.chars().count() > PROCESS_OUTPUT_CHARS => {
            let cut: String = line.chars().take(PROCESS_OUTPUT_CHARS).collect();
            format!("{before} Its error output began: {cut}...")
        }
        Some(line) => format!("{before} Its error output began: {line}"),
        None => format!("{before} It wrote no error output."),
    }
}

/// An error and its sources as one line of their messages, each said once.
fn describe_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = shorten_process_output(&error.to_string())
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// Finds an error of type `T` anywhere in an error's source chain.
fn find_in_chain<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// The SDK's error for a GetCallerIdentity call.
pub(super) type CallError =
    SdkError<GetCallerIdentityError, aws_smithy_runtime_api::http::Response>;

/// Whether credentials failed to load (so that [`Ambient`] is worth looking at).
pub(super) fn concerns_credentials(error: &CallError) -> bool {
    find_in_chain::<CredentialsError>(error).is_some()
}

/// Explains a failed call. `ambient` is what the process's AWS setup lacks, looked at when
/// credentials failed to load ([`concerns_credentials`]), else empty.
pub(super) fn explain_sdk_error(
    error: CallError,
    settings: &ConnectionSettings,
    endpoint: &str,
    ambient: &Ambient,
) -> FdwError {
    let chain = describe_chain(&error);
    let credentials_error = find_in_chain::<CredentialsError>(&error);
    let explained = if let Some(too_large) = find_in_chain::<AnswerTooLarge>(&error) {
        // A credential provider's answer comes from its own endpoint (AssumeRole's from the
        // server's, instance metadata's or SSO's from theirs): name the one that answered.
        let from = match credentials_error {
            Some(_) => too_large.origin.as_str(),
            None => endpoint,
        };
        answer_too_large(too_large, from)
    } else if let Some(transport) = find_in_chain::<TransportError>(&error) {
        explain_transport_error(transport, settings)
    } else if let Some(credentials_error) = credentials_error {
        explain_credentials_error(credentials_error, settings, &chain, endpoint, ambient)
    } else {
        match &error {
            // An answer the SDK could not read as GetCallerIdentity nor as an AWS error.
            SdkError::ServiceError(service) if service.err().code().is_none() => FdwError::new(
                SqlState::UnableToCreateReply,
                format!("could not understand the answer from {endpoint}"),
            )
            .with_detail(format!("HTTP status {}: {chain}", service.raw().status().as_u16()))
            .with_hint("Check that endpoint_url points at an STS endpoint."),
            SdkError::ServiceError(service) => explain_service_error(service.err(), endpoint),
            SdkError::TimeoutError(_) => timed_out(settings.server.timeout, endpoint),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => FdwError::new(
                SqlState::UnableToEstablishConnection,
                format!(
                    "could not connect to {endpoint} within the connect_timeout of {}",
                    human_duration(settings.server.connect_timeout)
                ),
            )
            .with_detail(chain)
            .with_hint("Check the server's endpoint_url and region, and the database server's network.")
            .with_remedy(Remedy::ReachEndpoint),
            SdkError::DispatchFailure(_) => FdwError::new(
                SqlState::UnableToEstablishConnection,
                format!("could not reach the STS endpoint {endpoint}"),
            )
            .with_detail(chain)
            .with_hint("Check the server's endpoint_url and region, and that the endpoint is reachable from the database server.")
            .with_remedy(Remedy::ReachEndpoint),
            SdkError::ResponseError(_) => FdwError::new(
                SqlState::UnableToCreateReply,
                format!("could not understand the answer from {endpoint}"),
            )
            .with_detail(chain)
            .with_hint("Check that endpoint_url points at an STS endpoint."),
            _ => FdwError::new(SqlState::FdwError, "GetCallerIdentity failed").with_detail(chain),
        }
    };
    privileged_if_process_output(explained).redacted(&settings.secrets())
}

/// Marks the detail privileged when it quotes a credential_process (see
/// [`FdwError::detail_is_privileged`]).
fn privileged_if_process_output(mut error: FdwError) -> FdwError {
    if error
        .detail
        .as_deref()
        .is_some_and(|detail| detail.contains(PROCESS_MARK))
    {
        error.detail_is_privileged = true;
    }
    error
}

/// An answer past [`MAX_RESPONSE_BYTES`]: never an STS answer, so never retried.
fn answer_too_large(too_large: &AnswerTooLarge, from: &str) -> FdwError {
    let limit = human_size(MAX_RESPONSE_BYTES);
    let detail = match too_large.announced {
        Some(length) => format!(
            "It announced {length} bytes (Content-Length); aws_sts reads at most {MAX_RESPONSE_BYTES} bytes of an answer, so it refused this one before its body."
        ),
        None => format!(
            "More than {MAX_RESPONSE_BYTES} bytes arrived; aws_sts stopped reading there and closed the connection."
        ),
    };
    FdwError::new(
        SqlState::UnableToCreateReply,
        format!("the answer from {from} is larger than {limit}"),
    )
    .with_detail(detail)
    .with_hint("An STS answer is a few KiB: check that endpoint_url points at an STS endpoint, not at a download or a proxy that answers with something else.")
}

/// A CA bundle, a certificate or a proxy stood in the way; none of them is retried but an
/// unreachable proxy (as an unreachable endpoint is).
fn explain_transport_error(error: &TransportError, settings: &ConnectionSettings) -> FdwError {
    let unreachable =
        |message: String| FdwError::new(SqlState::UnableToEstablishConnection, message);
    match error {
        TransportError::CaBundle { .. } => unreachable(error.to_string()).with_hint(format!(
            "Name a PEM file of CA certificates that aws_sts can read, in ca_bundle or in \
             {CA_BUNDLE_VARIABLE}; without either, the system's CAs are trusted."
        )),
        TransportError::Tls {
            origin,
            host,
            proxy,
            trust,
            error: tls,
            ..
        } => {
            let problem = certificate_problem(tls, host);
            let mut detail = format!("rustls: {tls}.");
            if problem.is_some() {
                detail.push_str(&format!(" Trusted: {trust}."));
            }
            if let Some(proxy) = proxy {
                detail.push_str(&format!(" The connection went through proxy {proxy}."));
            }
            detail.push_str(match problem {
                Some(_) => " Not retried: another attempt would meet the same certificate.",
                None => " Not retried: another attempt would meet the same answer.",
            });
            let Some((code, what)) = problem else {
                return unreachable(format!("the TLS handshake with {origin} failed"))
                    .with_detail(detail)
                    .with_hint(
                        "Check that the endpoint speaks HTTPS (write endpoint_url with http:// for \
                         one that does not) and accepts TLS 1.2 or 1.3.",
                    );
            };
            let hint = match code {
                "UnknownIssuer" => format!(
                    "If {host}'s certificate comes from a private CA (or a proxy that inspects \
                     TLS), name that CA's PEM file in ca_bundle, or in {CA_BUNDLE_VARIABLE} in \
                     the environment."
                ),
                "Expired" | "NotValidYet" => "Have the endpoint's certificate renewed, or check \
                     this machine's clock; ca_bundle only chooses the CAs trusted."
                    .to_string(),
                "NotValidForName" => format!(
                    "Give endpoint_url a host name the certificate lists (see the detail), or have \
                     the certificate issued for {host}; ca_bundle only chooses the CAs trusted."
                ),
                _ => format!(
                    "Check the endpoint's certificate, and the CAs trusted (ca_bundle, \
                     {CA_BUNDLE_VARIABLE})."
                ),
            };
            unreachable(format!("the certificate of {origin} {what} ({code})"))
                .with_detail(detail)
                .with_hint(hint)
        }
        TransportError::Proxy {
            named_by, failure, ..
        } => {
            let message = match failure {
                ProxyFailure::Timeout => format!(
                    "{error} (the connect_timeout of {})",
                    human_duration(settings.server.connect_timeout)
                ),
                _ => error.to_string(),
            };
            let check = if *named_by == "proxy_url" {
                "Check proxy_url".to_string()
            } else {
                format!("Check {named_by} in the environment (or list the host in NO_PROXY)")
            };
            let hint = match failure {
                ProxyFailure::Connect | ProxyFailure::Timeout => {
                    format!("{check}, and that the proxy runs and is reachable.")
                }
                ProxyFailure::TunnelRefused | ProxyFailure::Tunnel => format!(
                    "{check}; the proxy must allow CONNECT to the endpoint's host and port."
                ),
                ProxyFailure::AuthenticationRequired => format!(
                    "Give the proxy's credentials in {} in the environment \
                     (http://user:password@host:port); proxy_url takes none.",
                    if *named_by == "proxy_url" {
                        "HTTPS_PROXY"
                    } else {
                        named_by
                    }
                ),
                ProxyFailure::Unusable => format!(
                    "aws_sts talks to a proxy in plain HTTP (HTTPS requests go through a CONNECT \
                     tunnel): give an http:// URL in {named_by}, or set proxy_url."
                ),
            };
            let mut explained = unreachable(message).with_hint(hint);
            if let Some(cause) = std::error::Error::source(error) {
                explained = explained.with_detail(describe_chain(cause));
            }
            explained
        }
    }
}

/// What is wrong with a rejected certificate, and rustls' name for it; `None` when the
/// handshake failed for another reason.
fn certificate_problem(error: &rustls::Error, host: &str) -> Option<(&'static str, String)> {
    use rustls::CertificateError as Problem;
    let rustls::Error::InvalidCertificate(problem) = error else {
        return None;
    };
    Some(match problem {
        Problem::UnknownIssuer => ("UnknownIssuer", "is not issued by a trusted CA".into()),
        Problem::Expired | Problem::ExpiredContext { .. } => ("Expired", "has expired".into()),
        Problem::NotValidYet | Problem::NotValidYetContext { .. } => {
            ("NotValidYet", "is not valid yet".into())
        }
        Problem::NotValidForName | Problem::NotValidForNameContext { .. } => (
            "NotValidForName",
            format!("is not valid for the name {host}"),
        ),
        Problem::Revoked => ("Revoked", "has been revoked".into()),
        Problem::BadSignature => ("BadSignature", "has a bad signature".into()),
        Problem::BadEncoding => ("BadEncoding", "could not be parsed".into()),
        Problem::InvalidPurpose | Problem::InvalidPurposeContext { .. } => {
            ("InvalidPurpose", "is not meant for a TLS server".into())
        }
        _ => ("InvalidCertificate", "was rejected".into()),
    })
}

/// Why credentials could not be had: no source had any, AssumeRole failed (with its AWS
/// code, for `ignore_error_codes`), an SSO session is missing or expired, or another
/// source failed.
fn explain_credentials_error(
    error: &CredentialsError,
    settings: &ConnectionSettings,
    chain: &str,
    endpoint: &str,
    ambient: &Ambient,
) -> FdwError {
    let tried = credential_source_hint(settings);
    if let (Some(role), Some(assume_error)) = (
        &settings.server.assume_role,
        find_in_chain::<AssumeRoleError>(error),
    ) {
        let code = assume_error.code().unwrap_or("unknown error");
        let remedy = match code {
            "ExpiredToken" | "ExpiredTokenException" => Some(Remedy::RenewKeys),
            "InvalidClientTokenId" | "SignatureDoesNotMatch" => Some(Remedy::CheckKeys),
            _ => None,
        };
        let hint = match code {
            "AccessDenied" => "Check that the role's trust policy lets the source identity assume it, and that external_id matches what it expects.",
            "ExpiredToken" | "ExpiredTokenException" => "The source credentials have expired: renew the keys in the user mapping (session_token too).",
            "InvalidClientTokenId" | "SignatureDoesNotMatch" => "AWS does not accept the source credentials: check access_key, secret_key and session_token.",
            "ValidationError" => "Check role_arn, role_session_name and duration_seconds (at most the role's maximum session duration).",
            _ => "See the AWS error in the detail.",
        };
        let mut explained = FdwError::new(
            SqlState::UnableToEstablishConnection,
            format!("could not assume role {} ({code})", role.role_arn),
        )
        .with_detail(format!(
            "AWS error {code}: {} (endpoint {endpoint}; source credentials: {tried})",
            assume_error.message().unwrap_or("no message")
        ))
        .with_hint(hint)
        .with_aws_code(code);
        if let Some(message) = assume_error.message() {
            explained = explained.with_aws_message(message);
        }
        return match remedy {
            Some(remedy) => explained.with_remedy(remedy),
            None => explained,
        };
    }
    // aws-config's SSO providers say "SSO" and name the ~/.aws/sso/cache token file.
    if settings.keys.is_none() && (chain.contains("SSO") || chain.contains(".aws/sso/")) {
        let profile = settings.server.profile.as_deref().unwrap_or("default");
        return FdwError::new(
            SqlState::UnableToEstablishConnection,
            format!("the AWS SSO session of profile \"{profile}\" is missing or has expired"),
        )
        .with_detail(chain.to_string())
        .with_hint(format!(
            "Sign in again as the database server's OS user: aws sso login --profile {profile}; \
             or put keys in a user mapping."
        ))
        .with_remedy(Remedy::SsoLogin(profile.to_string()));
    }
    match error {
        CredentialsError::CredentialsNotLoaded(_) => {
            explain_not_loaded(ambient, &format!("Tried: {tried}. {chain}"))
        }
        _ => FdwError::new(SqlState::UnableToEstablishConnection, "could not load AWS credentials")
            .with_detail(format!("Tried: {tried}. {chain}"))
            .with_hint("Check the database server's AWS configuration (the profile's settings), or put keys in a user mapping.")
            .with_remedy(Remedy::CheckAwsConfiguration),
    }
}

/// No source had credentials: what is missing, when the process's setup shows it, else
/// the sources tried.
fn explain_not_loaded(ambient: &Ambient, tried: &str) -> FdwError {
    let no_credentials =
        |message: String| FdwError::new(SqlState::UnableToEstablishConnection, message);
    if let Some(profile) = &ambient.profile {
        let name = &profile.name;
        let (config, credentials) = (&profile.config_file, &profile.credentials_file);
        if !profile.defined {
            let (named_by, fix) = if profile.from_environment {
                (
                    " (AWS_PROFILE)",
                    "correct AWS_PROFILE in the database server's environment",
                )
            } else {
                ("", "name a defined profile in the server's options")
            };
            return no_credentials(format!(
                "no AWS credentials found: profile \"{name}\" is not defined"
            ))
            .with_detail(format!(
                "Profile \"{name}\"{named_by} is in neither the shared config file ({config}) \
                 nor the shared credentials file ({credentials}). {tried}"
            ))
            .with_hint(format!(
                "Define it in the database server's {config} ([profile {name}]) or {credentials} \
                 ([{name}]), {fix}, or put keys in a user mapping: {CREATE_MAPPING}."
            ))
            .with_remedy(Remedy::DefineProfile(name.clone()));
        }
        if !profile.from_environment {
            return no_credentials("no AWS credentials found".into())
                .with_detail(format!(
                    "Profile \"{name}\" is defined but gives no credentials. {tried}"
                ))
                .with_hint(format!(
                    "Give the profile credentials in the database server's {config} or \
                     {credentials} (keys, role_arn with source_profile, credential_process or \
                     SSO), or put keys in a user mapping: {CREATE_MAPPING}."
                ))
                .with_remedy(Remedy::ProvideKeys);
        }
    }
    if let Some((set, unset)) = ambient.half_key_pair {
        return no_credentials("no AWS credentials found".into())
            .with_detail(format!("The environment has {set} but no {unset}. {tried}"))
            .with_hint(format!(
                "Set {unset} in the database server's environment too (or unset {set}), or put \
                 keys in a user mapping: {CREATE_MAPPING}."
            ))
            .with_remedy(Remedy::CompleteEnvironmentKeys(unset.to_string()));
    }
    no_credentials("no AWS credentials found".into())
        .with_detail(tried)
        .with_hint(format!(
            "Create a user mapping with keys: {CREATE_MAPPING}; or give the database server's OS \
             user AWS credentials (environment, ~/.aws/credentials, the profile option)."
        ))
        .with_remedy(Remedy::ProvideKeys)
}

fn explain_service_error(error: &GetCallerIdentityError, endpoint: &str) -> FdwError {
    let code = error.code().unwrap_or("unknown error");
    let message = error.message().unwrap_or("no message");
    let detail = format!("AWS error {code}: {message}");
    let (summary, hint) = match code {
        // A request signed more than 5 minutes from AWS's time: AWS answers RequestExpired,
        // RequestTimeTooSkewed or SignatureDoesNotMatch "Signature expired", whatever the keys.
        _ if clock_skewed(code, message) => (
            "AWS rejected the request's time: the clock of the machine aws_sts runs on is off",
            "Synchronise that machine's clock (NTP, chrony): AWS accepts requests signed within 5 minutes of its time.",
        ),
        "InvalidClientTokenId" | "UnrecognizedClientException" => (
            "AWS does not recognise the access key or session token",
            "Check access_key and session_token in the user mapping, or the credentials the default chain found.",
        ),
        "SignatureDoesNotMatch" | "IncompleteSignature" => (
            "AWS rejected the request signature: the secret key does not match the access key",
            "Check secret_key in the user mapping.",
        ),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => (
            "the AWS credentials have expired",
            "Renew the temporary credentials: ALTER USER MAPPING ... OPTIONS (SET access_key '...', SET secret_key '...', SET session_token '...').",
        ),
        "AccessDenied" | "AccessDeniedException" => (
            "AWS denied GetCallerIdentity",
            "GetCallerIdentity needs no permission; a denial usually means a service control policy or an endpoint policy blocks STS.",
        ),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => (
            "AWS throttled GetCallerIdentity",
            "Retry later.",
        ),
        _ => ("STS GetCallerIdentity failed", "See the AWS error in the detail."),
    };
    let state = match code {
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => SqlState::FdwError,
        _ if summary.starts_with("STS") => SqlState::FdwError,
        _ => SqlState::UnableToEstablishConnection,
    };
    let mut explained = FdwError::new(state, format!("{summary} ({code})"))
        .with_detail(format!("{detail} (endpoint {endpoint})"))
        .with_hint(hint)
        .with_aws_code(code);
    if let Some(message) = error.message() {
        explained = explained.with_aws_message(message);
    }
    match code {
        _ if clock_skewed(code, message) => explained,
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature" => explained.with_remedy(Remedy::CheckKeys),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            explained.with_remedy(Remedy::RenewKeys)
        }
        _ => explained,
    }
}

/// Whether AWS refused the request for its timestamp (the machine's clock), not its keys.
fn clock_skewed(code: &str, message: &str) -> bool {
    matches!(code, "RequestExpired" | "RequestTimeTooSkewed")
        || (code == "SignatureDoesNotMatch" && message.starts_with("Signature expired"))
        || (code == "InvalidSignatureException" && message.starts_with("Signature expired"))
}

/// The credential sources tried, for the "no credentials" detail.
fn credential_source_hint(settings: &ConnectionSettings) -> String {
    if settings.keys.is_some() {
        return if settings.keys_from_server() {
            "the server's keys".to_string()
        } else {
            "the user mapping's keys".to_string()
        };
    }
    match &settings.server.profile {
        Some(profile) => {
            format!("profile \"{profile}\" in the shared config and credentials files")
        }
        None if settings.server.instance_metadata => format!(
            "environment variables, shared config and credentials files, web identity token, \
             ECS container credentials, EC2 instance metadata (at most {})",
            human_duration(INSTANCE_METADATA_BUDGET)
        ),
        None => "environment variables, shared config and credentials files, web identity token, \
                 ECS container credentials (instance_metadata is off)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_calls_say_how_many_attempts_they_made() {
        let error = with_attempts(
            FdwError::new(SqlState::FdwError, "boom").with_detail("why"),
            3,
            9,
        );
        assert_eq!(error.message, "boom after 3 attempts");
        assert_eq!(
            error.detail.as_deref(),
            Some("why\n3 of at most 9 attempts (max_error_retry_attempts) made.")
        );
        let error = with_attempts(FdwError::new(SqlState::FdwError, "boom"), 1, 1);
        assert_eq!(error.message, "boom");
        assert_eq!(
            error.detail.as_deref(),
            Some("1 of at most 1 attempts (max_error_retry_attempts) made.")
        );
    }

    #[test]
    fn service_errors_say_what_to_fix() {
        let error = GetCallerIdentityError::generic(
            aws_sdk_sts::error::ErrorMetadata::builder()
                .code("ExpiredToken")
                .message("The security token included in the request is expired")
                .build(),
        );
        let explained = explain_service_error(&error, "http://127.0.0.1:1");
        assert_eq!(explained.state, SqlState::UnableToEstablishConnection);
        assert_eq!(
            explained.message,
            "the AWS credentials have expired (ExpiredToken)"
        );
        assert_eq!(explained.remedy.as_deref(), Some(&Remedy::RenewKeys));
        assert_eq!(explained.aws_code.as_deref(), Some("ExpiredToken"));
        // The message AWS sent, for ignore_error_messages.
        assert_eq!(
            explained.aws_message.as_deref(),
            Some("The security token included in the request is expired")
        );
        assert!(explained.hint.unwrap().contains("session_token"));
        let silent = GetCallerIdentityError::generic(
            aws_sdk_sts::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .build(),
        );
        assert_eq!(
            explain_service_error(&silent, "http://127.0.0.1:1").aws_message,
            None
        );
    }
}

#[cfg(test)]
mod tidy_tests {
    use super::super::ambient::ProfileLookup;
    use super::*;
    use crate::error::{assert_remedied, assert_tidy as tidy};

    /// Reads cleanly, and any Postgres-only hint comes with a remedy.
    fn assert_tidy(error: &FdwError) {
        tidy(error);
        assert_remedied(error);
    }
    use crate::options::{AssumeRole, ServerOptions, StaticKeys};
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn raw(status: u16) -> Response {
        Response::new(
            StatusCode::try_from(status).expect("a status"),
            SdkBody::empty(),
        )
    }

    /// Settings for each credential source the messages tell apart.
    fn all_settings() -> Vec<ConnectionSettings> {
        let keys = StaticKeys {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "example-secret".into(),
            session_token: None,
        };
        let role = AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            session_name: "s".into(),
            external_id: None,
            duration: None,
        };
        let profile = ServerOptions {
            profile: Some("prod".into()),
            ..ServerOptions::default()
        };
        let no_metadata = ServerOptions {
            instance_metadata: false,
            ..ServerOptions::default()
        };
        let server_keys = ServerOptions {
            keys: Some(keys.clone()),
            assume_role: Some(role.clone()),
            ..ServerOptions::default()
        };
        vec![
            ConnectionSettings::new(ServerOptions::default(), None),
            ConnectionSettings::new(no_metadata, None),
            ConnectionSettings::new(profile, None),
            ConnectionSettings::new(server_keys.clone(), None),
            ConnectionSettings::new(server_keys, Some(keys)),
        ]
    }

    /// What the process's setup may lack, each way the messages tell apart.
    fn ambients() -> Vec<Ambient> {
        let lookup = |defined, from_environment| {
            Some(ProfileLookup {
                name: "prod".into(),
                from_environment,
                defined,
                config_file: "~/.aws/config".into(),
                credentials_file: "~/.aws/credentials".into(),
            })
        };
        vec![
            Ambient::default(),
            Ambient {
                profile: lookup(false, false),
                half_key_pair: None,
            },
            Ambient {
                profile: lookup(false, true),
                half_key_pair: Some(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
            },
            Ambient {
                profile: lookup(true, false),
                half_key_pair: None,
            },
            Ambient {
                profile: lookup(true, true),
                half_key_pair: Some(("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
            },
        ]
    }

    #[test]
    fn missing_credentials_say_what_is_missing() {
        let tried = "Tried: profile \"prod\" in the shared config and credentials files.";
        let [none, missing, missing_from_environment, bare, half] =
            ambients().try_into().expect("five ambients");
        let plain = explain_not_loaded(&none, tried);
        assert_eq!(plain.message, "no AWS credentials found");
        assert_eq!(plain.detail.as_deref(), Some(tried));
        assert_eq!(plain.remedy.as_deref(), Some(&Remedy::ProvideKeys));

        let missing = explain_not_loaded(&missing, tried);
        assert_eq!(
            missing.message,
            "no AWS credentials found: profile \"prod\" is not defined"
        );
        assert!(missing.detail.unwrap().starts_with(
            "Profile \"prod\" is in neither the shared config file (~/.aws/config) nor the shared \
             credentials file (~/.aws/credentials). Tried:"
        ));
        assert!(missing.hint.unwrap().contains("SERVER <server> OPTIONS"));
        assert_eq!(
            missing.remedy.as_deref(),
            Some(&Remedy::DefineProfile("prod".into()))
        );
        // AWS_PROFILE is named first; the half key pair would be the next thing to fix.
        let from_environment = explain_not_loaded(&missing_from_environment, tried);
        assert!(from_environment
            .detail
            .unwrap()
            .contains("\"prod\" (AWS_PROFILE)"));
        assert!(from_environment
            .hint
            .unwrap()
            .contains("correct AWS_PROFILE"));

        let bare = explain_not_loaded(&bare, tried);
        assert!(bare
            .detail
            .unwrap()
            .starts_with("Profile \"prod\" is defined but gives no credentials."));
        // A defined AWS_PROFILE says nothing more; the half key pair does.
        let half = explain_not_loaded(&half, tried);
        assert!(half
            .detail
            .unwrap()
            .starts_with("The environment has AWS_SECRET_ACCESS_KEY but no AWS_ACCESS_KEY_ID."));
        assert_eq!(
            half.remedy.as_deref(),
            Some(&Remedy::CompleteEnvironmentKeys("AWS_ACCESS_KEY_ID".into()))
        );
    }

    #[test]
    fn a_skewed_clock_is_named_not_the_keys() {
        let endpoint = "http://127.0.0.1:1";
        for (code, message) in [
            ("RequestExpired", "Request has expired."),
            ("RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
            (
                "SignatureDoesNotMatch",
                "Signature expired: 20260101T000000Z is now earlier than 20261124T081000Z (20261124T081500Z - 5 min.)",
            ),
        ] {
            let error = GetCallerIdentityError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            );
            let explained = explain_service_error(&error, endpoint);
            assert!(explained.message.contains("clock"), "{explained:?}");
            assert!(explained.hint.as_deref().unwrap().contains("NTP"));
            assert_eq!(explained.state, SqlState::UnableToEstablishConnection);
            assert!(explained.remedy.is_none(), "no advice about keys: {explained:?}");
        }
        // A wrong secret key is still about the keys.
        let wrong = GetCallerIdentityError::generic(
            ErrorMetadata::builder()
                .code("SignatureDoesNotMatch")
                .message("The request signature we calculated does not match the signature you provided.")
                .build(),
        );
        assert!(explain_service_error(&wrong, endpoint)
            .message
            .contains("secret key"));
    }

    const CODES: [&str; 12] = [
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "RequestExpired",
        "AccessDenied",
        "Throttling",
        "ValidationError",
        "SomethingElse",
        "ExpiredTokenException",
        "RequestLimitExceeded",
    ];

    #[test]
    fn every_explanation_reads_cleanly() {
        let endpoint = "http://127.0.0.1:1";
        for code in CODES {
            let error = GetCallerIdentityError::generic(
                ErrorMetadata::builder().code(code).message("why").build(),
            );
            assert_tidy(&explain_service_error(&error, endpoint));
        }
        for settings in all_settings() {
            let sdk_errors: Vec<SdkError<GetCallerIdentityError, Response>> = vec![
                SdkError::timeout_error("slow"),
                SdkError::dispatch_failure(ConnectorError::io("refused".into())),
                SdkError::dispatch_failure(ConnectorError::timeout("connect".into())),
                SdkError::response_error("garbled", raw(200)),
                SdkError::construction_failure("bad request"),
                SdkError::service_error(
                    GetCallerIdentityError::generic(ErrorMetadata::builder().build()),
                    raw(500),
                ),
            ];
            for error in sdk_errors {
                assert_tidy(&with_attempts(
                    explain_sdk_error(error, &settings, endpoint, &Ambient::default()),
                    2,
                    9,
                ));
            }
            let credentials_errors = [
                CredentialsError::not_loaded("nothing here"),
                CredentialsError::not_loaded_no_source(),
                CredentialsError::provider_error("boom"),
                CredentialsError::invalid_configuration("bad"),
            ];
            for error in credentials_errors {
                for ambient in ambients() {
                    assert_tidy(&explain_credentials_error(
                        &error, &settings, "chain", endpoint, &ambient,
                    ));
                }
                assert_tidy(&explain_credentials_error(
                    &error,
                    &settings,
                    "failed to load SSO token from ~/.aws/sso/cache",
                    endpoint,
                    &Ambient::default(),
                ));
            }
            for code in CODES {
                let assume = AssumeRoleError::generic(
                    ErrorMetadata::builder().code(code).message("why").build(),
                );
                let error = CredentialsError::provider_error(
                    SdkError::<AssumeRoleError, Response>::service_error(assume, raw(403)),
                );
                let explained = explain_credentials_error(
                    &error,
                    &settings,
                    "chain",
                    endpoint,
                    &Ambient::default(),
                );
                if settings.server.assume_role.is_some() {
                    assert!(explained.message.starts_with("could not assume role"));
                    assert_eq!(explained.aws_code.as_deref(), Some(code));
                    assert_eq!(explained.aws_message.as_deref(), Some("why"));
                }
                assert_tidy(&explained);
            }
            assert_tidy(&timed_out(settings.server.timeout, endpoint));
            for error in transport_errors() {
                assert_tidy(&with_attempts(
                    explain_sdk_error(
                        SdkError::dispatch_failure(ConnectorError::user(Box::new(error))),
                        &settings,
                        endpoint,
                        &Ambient::default(),
                    ),
                    1,
                    9,
                ));
            }
        }
    }

    /// Every transport error, each way the messages tell apart.
    fn transport_errors() -> Vec<TransportError> {
        use rustls::CertificateError;
        let tls = |error: rustls::Error, proxy: Option<&str>| TransportError::Tls {
            origin: "https://sts.example.com".into(),
            host: "sts.example.com".into(),
            proxy: proxy.map(str::to_string),
            trust: "the system's CAs".into(),
            error,
            cause: Box::new(ConnectorError::io("handshake".into())),
        };
        let mut errors = vec![TransportError::CaBundle {
            path: "/etc/ssl/ca.pem".into(),
            named_by: "ca_bundle",
            problem: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        }];
        for problem in [
            CertificateError::UnknownIssuer,
            CertificateError::Expired,
            CertificateError::NotValidYet,
            CertificateError::NotValidForName,
            CertificateError::Revoked,
            CertificateError::BadSignature,
            CertificateError::BadEncoding,
            CertificateError::InvalidPurpose,
            CertificateError::UnhandledCriticalExtension,
        ] {
            errors.push(tls(rustls::Error::InvalidCertificate(problem), None));
        }
        errors.push(tls(
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            Some("http://proxy:3128 (HTTPS_PROXY)"),
        ));
        errors.push(tls(
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            None,
        ));
        for failure in [
            ProxyFailure::Connect,
            ProxyFailure::Timeout,
            ProxyFailure::TunnelRefused,
            ProxyFailure::AuthenticationRequired,
            ProxyFailure::Tunnel,
            ProxyFailure::Unusable,
        ] {
            for named_by in ["proxy_url", "https_proxy"] {
                errors.push(TransportError::Proxy {
                    proxy: "http://proxy:3128".into(),
                    named_by,
                    target: "sts.example.com:443".into(),
                    failure,
                    cause: (failure != ProxyFailure::Unusable)
                        .then(|| Box::new(ConnectorError::io("refused".into()))),
                });
            }
        }
        errors
    }

    #[test]
    fn transport_errors_say_what_stood_in_the_way() {
        let settings = ConnectionSettings::new(ServerOptions::default(), None);
        let explain = |error: TransportError| {
            explain_sdk_error(
                SdkError::dispatch_failure(ConnectorError::user(Box::new(error))),
                &settings,
                "https://sts.example.com",
                &Ambient::default(),
            )
        };
        let messages: Vec<String> = transport_errors()
            .into_iter()
            .map(|error| {
                let explained = explain(error);
                assert_eq!(explained.state, SqlState::UnableToEstablishConnection);
                assert_remedied(&explained);
                explained.message
            })
            .collect();
        for expected in [
            "could not use the CA bundle /etc/ssl/ca.pem (ca_bundle): it holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            "the certificate of https://sts.example.com is not issued by a trusted CA (UnknownIssuer)",
            "the certificate of https://sts.example.com has expired (Expired)",
            "the certificate of https://sts.example.com is not valid yet (NotValidYet)",
            "the certificate of https://sts.example.com is not valid for the name sts.example.com (NotValidForName)",
            "the certificate of https://sts.example.com was rejected (InvalidCertificate)",
            "the TLS handshake with https://sts.example.com failed",
            "could not connect to proxy http://proxy:3128 (proxy_url)",
            "could not connect to sts.example.com:443 through proxy http://proxy:3128 (https_proxy) in time (the connect_timeout of 3s)",
            "proxy http://proxy:3128 (proxy_url) refused to open a tunnel to sts.example.com:443",
            "proxy http://proxy:3128 (https_proxy) requires authentication (407)",
            "https_proxy names a proxy aws_sts cannot use: http://proxy:3128",
        ] {
            assert!(messages.iter().any(|message| message == expected), "{expected}: {messages:#?}");
        }
        assert_tidy(&no_endpoint(
            "us-east-1",
            "Invalid Configuration: FIPS and custom endpoint are not supported",
        ));
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1
                .as_deref()
                .map(|layer| layer as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn a_credential_process_keeps_one_short_line_of_its_output() {
        let failed =
            "Error retrieving credentials: external process exited with code exit status: 1. \
                      Stderr: SECRET-LINE-1\nline2\n";
        let error = Layer(
            "an error occurred while loading credentials",
            Some(Box::new(Layer(failed, None))),
        );
        assert_eq!(
            describe_chain(&error),
            "an error occurred while loading credentials: Error retrieving credentials: external \
             process exited with code exit status: 1. Its error output began: SECRET-LINE-1"
        );
        let long = format!(
            "external process exited with code 3. Stderr: \n\n  {}\n",
            "x".repeat(500)
        );
        let shortened = shorten_process_output(&long);
        assert!(
            shortened.ends_with(&format!("began: {}...", "x".repeat(200))),
            "{shortened}"
        );
        assert_eq!(
            shorten_process_output("external process exited with code 2. Stderr: "),
            "external process exited with code 2. It wrote no error output."
        );
        // Other errors keep their text, even one that says Stderr.
        assert_eq!(
            shorten_process_output("tool said Stderr: x"),
            "tool said Stderr: x"
        );

        let marked = privileged_if_process_output(
            FdwError::new(SqlState::FdwError, "x").with_detail(describe_chain(&error)),
        );
        assert!(marked.detail_is_privileged);
        let plain = privileged_if_process_output(
            FdwError::new(SqlState::FdwError, "x").with_detail("connection refused"),
        );
        assert!(!plain.detail_is_privileged);
    }

    #[test]
    fn a_chain_reads_as_one_line_without_repeats() {
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer(
                    "connection\n  refused",
                    Some(Box::new(Layer("refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            describe_chain(&error),
            "dispatch failure: io error: connection refused"
        );
    }
}
