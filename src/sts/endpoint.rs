//! The STS endpoint a call goes to, found as aws-config and aws-sdk-sts find it, so that
//! EXPLAIN and every error name the endpoint the real call uses: the server's
//! `endpoint_url`; else, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (or the profile's
//! `ignore_configured_endpoint_urls`) is true, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the
//! profile's `services` section for sts, the profile's `endpoint_url`; else the SDK's
//! endpoint rules for the region, with FIPS and dual-stack from the server's options, else
//! AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT, else the profile. No network.
//!
//! The client itself is built by aws-config's loader, which reads the same variables and
//! profile keys (`client.rs` only hands it the server's options), and its GetCallerIdentity
//! asks aws-sdk-sts's `DefaultResolver` with these parameters; `client.rs` tests that the
//! request goes where this module says.

use std::borrow::Cow;
use std::fmt;

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::EnvConfigValue;
use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_types::origin::Origin;
use aws_types::os_shim_internal::{Env, Fs};

use crate::options::ServerOptions;

/// Where an endpoint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// The server's `endpoint_url` (or `config`'s).
    ServerOption,
    /// AWS_ENDPOINT_URL_STS in the environment.
    StsVariable,
    /// AWS_ENDPOINT_URL in the environment.
    Variable,
    /// The sts `endpoint_url` in the `services` section the named profile points at.
    ProfileServices(String),
    /// The named profile's `endpoint_url`.
    Profile(String),
    /// The SDK's endpoint rules, for the region and the FIPS and dual-stack settings.
    Rules,
}

/// An endpoint and where it came from. Displays as the URL, followed by its source when
/// that is not the server's options nor the SDK's rules:
/// `http://localhost:4566 (AWS_ENDPOINT_URL)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    pub url: String,
    pub source: EndpointSource,
}

impl fmt::Display for ResolvedEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)?;
        match &self.source {
            EndpointSource::ServerOption | EndpointSource::Rules => Ok(()),
            EndpointSource::StsVariable => f.write_str(" (AWS_ENDPOINT_URL_STS)"),
            EndpointSource::Variable => f.write_str(" (AWS_ENDPOINT_URL)"),
            EndpointSource::ProfileServices(profile) => {
                write!(
                    f,
                    " (sts endpoint_url in the services of profile \"{profile}\")"
                )
            }
            EndpointSource::Profile(profile) => {
                write!(f, " (endpoint_url of profile \"{profile}\")")
            }
        }
    }
}

/// The settings that choose the endpoint, read as the SDK reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndpointSettings {
    url: Option<(String, EndpointSource)>,
    use_fips: bool,
    use_dual_stack: bool,
}

/// The endpoint for these options and region, reading `env` and the shared files through
/// `fs` (the process's own in [`super::resolve_endpoint`]). An error is the SDK's own
/// reason for having none (FIPS with a custom endpoint, an invalid region, ...).
pub(super) async fn resolve(
    server: &ServerOptions,
    region: &str,
    env: &Env,
    fs: &Fs,
) -> Result<ResolvedEndpoint, String> {
    // The profile the loader reads: the server's, else AWS_PROFILE, else default; the
    // default files, or those AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name. A
    // profile file that cannot be read or parsed gives nothing, as in the loader.
    let profiles = aws_config::profile::load(
        fs,
        env,
        &Default::default(),
        server.profile.clone().map(Cow::Owned),
    )
    .await
    .ok();
    let settings = read_settings(server, env, profiles.as_ref());
    let mut params = Params::builder()
        .region(region)
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dual_stack)
        .use_global_endpoint(false);
    if let Some((url, _)) = &settings.url {
        params = params.endpoint(url.clone());
    }
    let params = params.build().map_err(|error| error.to_string())?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|error| error.to_string())?;
    Ok(ResolvedEndpoint {
        url: endpoint.url().to_string(),
        source: settings
            .url
            .map_or(EndpointSource::Rules, |(_, source)| source),
    })
}

