//! `ignore_error_messages`: one regular expression per line, as a plain option and in `config`.

use super::*;

fn aws_error(code: &str, message: Option<&str>) -> FdwError {
    let error = FdwError::new(SqlState::FdwError, "x").with_aws_code(code);
    match message {
        Some(message) => error.with_aws_message(message),
        None => error,
    }
}

#[test]
fn ignore_error_messages_takes_one_regular_expression_per_line() {
    let parsed = parse_server(&opts(&[(
        "ignore_error_messages",
        "^User: arn:aws:sts::\\d{12}:assumed-role/.* is not authorized\n\n  (?i)rate exceeded, slow down  \r\n",
    )]))
    .unwrap();
    assert_eq!(
        parsed.ignore_error_messages.sources(),
        [
            "^User: arn:aws:sts::\\d{12}:assumed-role/.* is not authorized",
            "(?i)rate exceeded, slow down"
        ]
    );
    let denied = Some("User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: sts:GetCallerIdentity");
    assert!(parsed.ignores(&aws_error("AccessDenied", denied)));
    assert!(parsed.ignores(&aws_error("Throttling", Some("Rate exceeded, slow down"))));
    // Unanchored, as Go's MatchString: a pattern may match inside the message.
    assert!(parsed.ignores(&aws_error("X", Some("STS says: rate exceeded, slow down!"))));
    assert!(!parsed.ignores(&aws_error("AccessDenied", Some("Access denied"))));
    // No AWS message, nothing to match (and no AWS error at all, nothing either).
    assert!(!parsed.ignores(&aws_error("AccessDenied", None)));
    assert!(!parsed.ignores(&FdwError::new(
        SqlState::FdwError,
        "rate exceeded, slow down"
    )));
    // Codes and messages each suffice.
    let both = parse_server(&opts(&[
        ("ignore_error_codes", "Throttling"),
        ("ignore_error_messages", "denied"),
    ]))
    .unwrap();
    assert!(both.ignores(&aws_error("Throttling", Some("slow down"))));
    assert!(both.ignores(&aws_error("AccessDenied", Some("Access denied"))));
    assert!(!both.ignores(&aws_error("ExpiredToken", Some("expired"))));
    assert!(ServerOptions::default().ignore_error_messages.is_empty());
}

#[test]
fn a_bad_regular_expression_is_refused_naming_the_option_and_line() {
    let err = parse_server(&opts(&[(
        "ignore_error_messages",
        "fine\n(unclosed\nalso fine",
    )]))
    .unwrap_err();
    assert_eq!(err.state, SqlState::InvalidAttributeValue);
    assert_eq!(
        err.message,
        "invalid value \"(unclosed\" for option \"ignore_error_messages\": not a regular expression (unclosed group)"
    );
    crate::error::assert_tidy(&err);
    for blank in ["", " \n\t\n"] {
        let err = parse_server(&opts(&[("ignore_error_messages", blank)])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{blank:?}");
        crate::error::assert_tidy(&err);
    }
    let err = parse_server(&opts(&[("ignore_error_messages", "a{99999}{99999}")])).unwrap_err();
    assert!(
        err.message.contains("not a regular expression"),
        "{}",
        err.message
    );
    // From config, the key's line.
    let err = parse_server(&opts(&[(
        "config",
        "profile = \"p\"\nignore_error_messages = [\"ok, with a comma\", \"a[b\"]",
    )]))
    .unwrap_err();
    assert_eq!(
        err.message,
        "invalid value \"a[b\" for option \"ignore_error_messages\": not a regular expression (unclosed character class) (config line 2)"
    );
    assert_eq!(
        validate(
            Catalog::Server,
            &opts(&[("ignore_error_messages", "a)")]),
            true
        )
        .unwrap_err()
        .state,
        SqlState::InvalidAttributeValue
    );
}

#[test]
fn ignore_error_messages_from_config_keep_their_commas() {
    let parsed = parse_server(&opts(&[(
        "config",
        "ignore_error_messages = [\"^a, b$\", \"c\"]\nignore_error_codes = [\"Throttling\"]",
    )]))
    .unwrap();
    assert_eq!(parsed.ignore_error_messages.sources(), ["^a, b$", "c"]);
    assert!(parsed.ignores(&aws_error("X", Some("a, b"))));
    let plain = parse_server(&opts(&[("ignore_error_messages", "^a, b$\nc")])).unwrap();
    assert_eq!(plain, parsed.clone().with_codes_cleared());
    let both = parse_server(&opts(&[
        ("config", "ignore_error_messages = [\"c\"]"),
        ("ignore_error_messages", "c"),
    ]))
    .unwrap_err();
    assert_eq!(both.state, SqlState::InvalidOptionName);
}

impl ServerOptions {
    fn with_codes_cleared(mut self) -> Self {
        self.ignore_error_codes.clear();
        self
    }
}

#[test]
fn patterns_compare_and_hash_by_their_text() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let hash = |options: &ServerOptions| {
        let mut hasher = DefaultHasher::new();
        options.hash(&mut hasher);
        hasher.finish()
    };
    let a = parse_server(&opts(&[("ignore_error_messages", "x.*y")])).unwrap();
    let b = parse_server(&opts(&[("ignore_error_messages", " x.*y \n")])).unwrap();
    let c = parse_server(&opts(&[("ignore_error_messages", "x.*z")])).unwrap();
    assert_eq!(a, b);
    assert_eq!(hash(&a), hash(&b));
    assert_ne!(a, c);
    assert!(format!("{a:?}").contains("x.*y"));
    // A clone keeps its compiled patterns.
    assert!(a.clone().ignores(&aws_error("X", Some("x and y"))));
}

#[test]
fn ignores_stays_cheap() {
    // Five patterns against a typical AWS message: matching must cost far less than
    // compiling, i.e. nothing is compiled per call.
    let patterns = [
        "^User: arn:aws:sts::\\d{12}:assumed-role/.* is not authorized",
        "(?i)rate exceeded",
        "not authorized to perform: sts:\\w+",
        "^The security token included in the request is (invalid|expired)",
        "Signature expired: \\d{8}T\\d{6}Z is now earlier than",
    ];
    let parsed = parse_server(&opts(&[("ignore_error_messages", &patterns.join("\n"))])).unwrap();
    let message = "The request signature we calculated does not match the signature you provided. \
                   Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    let error = aws_error("SignatureDoesNotMatch", Some(message));
    let calls = 2_000u32;
    let started = std::time::Instant::now();
    for _ in 0..calls {
        assert!(!parsed.ignores(&error));
    }
    let per_call = started.elapsed() / calls;
    let started = std::time::Instant::now();
    for pattern in patterns {
        regex::Regex::new(pattern).unwrap();
    }
    let compile = started.elapsed();
    eprintln!("ignores: {per_call:?} a call; compiling the patterns: {compile:?}");
    // Tens of microseconds against milliseconds in a debug build; compiling per call would
    // cost at least the whole compile.
    assert!(
        per_call * 10 < compile,
        "ignores takes {per_call:?} a call, compiling the patterns {compile:?}"
    );
}
