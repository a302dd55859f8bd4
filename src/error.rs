//! The error every part of aws_sts reports: a SQLSTATE, a message, and optionally a detail
//! and a hint. The Postgres glue turns it into `ereport(ERROR)`; the pure code never
//! touches Postgres.

use std::fmt;

/// The SQLSTATEs aws_sts reports. FDW errors use class HV, as the SQL/MED standard asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    /// HV000 fdw_error: AWS answered with an error, or something else went wrong.
    FdwError,
    /// HV00D fdw_invalid_option_name
    InvalidOptionName,
    /// HV024 fdw_invalid_attribute_value
    InvalidAttributeValue,
    /// HV00J fdw_option_name_not_found: an option that needs another one without it.
    OptionNameNotFound,
    /// HV00N fdw_unable_to_establish_connection: no credentials, rejected credentials,
    /// endpoint unreachable, timed out.
    UnableToEstablishConnection,
    /// HV00M fdw_unable_to_create_reply: the answer could not be understood.
    UnableToCreateReply,
    /// HV007 fdw_invalid_column_name
    InvalidColumnName,
    /// 42501 insufficient_privilege
    InsufficientPrivilege,
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::FdwError => "HV000",
            SqlState::InvalidOptionName => "HV00D",
            SqlState::InvalidAttributeValue => "HV024",
            SqlState::OptionNameNotFound => "HV00J",
            SqlState::UnableToEstablishConnection => "HV00N",
            SqlState::UnableToCreateReply => "HV00M",
            SqlState::InvalidColumnName => "HV007",
            SqlState::InsufficientPrivilege => "42501",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdwError {
    pub state: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The AWS error code behind the error (AccessDenied, ExpiredToken, ...), for
    /// `ignore_error_codes`. Boxed strs, as `remedy` is boxed: errors travel in `Result`s
    /// and stay small.
    pub aws_code: Option<Box<str>>,
    /// The AWS error message behind the error, as AWS sent it, for `ignore_error_messages`.
    pub aws_message: Option<Box<str>>,
    /// What to do, for a front end that words the hint its own way (`hint` says it the
    /// Postgres way: server options, user mappings, the database server). Set on every error
    /// whose hint speaks of those. Boxed: errors travel in `Result`s and stay small.
    pub remedy: Option<Box<Remedy>>,
    /// The detail quotes the database server's own environment: a `credential_process`'s
    /// output (one short line of it at most). Only a user trusted with the server's
    /// credentials (a superuser) should see such a detail, nor should it reach a log that
    /// others read: a front end drops or replaces it for anyone else. Set with
    /// [`FdwError::with_privileged_detail`].
    pub detail_is_privileged: bool,
}

/// What the user should do about an error, for front ends to word their own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// No credentials were found: give some.
    ProvideKeys,
    /// The (temporary) keys have expired: renew them, session token too.
    RenewKeys,
    /// AWS does not accept the keys: check them.
    CheckKeys,
    /// The SSO session of this profile is missing or expired: sign in again.
    SsoLogin(String),
    /// The named profile is in neither shared file: define it, or name another.
    DefineProfile(String),
    /// The environment has half a key pair: set this variable too (or unset the other).
    CompleteEnvironmentKeys(String),
    /// A credential source other than keys failed (a profile's settings, a
    /// credential_process): check the process's AWS configuration, or give keys.
    CheckAwsConfiguration,
    /// The endpoint could not be reached: check endpoint_url, region and the network.
    ReachEndpoint,
    /// The call did not finish within `timeout`: check the endpoint, or raise it.
    RaiseTimeout,
    /// `profile` is not a valid profile name: name one from the shared files.
    NameProfile,
    /// `endpoint_url` carries credentials: give keys as keys, never in the URL.
    KeysOutOfUrl,
}

/// Stands for the server's name in a hint written before the name is known;
/// [`FdwError::for_server`] puts the quoted name in its place.
pub const SERVER_PLACEHOLDER: &str = "<server>";

// Every text enters through `new` and the `with_*` builders, which escape NULs: a message
// ends up in a C string (ereport, sqlite3_result_error), where a NUL would cut it short.
impl FdwError {
    pub fn new(state: SqlState, message: impl Into<String>) -> Self {
        FdwError {
            state,
            message: escape_nul(&message.into()),
            detail: None,
            hint: None,
            aws_code: None,
            aws_message: None,
            remedy: None,
            detail_is_privileged: false,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(escape_nul(&detail.into()));
        self
    }

    /// A detail that quotes the database server's own environment (see
    /// [`FdwError::detail_is_privileged`]).
    pub fn with_privileged_detail(mut self, detail: impl Into<String>) -> Self {
        self = self.with_detail(detail);
        self.detail_is_privileged = true;
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(escape_nul(&hint.into()));
        self
    }

    pub fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(Box::new(remedy));
        self
    }

    pub fn with_aws_code(mut self, code: impl Into<String>) -> Self {
        self.aws_code = Some(code.into().into_boxed_str());
        self
    }

