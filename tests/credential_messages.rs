//! What the credential errors say, against aws-config's real providers: a profile that is not
//! defined, one that holds no credentials, half a key pair in the environment, and a failing
//! credential_process. The shared files are temporary ones (AWS_CONFIG_FILE,
//! AWS_SHARED_CREDENTIALS_FILE), and credentials fail before any request, so no endpoint
//! needs to answer. No Postgres, no moto: `cargo test --no-default-features --test
//! credential_messages`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use aws_sts::error::{FdwError, Remedy, SqlState};
use aws_sts::options::parse_server;
use aws_sts::sts::{clear_clients, get_caller_identity, ConnectionSettings};

/// The environment is process-wide: one test at a time.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// Nothing listens on port 9 (discard) here; no request is made anyway.
const ENDPOINT: &str = "http://127.0.0.1:9";

/// Shared config and credentials files of one test, removed when it ends.
struct SharedFiles {
    config: PathBuf,
    credentials: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl SharedFiles {
    /// Takes the environment, points the shared files at temporary ones holding `config` and
    /// `credentials` (`None`: no such file) and clears every other credential source.
    fn new(config: Option<&str>, credentials: Option<&str>) -> SharedFiles {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let guard = ENVIRONMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let base = std::env::temp_dir().join(format!(
            "aws_sts-credential-messages-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let files = SharedFiles {
            config: base.with_extension("config"),
            credentials: base.with_extension("credentials"),
            _guard: guard,
        };
        for (path, text) in [(&files.config, config), (&files.credentials, credentials)] {
            let _ = std::fs::remove_file(path);
            if let Some(text) = text {
                std::fs::write(path, text).expect("write a shared file");
            }
        }
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            std::env::remove_var(name);
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", &files.config);
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &files.credentials);
        files
    }
}

impl Drop for SharedFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(&self.credentials);
    }
}

/// GetCallerIdentity with these server options (no user mapping), which must fail.
fn call_fails(options: &[(&str, &str)]) -> FdwError {
    let mut options: Vec<(String, String)> = options
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    options.push(("endpoint_url".into(), ENDPOINT.into()));
    options.push(("instance_metadata".into(), "false".into()));
    options.push(("max_error_retry_attempts".into(), "1".into()));
    let settings = ConnectionSettings::new(parse_server(&options).expect("valid options"), None);
    // Clients keep their credential providers; each call here must see this environment.
    clear_clients();
    aws_sts::runtime::block_on_interruptible(get_caller_identity(&settings), || false, || {})
        .expect("not interrupted")
        .expect_err("no credentials, so no answer")
}

fn detail(error: &FdwError) -> &str {
    error.detail.as_deref().unwrap_or_default()
}

fn hint(error: &FdwError) -> &str {
    error.hint.as_deref().unwrap_or_default()
}

#[test]
fn a_profile_missing_from_the_shared_files_is_named() {
    let files = SharedFiles::new(
        Some("[profile other]\nregion = eu-west-1\n"),
        Some("[another]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n"),
    );
    let error = call_fails(&[("profile", "nope")]);
    assert_eq!(error.state, SqlState::UnableToEstablishConnection);
    assert_eq!(
        error.message,
        "no AWS credentials found: profile \"nope\" is not defined"
    );
    let config = files.config.display().to_string();
    let credentials = files.credentials.display().to_string();
    assert!(
        detail(&error).starts_with(&format!(
            "Profile \"nope\" is in neither the shared config file ({config}) nor the shared credentials file ({credentials})."
        )),
        "{error:#?}"
    );
    assert_eq!(
        error.remedy.as_deref(),
        Some(&Remedy::DefineProfile("nope".into()))
    );
    // The hint's placeholder becomes the server's name, quoted as SQL needs it.
    let named = error.for_server("Prod Server");
    assert_eq!(
        named.message,
        "aws_sts server \"Prod Server\": no AWS credentials found: profile \"nope\" is not defined"
    );
    assert!(
        hint(&named)
            .contains("CREATE USER MAPPING FOR CURRENT_USER SERVER \"Prod Server\" OPTIONS"),
        "{named:#?}"
    );
    assert!(!hint(&named).contains("<server>"), "{named:#?}");
}