fn read_settings(
    server: &ServerOptions,
    env: &Env,
    profiles: Option<&ProfileSet>,
) -> EndpointSettings {
    // aws-config's use_fips and use_dual_stack providers: the environment, then the
    // profile; a value that is not true or false counts as unset.
    let flag = |option: Option<bool>, variable: &str, key: &str| {
        option
            .or_else(|| {
                EnvConfigValue::new()
                    .env(variable)
                    .profile(key)
                    .validate(env, profiles, parse_bool)
                    .ok()
                    .flatten()
            })
            .unwrap_or(false)
    };
    let use_fips = flag(
        server.use_fips,
        "AWS_USE_FIPS_ENDPOINT",
        "use_fips_endpoint",
    );
    let use_dual_stack = flag(
        server.use_dual_stack,
        "AWS_USE_DUALSTACK_ENDPOINT",
        "use_dualstack_endpoint",
    );
    let url = match &server.endpoint_url {
        Some(url) => Some((url.clone(), EndpointSource::ServerOption)),
        None if ignores_configured_urls(env, profiles) => None,
        None => configured_url(env, profiles),
    };
    EndpointSettings {
        url,
        use_fips,
        use_dual_stack,
    }
}

/// aws-config's ignore_configured_endpoint_urls provider.
fn ignores_configured_urls(env: &Env, profiles: Option<&ProfileSet>) -> bool {
    EnvConfigValue::new()
        .env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .profile("ignore_configured_endpoint_urls")
        .validate(env, profiles, parse_bool)
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The endpoint URL configured outside the options, as aws-sdk-sts's config builder loads
/// its service config key ("STS", AWS_ENDPOINT_URL, endpoint_url): the service's variable,
/// the global one, the profile's services section, the profile's key.
fn configured_url(env: &Env, profiles: Option<&ProfileSet>) -> Option<(String, EndpointSource)> {
    let (url, source) = EnvConfigValue::new()
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .service_id("STS")
        .load(env, profiles)?;
    let origin: Origin = (&source).into();
    let profile = || {
        profiles
            .map(|profiles| profiles.selected_profile().to_string())
            .unwrap_or_default()
    };
    let source = if origin == Origin::service_environment_variable() {
        EndpointSource::StsVariable
    } else if origin == Origin::shared_environment_variable() {
        EndpointSource::Variable
    } else if origin == Origin::service_profile_file() {
        EndpointSource::ProfileServices(profile())
    } else {
        EndpointSource::Profile(profile())
    };
    Some((url.into_owned(), source))
}

/// aws-config's boolean: true or false, in any case.
fn parse_bool(value: &str) -> Result<bool, NotABoolean> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(NotABoolean)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not true or false")]
struct NotABoolean;

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves with only these variables and this shared config file.
    async fn endpoint(
        server: &ServerOptions,
        region: &str,
        variables: &[(&str, &str)],
        config_file: &str,
    ) -> Result<String, String> {
        let mut all = vec![("AWS_CONFIG_FILE", "/aws/config")];
        all.extend_from_slice(variables);
        let env = Env::from_slice(&all);
        let fs = Fs::from_slice(&[("/aws/config", config_file)]);
        resolve(server, region, &env, &fs)
            .await
            .map(|endpoint| endpoint.to_string())
    }

    fn options(use_fips: Option<bool>, use_dual_stack: Option<bool>) -> ServerOptions {
        ServerOptions {
            use_fips,
            use_dual_stack,
            ..ServerOptions::default()
        }
    }

    #[tokio::test]
    async fn the_sdk_rules_give_each_partition_and_variant_its_endpoint() {
        let plain = ServerOptions::default();
        for (region, expected) in [
            ("us-east-1", "https://sts.us-east-1.amazonaws.com"),
            ("eu-west-3", "https://sts.eu-west-3.amazonaws.com"),
            ("cn-north-1", "https://sts.cn-north-1.amazonaws.com.cn"),
            (
                "cn-northwest-1",
                "https://sts.cn-northwest-1.amazonaws.com.cn",
            ),
            ("us-gov-west-1", "https://sts.us-gov-west-1.amazonaws.com"),
            ("aws-global", "https://sts.amazonaws.com"),
        ] {
            assert_eq!(
                endpoint(&plain, region, &[], "").await.as_deref(),
                Ok(expected),
                "{region}"
            );
        }
        for (server, region, expected) in [
            (
                options(Some(true), None),
                "us-east-1",
                "https://sts-fips.us-east-1.amazonaws.com",
            ),
            (
                options(None, Some(true)),
                "us-east-1",
                "https://sts.us-east-1.api.aws",
            ),
            (
                options(Some(true), Some(true)),
                "us-east-1",
                "https://sts-fips.us-east-1.api.aws",
            ),
            (
                options(Some(true), None),
                "us-gov-west-1",
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
            (
                options(None, Some(true)),
                "cn-north-1",
                "https://sts.cn-north-1.api.amazonwebservices.com.cn",
            ),
            (
                options(Some(false), Some(false)),
                "us-east-1",
                "https://sts.us-east-1.amazonaws.com",
            ),
        ] {
            assert_eq!(
                endpoint(&server, region, &[], "").await.as_deref(),
                Ok(expected),
                "{server:?} {region}"
            );
        }
    }

    #[tokio::test]
    async fn fips_and_dual_stack_come_from_the_option_then_the_environment_then_the_profile() {
        let unset = ServerOptions::default();
        let fips = [("AWS_USE_FIPS_ENDPOINT", "TRUE")];
        let dual = [("AWS_USE_DUALSTACK_ENDPOINT", "true")];
        assert_eq!(
            endpoint(&unset, "us-east-1", &fips, "").await.unwrap(),
            "https://sts-fips.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&unset, "us-east-1", &dual, "").await.unwrap(),
            "https://sts.us-east-1.api.aws"
        );
        // The option wins over the environment, either way.
        assert_eq!(
            endpoint(&options(Some(false), None), "us-east-1", &fips, "")
                .await
                .unwrap(),
            "https://sts.us-east-1.amazonaws.com"
        );
        // A value that is not a boolean counts as unset, as in aws-config.
        assert_eq!(
            endpoint(&unset, "us-east-1", &[("AWS_USE_FIPS_ENDPOINT", "yes")], "")
                .await
                .unwrap(),
            "https://sts.us-east-1.amazonaws.com"
        );
        // The profile: the server's, else AWS_PROFILE, else default.
        let config =
            "[default]\nuse_fips_endpoint = true\n[profile prod]\nuse_dualstack_endpoint = true\n";
        assert_eq!(
            endpoint(&unset, "us-east-1", &[], config).await.unwrap(),
            "https://sts-fips.us-east-1.amazonaws.com"
        );
        let prod = ServerOptions {
            profile: Some("prod".into()),
            ..ServerOptions::default()
        };
        assert_eq!(
            endpoint(&prod, "us-east-1", &[], config).await.unwrap(),
            "https://sts.us-east-1.api.aws"
        );
        assert_eq!(
            endpoint(&unset, "us-east-1", &[("AWS_PROFILE", "prod")], config)
                .await
                .unwrap(),
            "https://sts.us-east-1.api.aws"
        );
        // The environment wins over the profile.
        assert_eq!(
            endpoint(
                &unset,
                "us-east-1",
                &[("AWS_USE_FIPS_ENDPOINT", "false")],
                config
            )
            .await
            .unwrap(),
            "https://sts.us-east-1.amazonaws.com"
        );
    }

    #[tokio::test]
    async fn configured_urls_in_the_sdks_order() {
        let unset = ServerOptions::default();
        let option = ServerOptions {
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            ..ServerOptions::default()
        };
        let sts = ("AWS_ENDPOINT_URL_STS", "http://localhost:4001");
        let global = ("AWS_ENDPOINT_URL", "http://localhost:4002");
        let config = "[default]\nendpoint_url = http://localhost:4003\nservices = local\n\
                      [services local]\nsts =\n  endpoint_url = http://localhost:4004\n\
                      [profile bare]\nendpoint_url = http://localhost:4005\n";
        // The server's option first, over everything.
        assert_eq!(
            endpoint(&option, "us-east-1", &[sts, global], config)
                .await
                .unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            endpoint(&unset, "us-east-1", &[sts, global], config)
                .await
                .unwrap(),
            "http://localhost:4001 (AWS_ENDPOINT_URL_STS)"
        );
        assert_eq!(
            endpoint(&unset, "us-east-1", &[global], config)
                .await
                .unwrap(),
            "http://localhost:4002 (AWS_ENDPOINT_URL)"
        );
        assert_eq!(
            endpoint(&unset, "us-east-1", &[], config).await.unwrap(),
            "http://localhost:4004 (sts endpoint_url in the services of profile \"default\")"
        );
        let bare = ServerOptions {
            profile: Some("bare".into()),
            ..ServerOptions::default()
        };
        assert_eq!(
            endpoint(&bare, "us-east-1", &[], config).await.unwrap(),
            "http://localhost:4005 (endpoint_url of profile \"bare\")"
        );
        // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns all of them off, the option excepted.
        let ignore = ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
        assert_eq!(
            endpoint(&unset, "eu-west-1", &[ignore, sts, global], config)
                .await
                .unwrap(),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&option, "eu-west-1", &[ignore, sts], "")
                .await
                .unwrap(),
            "http://127.0.0.1:5000"
        );
        // So does the profile's ignore_configured_endpoint_urls.
        assert_eq!(
            endpoint(
                &unset,
                "eu-west-1",
                &[global],
                "[default]\nignore_configured_endpoint_urls = true\n"
            )
            .await
            .unwrap(),
            "https://sts.eu-west-1.amazonaws.com"
        );
        // Anything but true leaves them on.
        assert_eq!(
            endpoint(
                &unset,
                "eu-west-1",
                &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"), global],
                ""
            )
            .await
            .unwrap(),
            "http://localhost:4002 (AWS_ENDPOINT_URL)"
        );
    }

    #[tokio::test]
    async fn no_endpoint_says_why_in_the_sdks_words() {
        let unset = ServerOptions::default();
        // FIPS from the environment with a custom endpoint: the SDK refuses the call.
        let error = endpoint(
            &unset,
            "us-east-1",
            &[
                ("AWS_USE_FIPS_ENDPOINT", "true"),
                ("AWS_ENDPOINT_URL", "http://localhost:4566"),
            ],
            "",
        )
        .await
        .unwrap_err();
        assert_eq!(
            error,
            "Invalid Configuration: FIPS and custom endpoint are not supported"
        );
        let error = endpoint(
            &options(None, Some(true)),
            "us-east-1",
            &[("AWS_ENDPOINT_URL_STS", "http://localhost:4566")],
            "",
        )
        .await
        .unwrap_err();
        assert!(error.contains("Dualstack and custom endpoint"), "{error}");
        // A region that is no host label (from AWS_REGION, say).
        let error = endpoint(&unset, "not a region", &[], "").await.unwrap_err();
        assert!(error.contains("region"), "{error}");
    }

    #[tokio::test]
    async fn an_unreadable_profile_file_gives_nothing_as_in_the_loader() {
        let unset = ServerOptions::default();
        assert_eq!(
            endpoint(
                &unset,
                "us-east-1",
                &[],
                "[default\nendpoint_url = http://x"
            )
            .await
            .unwrap(),
            "https://sts.us-east-1.amazonaws.com"
        );
    }
}
