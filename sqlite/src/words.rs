//! The core's errors in SQLite's words. The core speaks Postgres (server options, user
//! mappings, the database server); here settings come from module arguments and
//! `aws_sts_configure`, and credentials from this process's environment and AWS files.
//! Hints are reworded from the core's [`Remedy`]; the few messages and details that name a
//! Postgres object are rewritten phrase by phrase ([`REWORDINGS`]); and options that only
//! mean something to Postgres are refused before the core sees them.

use aws_sts::config;
use aws_sts::error::{FdwError, Remedy, SqlState};
use aws_sts::options::{connection_option_names, AGGREGATOR_OPTIONS};

use crate::vtab::CONNECTION_NAME_ARGUMENT;

/// An FdwError as one SQLite error message: the message, then the detail and hint on their
/// own lines, as psql shows them. The core has already removed every secret. A privileged
/// detail (a credential_process's output) is shown: here the process runs as the very user
/// who reads the error.
pub fn error_text(error: &FdwError) -> String {
    let mut text = reword(&error.message);
    if let Some(detail) = &error.detail {
        text.push_str("\nDETAIL: ");
        text.push_str(&reword(detail));
    }
    let hint = match error.remedy.as_deref() {
        Some(remedy) => Some(sqlite_hint(remedy)),
        None => error.hint.as_deref().map(reword),
    };
    if let Some(hint) = hint {
        text.push_str("\nHINT: ");
        text.push_str(&hint);
    }
    text
}

/// The core's phrases that name a Postgres object, and SQLite's for them. Each is tested
/// against the core error that says it, so a rewording in the core cannot slip past.
const REWORDINGS: [(&str, &str); 3] = [
    // A setting given both as a module argument and in config.
    (
        "as a server option and in config",
        "as a module argument and in config",
    ),
    // access_key without secret_key (or the reverse) among the module arguments.
    (" in the same server", " among the module arguments"),
    // The source credentials of an AssumeRole error.
    ("the server's keys", "the keys in the config"),
];

fn reword(text: &str) -> String {
    REWORDINGS
        .iter()
        .fold(text.to_string(), |text, (postgres, sqlite)| {
            text.replace(postgres, sqlite)
        })
}

/// A remedy in SQLite's terms.
fn sqlite_hint(remedy: &Remedy) -> String {
    match remedy {
        Remedy::ProvideKeys => "Give credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (or AWS_PROFILE) in the environment, or select aws_sts_configure('profile = \"...\"') \
             or a config with access_key and secret_key."
            .to_string(),
        Remedy::RenewKeys => "Renew the temporary credentials (session token too): in the \
             environment, or with aws_sts_configure and a config holding the new access_key, \
             secret_key and session_token."
            .to_string(),
        Remedy::CheckKeys => "Check the keys: those given to aws_sts_configure, else \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the environment."
            .to_string(),
        Remedy::SsoLogin(profile) => format!("Sign in again: aws sso login --profile {profile}."),
        Remedy::DefineProfile(profile) => format!(
            "Define profile {profile} in the shared config file ([profile {profile}]) or the \
             shared credentials file ([{profile}]) of the user running this process, or name a \
             defined profile with aws_sts_configure('profile = \"...\"')."
        ),
        Remedy::CompleteEnvironmentKeys(variable) => format!(
            "Set {variable} in this process's environment too, or give both keys with \
             aws_sts_configure and a config holding access_key and secret_key."
        ),
        Remedy::CheckAwsConfiguration => "Check the AWS configuration of the user running this \
             process (the profile's settings in ~/.aws/config), or give keys with \
             aws_sts_configure and a config holding access_key and secret_key."
            .to_string(),
        Remedy::ReachEndpoint => "Check endpoint_url and region (in aws_sts_configure's config \
             or the table's module arguments), and that the endpoint is reachable from this \
             process."
            .to_string(),
        Remedy::RaiseTimeout => "Check that the endpoint is reachable from this process, or \
             raise the timeout module argument: CREATE VIRTUAL TABLE ... USING \
             aws_sts_caller_identity(timeout='30s', ...)."
            .to_string(),
        Remedy::NameProfile => "Name a profile from the shared config or credentials file \
             (~/.aws/config, ~/.aws/credentials) of the user running this process."
            .to_string(),
        Remedy::KeysOutOfUrl => "Give keys as access_key and secret_key in the config, never \
             in the endpoint."
            .to_string(),
    }
}

