//! The database server's own credentials: a profile, else the default chain (IMDS bounded).

use std::time::Duration;

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::{self, credentials::ImdsCredentialsProvider};
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};

use super::http::transport_for;
use super::human_duration;
use super::transport::TransportConfig;
use crate::options::ServerOptions;

/// How long the chain may wait for EC2 instance metadata before giving up on it: off EC2
/// nothing answers at 169.254.169.254, and the SDK's own retries would take minutes.
pub const INSTANCE_METADATA_BUDGET: Duration = Duration::from_secs(1);

/// The database server's own credentials. With `profile`, that profile alone (its keys,
/// role chain, credential_process or SSO session), as the AWS CLI's --profile; else the
/// default chain: environment, shared files, web identity, container, then instance
/// metadata (unless `instance_metadata 'false'`), the last bounded to
/// [`INSTANCE_METADATA_BUDGET`].
///
/// Requests go through `transport` (its CAs, its proxy), but for instance metadata's and
/// container credentials': those link-local endpoints never go through a proxy.
pub(super) fn ambient_credentials(
    server: &ServerOptions,
    region: &Region,
    timeouts: &TimeoutConfig,
    transport: &TransportConfig,
) -> SharedCredentialsProvider {
    let provider_config = ProviderConfig::without_region()
        .with_region(Some(region.clone()))
        .with_http_client(transport_for(transport))
        .with_timeout_config(timeouts.clone());
    let direct_config = provider_config
        .clone()
        .with_http_client(transport_for(&transport.direct()));
    let profile = |name: Option<&String>| {
        let mut builder = ProfileFileCredentialsProvider::builder().configure(&provider_config);
        if let Some(name) = name {
            builder = builder.profile_name(name);
        }
        builder.build()
    };
    if let Some(name) = &server.profile {
        return SharedCredentialsProvider::new(profile(Some(name)));
    }
    let mut chain = CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else("Profile", profile(None))
    .or_else(
        "WebIdentityToken",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(&provider_config)
            .build(),
    )
    .or_else(
        "EcsContainer",
        EcsCredentialsProvider::builder()
            .configure(&direct_config)
            .build(),
    );
    if server.instance_metadata {
        let client = imds::Client::builder()
            .configure(&direct_config)
            .max_attempts(1)
            .connect_timeout(INSTANCE_METADATA_BUDGET / 2)
            .read_timeout(INSTANCE_METADATA_BUDGET / 2)
            .build();
        chain = chain.or_else(
            "Ec2InstanceMetadata",
            Bounded {
                inner: ImdsCredentialsProvider::builder()
                    .configure(&direct_config)
                    .imds_client(client)
                    .build(),
                budget: INSTANCE_METADATA_BUDGET,
                what: "EC2 instance metadata",
            },
        );
    }
    SharedCredentialsProvider::new(chain)
}

/// A credentials provider that gives up after `budget`, as "not loaded", so the chain
/// reports every source it tried.
#[derive(Debug)]
struct Bounded<P> {
    inner: P,
    budget: Duration,
    what: &'static str,
}

impl<P: ProvideCredentials> ProvideCredentials for Bounded<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match tokio::time::timeout(self.budget, self.inner.provide_credentials()).await {
                Ok(result) => result,
                Err(_) => Err(CredentialsError::not_loaded(format!(
                    "{} did not answer within {}",
                    self.what,
                    human_duration(self.budget)
                ))),
            }
        })
    }
}