#[test]
fn a_profile_is_missing_when_there_are_no_shared_files_at_all() {
    let _files = SharedFiles::new(None, None);
    let error = call_fails(&[("config", "profile = \"prod\"")]);
    assert_eq!(
        error.message,
        "no AWS credentials found: profile \"prod\" is not defined"
    );
    assert!(detail(&error).starts_with("Profile \"prod\" is in neither the shared config file ("));
    assert!(hint(&error).contains("the database server's"), "{error:#?}");
}

#[test]
fn a_profile_without_credentials_says_so() {
    let _files = SharedFiles::new(Some("[profile bare]\nregion = eu-west-1\n"), None);
    let error = call_fails(&[("profile", "bare")]);
    assert_eq!(error.message, "no AWS credentials found");
    assert!(
        detail(&error).starts_with("Profile \"bare\" is defined but gives no credentials"),
        "{error:#?}"
    );
}

#[test]
fn half_a_key_pair_in_the_environment_names_the_missing_variable() {
    for (set, missing) in [
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ] {
        let _files = SharedFiles::new(None, None);
        std::env::set_var(set, "AKIAHALFPAIR");
        let error = call_fails(&[]);
        assert_eq!(error.message, "no AWS credentials found");
        assert!(
            detail(&error).starts_with(&format!("The environment has {set} but no {missing}.")),
            "{error:#?}"
        );
        assert!(hint(&error).contains(missing), "{error:#?}");
        assert_eq!(
            error.remedy.as_deref(),
            Some(&Remedy::CompleteEnvironmentKeys(missing.to_string()))
        );
        // The default chain's other sources are still listed.
        assert!(detail(&error).contains("Tried: environment variables"));
    }
}

#[test]
fn an_undefined_aws_profile_variable_is_named_too() {
    let _files = SharedFiles::new(Some("[profile other]\nregion = eu-west-1\n"), None);
    std::env::set_var("AWS_PROFILE", "gone");
    let error = call_fails(&[]);
    assert!(
        detail(&error).starts_with("Profile \"gone\" (AWS_PROFILE) is in neither"),
        "{error:#?}"
    );
}

#[test]
fn no_credentials_at_all_keeps_the_plain_message() {
    let _files = SharedFiles::new(None, None);
    let error = call_fails(&[]);
    assert_eq!(error.message, "no AWS credentials found");
    assert!(
        detail(&error)
            .starts_with("Tried: environment variables, shared config and credentials files"),
        "{error:#?}"
    );
    assert_eq!(error.remedy.as_deref(), Some(&Remedy::ProvideKeys));
}

#[test]
fn a_failing_credential_process_shows_one_short_line_of_its_output_marked_privileged() {
    let _files = SharedFiles::new(
        Some(
            "[profile proc]\n\
             credential_process = sh -c 'echo SECRET-LINE-1 >&2; echo line2 >&2; exit 1'\n\
             [profile long]\n\
             credential_process = sh -c 'printf \"%0300d\\n\" 7 >&2; exit 3'\n\
             [profile garbled]\n\
             credential_process = echo not-json-SECRET-STDOUT\n",
        ),
        None,
    );
    let error = call_fails(&[("profile", "proc")]);
    assert_eq!(error.message, "could not load AWS credentials");
    assert!(error.detail_is_privileged, "{error:#?}");
    let shown = detail(&error);
    assert!(shown.contains("SECRET-LINE-1"), "{shown}");
    assert!(!shown.contains("line2"), "{shown}");
    // Only the detail carries the process's output.
    assert!(!error.message.contains("SECRET") && !hint(&error).contains("SECRET"));

    // A long line is cut to 200 characters.
    let error = call_fails(&[("profile", "long")]);
    assert!(error.detail_is_privileged);
    let zeros = detail(&error)
        .split(|c: char| c != '0')
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!((100..=200).contains(&zeros), "{error:#?}");

    // Whatever the process printed, its error is privileged.
    let error = call_fails(&[("profile", "garbled")]);
    assert_eq!(error.message, "could not load AWS credentials");
    assert!(error.detail_is_privileged, "{error:#?}");
}

#[test]
fn other_credential_errors_are_not_privileged() {
    let _files = SharedFiles::new(None, None);
    let error = call_fails(&[("profile", "nope")]);
    assert!(!error.detail_is_privileged);
}
