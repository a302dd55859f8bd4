//! What the process's own AWS setup lacks, looked at once credentials have failed to load:
//! aws-config's errors do not say that a named profile is not defined anywhere, nor which
//! half of a key pair the environment is missing.

use std::borrow::Cow;

use aws_types::os_shim_internal::{Env, Fs};

use super::ConnectionSettings;

/// The profile credentials were to come from, and whether the shared files define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProfileLookup {
    pub(super) name: String,
    /// Named by AWS_PROFILE (the default chain), not by the server's `profile`.
    pub(super) from_environment: bool,
    pub(super) defined: bool,
    /// The shared files as messages name them: AWS_CONFIG_FILE and
    /// AWS_SHARED_CREDENTIALS_FILE when set, else the default paths.
    pub(super) config_file: String,
    pub(super) credentials_file: String,
}

/// What the environment and shared files hold that explains missing credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Ambient {
    pub(super) profile: Option<ProfileLookup>,
    /// `(set, unset)` when only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set.
    pub(super) half_key_pair: Option<(&'static str, &'static str)>,
}

/// Looks at what `settings` would read of the process's AWS setup (nothing when they
/// carry keys): the named profile (the server's, else AWS_PROFILE) and, for the default
/// chain, the key variables.
pub(super) async fn inspect(settings: &ConnectionSettings) -> Ambient {
    if settings.keys.is_some() {
        return Ambient::default();
    }
    let named = match &settings.server.profile {
        Some(profile) => Some((profile.clone(), false)),
        None => variable("AWS_PROFILE").map(|profile| (profile, true)),
    };
    let profile = match named {
        Some((name, from_environment)) => lookup(name, from_environment).await,
        None => None,
    };
    // Only the default chain reads the environment's keys; a named profile never does.
    let half_key_pair = if settings.server.profile.is_none() {
        half_key_pair()
    } else {
        None
    };
    Ambient {
        profile,
        half_key_pair,
    }
}

/// Whether the shared files define `name`, read as aws-config reads them; `None` when they
/// cannot be read or parsed (aws-config's own error says why).
async fn lookup(name: String, from_environment: bool) -> Option<ProfileLookup> {
    let profiles = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        // The default files, or those AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name.
        &Default::default(),
        Some(Cow::Owned(name.clone())),
    )
    .await
    .ok()?;
    Some(ProfileLookup {
        defined: profiles.get_profile(&name).is_some(),
        name,
        from_environment,
        config_file: variable("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into()),
        credentials_file: variable("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|| "~/.aws/credentials".into()),
    })
}

/// One of the two key variables set without the other, as aws-config's environment
/// provider reads them (blank is unset; SECRET_ACCESS_KEY stands in for the secret).
fn half_key_pair() -> Option<(&'static str, &'static str)> {
    let access = variable("AWS_ACCESS_KEY_ID").is_some();
    let secret = variable("AWS_SECRET_ACCESS_KEY")
        .or_else(|| variable("SECRET_ACCESS_KEY"))
        .is_some();
    match (access, secret) {
        (true, false) => Some(("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
        (false, true) => Some(("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
        _ => None,
    }
}

/// An environment variable's value, unless unset, blank or not Unicode.
fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