    pub fn with_aws_message(mut self, message: impl Into<String>) -> Self {
        self.aws_message = Some(message.into().into_boxed_str());
        self
    }

    /// Prefixes the message with the server it concerns, as every scan-time error must name
    /// it, and puts the server's name, quoted as an identifier, in the hint's
    /// [`SERVER_PLACEHOLDER`]s, so that its SQL can be run as it stands.
    pub fn for_server(mut self, server: &str) -> Self {
        self.message = format!("aws_sts server \"{server}\": {}", self.message);
        self.hint = self
            .hint
            .map(|hint| hint.replace(SERVER_PLACEHOLDER, &crate::row::quote_ident(server)));
        self
    }

    /// Removes the given secrets from message, detail and hint, as [`redact`] does.
    pub fn redacted(mut self, secrets: &[String]) -> Self {
        self.message = redact(&self.message, secrets);
        self.detail = self.detail.map(|detail| redact(&detail, secrets));
        self.hint = self.hint.map(|hint| redact(&hint, secrets));
        self.aws_message = self
            .aws_message
            .map(|message| redact(&message, secrets).into_boxed_str());
        self
    }
}

impl fmt::Display for FdwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.state.code(), self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for FdwError {}

/// `text` with each NUL shown as the escape `\0`, so that no C string ends early.
pub fn escape_nul(text: &str) -> String {
    text.replace('\0', "\\0")
}

/// What a secret is replaced with.
const REDACTED: &str = "<redacted>";

/// Secrets at least this long are removed wherever they appear, even inside a longer word:
/// AWS secret keys are 40 characters and session tokens hundreds, and no ordinary word of
/// a message is that long. Shorter ones (test keys, mistakes) only as whole tokens.
const ALWAYS_REDACTED_LEN: usize = 16;

/// Replaces each secret in `text` with `<redacted>`. Empty secrets are ignored. A long
/// secret goes wherever it appears, percent-encoded too (as in a URL's query); a short one
/// only where it stands as a whole token, so that a secret such as `e` does not turn
/// "could not reach" into "could not r<redacted>ach".
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    // Longest first: a secret inside another must not leave the other half-replaced.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.into_iter().fold(text.to_string(), |text, secret| {
        if secret.len() >= ALWAYS_REDACTED_LEN {
            let encoded = percent_encode(secret);
            text.replace(secret.as_str(), REDACTED)
                .replace(encoded.as_str(), REDACTED)
        } else {
            redact_tokens(&text, secret)
        }
    })
}

/// Whether `c` may be part of an AWS key, secret or session token (base64's alphabet).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')
}