/// Why an option of the Postgres extension means nothing to SQLite, for its hint.
fn not_for_sqlite(name: &str) -> Option<&'static str> {
    if AGGREGATOR_OPTIONS.contains(&name) {
        return Some(
            "Aggregator connections are a feature of the Postgres extension. In SQLite, create \
             a virtual table per connection (CREATE VIRTUAL TABLE prod USING \
             aws_sts_caller_identity(config='...', connection_name='prod')) and combine them \
             with UNION ALL.",
        );
    }
    match name {
        "ambient_credentials" => Some(
            "In SQLite credentials are always this process's own (its environment and AWS \
             files) unless the config gives keys: there is nothing to allow.",
        ),
        "column_name" => Some(
            "The table's columns keep the names of aws_sts_caller_identity; rename them in a \
             view or a query.",
        ),
        _ => None,
    }
}

/// Refuses what does not apply to SQLite, naming it: aggregator options (as module
/// arguments, or as keys of a config), options of other Postgres objects, unknown names.
pub fn check_applies(options: &[(String, String)]) -> Result<(), FdwError> {
    let valid = connection_option_names();
    for (name, value) in options {
        if let Some(why) = not_for_sqlite(name) {
            return Err(FdwError::new(
                SqlState::InvalidOptionName,
                format!("option \"{name}\" does not apply to SQLite"),
            )
            .with_hint(why));
        }
        if !valid.contains(&name.as_str()) {
            return Err(FdwError::new(
                SqlState::InvalidOptionName,
                format!("unknown module argument \"{name}\""),
            )
            .with_hint(format!(
                "Valid module arguments are: {CONNECTION_NAME_ARGUMENT}, {}.",
                valid.join(", ")
            )));
        }
        if name == "config" {
            let refused = config::keys(value)
                .into_iter()
                .find_map(|(key, line)| not_for_sqlite(&key).map(|why| (key, line, why)));
            if let Some((key, line, why)) = refused {
                return Err(FdwError::new(
                    SqlState::InvalidOptionName,
                    format!("key \"{key}\" in config (line {line}) does not apply to SQLite"),
                )
                .with_hint(why));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sts::options::parse_server;

    /// What only Postgres users understand; no SQLite error may say it.
    const POSTGRES_WORDS: [&str; 8] = [
        "server option",
        "user mapping",
        "database server",
        "ALTER SERVER",
        "CREATE USER MAPPING",
        "the server's",
        "<server>",
        "in the same server",
    ];

    fn assert_sqlite_words(text: &str) {
        for word in POSTGRES_WORDS {
            assert!(
                !text.to_lowercase().contains(&word.to_lowercase()),
                "{word:?} in {text}"
            );
        }
    }

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// What SQLite shows for these options, which must be refused.
    fn refused(pairs: &[(&str, &str)]) -> String {
        let pairs = options(pairs);
        let error = check_applies(&pairs)
            .and_then(|()| parse_server(&pairs).map(|_| ()))
            .expect_err("refused");
        error_text(&error)
    }

    #[test]
    fn error_text_carries_message_detail_and_hint() {
        let error = FdwError::new(SqlState::FdwError, "boom")
            .with_detail("why")
            .with_hint("fix");
        assert_eq!(error_text(&error), "boom\nDETAIL: why\nHINT: fix");
        assert_eq!(
            error_text(&FdwError::new(SqlState::FdwError, "boom")),
            "boom"
        );
        // A remedy is worded the SQLite way, whatever the core's hint says.
        let missing = FdwError::new(
            SqlState::UnableToEstablishConnection,
            "no AWS credentials found",
        )
        .with_hint("Create a user mapping with keys")
        .with_remedy(Remedy::ProvideKeys);
        let text = error_text(&missing);
        assert!(text.contains("aws_sts_configure"), "{text}");
        assert_sqlite_words(&text);
    }

    #[test]
    fn every_remedy_is_worded_for_sqlite() {
        for remedy in [
            Remedy::ProvideKeys,
            Remedy::RenewKeys,
            Remedy::CheckKeys,
            Remedy::SsoLogin("dev".into()),
            Remedy::DefineProfile("dev".into()),
            Remedy::CompleteEnvironmentKeys("AWS_SECRET_ACCESS_KEY".into()),
            Remedy::CheckAwsConfiguration,
            Remedy::ReachEndpoint,
            Remedy::RaiseTimeout,
            Remedy::NameProfile,
            Remedy::KeysOutOfUrl,
        ] {
            let hint = sqlite_hint(&remedy);
            assert_sqlite_words(&hint);
            assert!(!hint.contains("  "), "{hint}");
        }
    }

    #[test]
    fn options_that_only_postgres_knows_are_refused_by_name() {
        for name in [
            "type",
            "connections",
            "concurrency",
            "on_error",
            "ambient_credentials",
            "column_name",
        ] {
            let text = refused(&[(name, "x")]);
            assert!(
                text.starts_with(&format!("option \"{name}\" does not apply to SQLite")),
                "{text}"
            );
            assert_sqlite_words(&text);
        }
        // Steampipe's aggregator block, pasted as a config.
        let text = refused(&[(
            "config",
            "connection \"all\" {\n  plugin = \"aws\"\n  type = \"aggregator\"\n}\n",
        )]);
        assert!(
            text.starts_with("key \"type\" in config (line 3) does not apply to SQLite"),
            "{text}"
        );
        let text = refused(&[("regoin", "us-east-1")]);
        assert!(
            text.starts_with("unknown module argument \"regoin\""),
            "{text}"
        );
        assert!(
            text.contains("connection_name, region, endpoint_url"),
            "{text}"
        );
        assert!(!text.contains("connections"), "{text}");
        assert_sqlite_words(&text);
        // What does apply passes.
        assert!(check_applies(&options(&[
            ("region", "eu-west-1"),
            ("config", "profile = \"x\"")
        ]))
        .is_ok());
    }

    #[test]
    fn option_errors_speak_of_module_arguments() {
        for (pairs, expected) in [
            (
                &[("config", "profile = \"a\""), ("profile", "b")][..],
                "option \"profile\" is set both as a module argument and in config (line 1)",
            ),
            (
                &[("access_key", "AKIAEXAMPLE")][..],
                "option \"access_key\" requires secret_key among the module arguments",
            ),
            (
                &[("profile", "two words")][..],
                "invalid value \"two words\" for option \"profile\"",
            ),
            (
                &[("endpoint_url", "https://user:pw@sts.amazonaws.com")][..],
                "invalid value for option \"endpoint_url\"",
            ),
        ] {
            let text = refused(pairs);
            assert!(text.starts_with(expected), "{text}");
            assert_sqlite_words(&text);
        }
    }

    #[test]
    fn the_source_credentials_of_an_assumed_role_are_the_configs_keys() {
        // As the core's AssumeRole error words its detail (sts/errors.rs).
        let error = FdwError::new(
            SqlState::UnableToEstablishConnection,
            "could not assume role",
        )
        .with_detail(
            "AWS error AccessDenied: no (endpoint x; source credentials: the server's keys)",
        );
        let text = error_text(&error);
        assert!(
            text.contains("source credentials: the keys in the config"),
            "{text}"
        );
        assert_sqlite_words(&text);
    }
}