/// `secret` replaced where it stands as a whole token: neither neighbour is a key
/// character. A `=` before it counts as a separator (`secret_key=...`): base64 pads with
/// `=` only at the end, so no token continues past one.
fn redact_tokens(text: &str, secret: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(secret) {
        let start = from + found;
        let end = start + secret.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let whole = before.is_none_or(|c| c == '=' || !is_key_char(c))
            && after.is_none_or(|c| !is_key_char(c));
        if whole {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
            from = end;
        } else {
            // Resume one character on: the secret may start again inside this match.
            from = start + secret.chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` as a URL's query would carry it: every byte but A-Z a-z 0-9 - _ . ~ as %XX
/// (also how the tests encode the query-protocol calls they send moto).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Panics unless message, detail and hint read cleanly: no run of spaces, no indented line
/// (a string literal broken across lines without a trailing backslash), no space at either
/// end. Detail lines are separated by a bare newline.
#[cfg(test)]
pub(crate) fn assert_tidy(error: &FdwError) {
    let texts = [
        Some(&error.message),
        error.detail.as_ref(),
        error.hint.as_ref(),
    ];
    for text in texts.into_iter().flatten() {
        assert!(
            !text.contains("  ")
                && !text.contains("\n ")
                && !text.contains('\t')
                && text.trim() == text
                && !text.is_empty(),
            "untidy text in {error:#?}"
        );
    }
}

/// Panics if the hint speaks the Postgres way (servers, user mappings, the database
/// server) without a [`Remedy`] that lets other front ends word it their own way.
#[cfg(test)]
pub(crate) fn assert_remedied(error: &FdwError) {
    const POSTGRES_WORDS: [&str; 6] = [
        "server option",
        "user mapping",
        "database server",
        "ALTER SERVER",
        "the server's",
        "<server>",
    ];
    let hint = error.hint.as_deref().unwrap_or_default();
    if POSTGRES_WORDS.iter().any(|word| hint.contains(word)) {
        assert!(
            error.remedy.is_some(),
            "a Postgres-only hint without a remedy: {error:#?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_message_detail_and_hint() {
        let err = FdwError::new(SqlState::FdwError, "bad key wJalr")
            .with_detail("token tok123 and wJalr")
            .with_hint("wJalr")
            .for_server("aws")
            .redacted(&["wJalr".to_string(), "tok123".to_string(), String::new()]);
        assert_eq!(err.message, "aws_sts server \"aws\": bad key <redacted>");
        assert_eq!(
            err.detail.as_deref(),
            Some("token <redacted> and <redacted>")
        );
        assert_eq!(err.hint.as_deref(), Some("<redacted>"));
        let aws = FdwError::new(SqlState::FdwError, "x")
            .with_aws_message("echoed wJalr")
            .redacted(&["wJalr".to_string()]);
        assert_eq!(aws.aws_message.as_deref(), Some("echoed <redacted>"));
    }

    #[test]
    fn a_nul_shows_as_an_escape_everywhere() {
        let error = FdwError::new(SqlState::FdwError, "bad \"a\0b\"")
            .with_detail("from \0 here")
            .with_hint("\0");
        assert_eq!(error.message, "bad \"a\\0b\"");
        assert_eq!(error.detail.as_deref(), Some("from \\0 here"));
        assert_eq!(error.hint.as_deref(), Some("\\0"));
        assert_eq!(escape_nul("plain"), "plain");
        let privileged = FdwError::new(SqlState::FdwError, "x").with_privileged_detail("out\0put");
        assert!(privileged.detail_is_privileged);
        assert_eq!(privileged.detail.as_deref(), Some("out\\0put"));
        assert!(!error.detail_is_privileged);
    }

    #[test]
    fn a_short_secret_is_redacted_only_as_a_whole_token() {
        let secrets = ["e".to_string(), "ea".to_string()];
        let words = "could not reach the endpoint: connection refused";
        assert_eq!(redact(words, &secrets), words);
        assert_eq!(
            redact("key e, then \"ea\" and (e) ea", &secrets),
            "key <redacted>, then \"<redacted>\" and (<redacted>) <redacted>"
        );
        // After `=` (base64 pads only at the end, so `=` ends the token before).
        assert_eq!(
            redact("secret_key=ea&x=1", &secrets),
            "secret_key=<redacted>&x=1"
        );
        // Inside a longer run of key characters it is some other value.
        assert_eq!(
            redact("eab 1ea +ea ea/ ea= /e", &secrets),
            "eab 1ea +ea ea/ ea= /e"
        );
    }

    #[test]
    fn a_long_secret_is_removed_wherever_it_appears() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string();
        let token = "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQ+abc/def==".to_string();
        let secrets = [secret.clone(), token.clone()];
        for text in [
            format!("https://sts.example.com/?X-Amz-Security-Token={token}&a=b"),
            format!("https://sts.example.com/{secret}/x"),
            format!("key \"{secret}\"."),
            format!("secret_key={secret}"),
            format!("glued{secret}glued"),
            format!("token {token}"),
            // Percent-encoded, as in a query string.
            "X-Amz-Security-Token=IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQ%2Babc%2Fdef%3D%3D&a=b"
                .to_string(),
            "s=wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY".to_string(),
        ] {
            let redacted = redact(&text, &secrets);
            assert!(redacted.contains("<redacted>"), "{text} -> {redacted}");
            assert!(!redacted.contains("EXAMPLEKEY"), "{redacted}");
            assert!(!redacted.contains("IQoJb3JpZ2lu"), "{redacted}");
        }
        // A secret inside another is not left half-replaced.
        let nested = [
            "abcdefghijklmnopq".to_string(),
            "abcdefghijklmnopqrstuvwxyz".to_string(),
        ];
        assert_eq!(
            redact("x abcdefghijklmnopqrstuvwxyz y", &nested),
            "x <redacted> y"
        );
    }

    #[test]
    fn naming_the_server_fills_the_hints_placeholder() {
        let error = FdwError::new(SqlState::FdwError, "no keys")
            .with_hint("CREATE USER MAPPING FOR CURRENT_USER SERVER <server> OPTIONS (...); or ALTER SERVER <server>.");
        let plain = error.clone().for_server("aws");
        assert_eq!(
            plain.hint.as_deref(),
            Some("CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (...); or ALTER SERVER aws.")
        );
        let quoted = error.for_server("My \"Prod\"");
        assert_eq!(quoted.message, "aws_sts server \"My \"Prod\"\": no keys");
        assert!(
            quoted
                .hint
                .as_deref()
                .unwrap()
                .contains("SERVER \"My \"\"Prod\"\"\" OPTIONS"),
            "{quoted:?}"
        );
        let no_hint = FdwError::new(SqlState::FdwError, "x").for_server("aws");
        assert_eq!(no_hint.hint, None);
    }

    #[test]
    fn sqlstates_are_five_characters() {
        for state in [
            SqlState::FdwError,
            SqlState::InvalidOptionName,
            SqlState::InvalidAttributeValue,
            SqlState::OptionNameNotFound,
            SqlState::UnableToEstablishConnection,
            SqlState::UnableToCreateReply,
            SqlState::InvalidColumnName,
            SqlState::InsufficientPrivilege,
        ] {
            assert_eq!(state.code().len(), 5);
        }
    }
}
