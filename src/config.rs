//! Steampipe's AWS connection config (the `config` server option, as `steampipe_postgres_aws`
//! takes it, and `aws_sts_configure()` in SQLite), parsed with a real HCL parser.
//!
//! Each config key maps onto the plain option of the same meaning, so a value is validated
//! once, by the option parser, whichever way it was given; this module only checks the HCL
//! shape (known keys, literal values of the right type) and records each key's line for
//! error messages.

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};
use hcl_edit::Span;

use crate::error::{FdwError, SqlState};

/// One config key turned into a plain option: `name` is the option name, `value` its text
/// ('a, b' for lists; one per line for lists of regular expressions, which may hold
/// commas), `line` the 1-based line of the key in the config text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub line: usize,
}

/// The shape a key's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Text,
    TextList,
    /// A list of regular expressions, given to the option one per line.
    PatternList,
    /// A number, or a string holding one (Steampipe's docs show both).
    Number,
    Bool,
}

/// A Steampipe AWS config key and the option it sets (`None`: accepted for compatibility,
/// has no effect on STS).
struct ConfigKey {
    key: &'static str,
    option: Option<&'static str>,
    shape: Shape,
}

const CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey {
        key: "profile",
        option: Some("profile"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "regions",
        option: Some("regions"),
        shape: Shape::TextList,
    },
    ConfigKey {
        key: "default_region",
        option: Some("default_region"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "access_key",
        option: Some("access_key"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "secret_key",
        option: Some("secret_key"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "session_token",
        option: Some("session_token"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "endpoint_url",
        option: Some("endpoint_url"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "max_error_retry_attempts",
        option: Some("max_error_retry_attempts"),
        shape: Shape::Number,
    },
    ConfigKey {
        key: "min_error_retry_delay",
        option: Some("min_error_retry_delay"),
        shape: Shape::Number,
    },
    ConfigKey {
        key: "ignore_error_codes",
        option: Some("ignore_error_codes"),
        shape: Shape::TextList,
    },
    ConfigKey {
        key: "ignore_error_messages",
        option: Some("ignore_error_messages"),
        shape: Shape::PatternList,
    },
    ConfigKey {
        key: "assume_role_arn",
        option: Some("role_arn"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "assume_role_session_name",
        option: Some("role_session_name"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "assume_role_external_id",
        option: Some("external_id"),
        shape: Shape::Text,
    },
    ConfigKey {
        key: "assume_role_duration",
        option: Some("duration_seconds"),
        shape: Shape::Number,
    },
    // Steampipe keys that only matter to other AWS services.
    ConfigKey {
        key: "plugin",
        option: None,
        shape: Shape::Text,
    },
    ConfigKey {
        key: "s3_force_path_style",
        option: None,
        shape: Shape::Bool,
    },
];

/// The config keys that take a secret: their values never appear in a message.
pub const SECRET_KEYS: [&str; 3] = ["access_key", "secret_key", "session_token"];

/// Parses a Steampipe AWS connection config: the body of a `connection "aws" { ... }` block,
/// or that whole block. Errors are invalid-option-value errors that give the line.
pub fn parse(text: &str) -> Result<Vec<ConfigEntry>, FdwError> {
    let body = hcl_edit::parser::parse_body(text).map_err(|error| {
        let location = error.location();
        config_error(
            location.line(),
            format!(
                "not valid HCL at column {}: {}",
                location.column(),
                error.message().trim()
            ),
            "Write the body of a Steampipe connection block, one key = value per line, as \
             profile = \"prod\" and regions = [\"us-east-1\"] on two lines.",
        )
    })?;
    let body = connection_body(&body, text)?;
    let mut entries: Vec<ConfigEntry> = Vec::new();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for structure in body.iter() {
        let line = line_of(text, structure.span());
        let attribute = match structure {
            Structure::Attribute(attribute) => attribute,
            Structure::Block(block) => {
                return Err(config_error(
                    line,
                    format!("unexpected block \"{}\"", block.ident.as_str()),
                    "Inside a connection, give only key = value lines.",
                ))
            }
        };
        let key = attribute.key.as_str();
        let Some(spec) = CONFIG_KEYS.iter().find(|spec| spec.key == key) else {
            let known: Vec<&str> = CONFIG_KEYS.iter().map(|spec| spec.key).collect();
            return Err(FdwError::new(
                SqlState::InvalidOptionName,
                format!("unknown key \"{key}\" in config (line {line})"),
            )
            .with_hint(format!("Supported keys are: {}.", known.join(", "))));
        };
        if let Some((_, first)) = seen.iter().find(|(seen_key, _)| *seen_key == key) {
            return Err(config_error(
                line,
                format!("key \"{key}\" is set twice (first on line {first})"),
                "Give each key once.",
            ));
        }
        seen.push((key, line));
        let value = literal_value(&attribute.value, spec, line)?;
        if let Some(option) = spec.option {
            entries.push(ConfigEntry {
                name: option,
                value,
                line,
            });
        }
    }
    check_pairs(&entries)?;
    Ok(entries)
}

/// The keys a config sets, each with its line, their values unchecked; none when the text
/// is not a config [`parse`] could read (it says why). For a front end that refuses some
/// keys in its own words (SQLite and Steampipe's aggregator keys) before parsing.
pub fn keys(text: &str) -> Vec<(String, usize)> {
    let Ok(body) = hcl_edit::parser::parse_body(text) else {
        return Vec::new();
    };
    let Ok(body) = connection_body(&body, text) else {
        return Vec::new();
    };
    body.attributes()
        .map(|attribute| {
            (
                attribute.key.as_str().to_string(),
                line_of(text, attribute.span()),
            )
        })
        .collect()
}

/// The attributes to read: the text itself, or the body of its only `connection` block.
fn connection_body<'a>(body: &'a Body, text: &str) -> Result<&'a Body, FdwError> {
    let blocks: Vec<_> = body.blocks().collect();
    let single_connection = body.attributes().next().is_none()
        && blocks.len() == 1
        && blocks[0].ident.as_str() == "connection";
    if blocks.is_empty() {
        return Ok(body);
    }
    if single_connection {
        return Ok(&blocks[0].body);
    }
    // The first block that cannot be the one connection: a second one, or any other.
    let culprit = blocks
        .iter()
        .enumerate()
        .find(|(index, block)| *index > 0 || block.ident.as_str() != "connection")
        .map(|(_, block)| *block)
        .unwrap_or(blocks[0]);
    Err(config_error(
        line_of(text, culprit.span()),
        format!(
            "unexpected block \"{}\": config holds one connection's keys",
            culprit.ident.as_str()
        ),
        "Give the keys of one connection (profile = \"prod\" ...), or one connection \"aws\" { ... } block.",
    ))
}

fn literal_value(value: &Expression, spec: &ConfigKey, line: usize) -> Result<String, FdwError> {
    let wrong_type = |expected: &str| {
        config_error(
            line,
            format!("key \"{}\" must be {expected}", spec.key),
            "Only literal values are supported: strings in double quotes, numbers, true/false, [\"lists\"].",
        )
    };
    match spec.shape {
        Shape::Text => match value {
            Expression::String(text) => Ok(text.value().clone()),
            _ => Err(wrong_type("a string in double quotes")),
        },
        Shape::Number => match value {
            Expression::Number(number) => match number.value().as_u64() {
                Some(whole) => Ok(whole.to_string()),
                None => Err(config_error(
                    line,
                    format!("key \"{}\" must be a whole number of at least 1", spec.key),
                    "Give a whole number, as max_error_retry_attempts = 9.",
                )),
            },
            Expression::String(text) => Ok(text.value().clone()),
            _ => Err(wrong_type("a number")),
        },
        Shape::Bool => match value {
            Expression::Bool(flag) => Ok(flag.value().to_string()),
            _ => Err(wrong_type("true or false")),
        },
        Shape::TextList => match value {
            Expression::Array(items) => {
                let mut texts = Vec::new();
                for item in items.iter() {
                    match item {
                        Expression::String(text) if !text.value().contains(',') => {
                            texts.push(text.value().trim().to_string())
                        }
                        _ => return Err(wrong_type("a list of strings")),
                    }
                }
                if texts.is_empty() {
                    return Err(config_error(
                        line,
                        format!("key \"{}\" is an empty list", spec.key),
                        "List at least one value, or leave the key out.",
                    ));
                }
                Ok(texts.join(", "))
            }
            _ => Err(wrong_type("a list of strings, as [\"us-east-1\"]")),
        },
        Shape::PatternList => {
            let Expression::Array(items) = value else {
                return Err(wrong_type(
                    "a list of strings, as [\"^User: .* is not authorized\"]",
                ));
            };
            let mut patterns = Vec::new();
            for item in items.iter() {
                let Expression::String(text) = item else {
                    return Err(wrong_type("a list of strings"));
                };
                let pattern = text.value().trim();
                if pattern.contains(['\n', '\r']) {
                    return Err(config_error(
                        line,
                        format!("a pattern of key \"{}\" holds a line break", spec.key),
                        "Write \\\\n in the HCL string for a pattern that matches a line break.",
                    ));
                }
                if pattern.is_empty() {
                    return Err(config_error(
                        line,
                        format!(
                            "key \"{}\" holds an empty pattern, which would match every message",
                            spec.key
                        ),
                        "Drop the empty string, or write \".*\" to ignore every AWS error.",
                    ));
                }
                patterns.push(pattern.to_string());
            }
            if patterns.is_empty() {
                return Err(config_error(
                    line,
                    format!("key \"{}\" is an empty list", spec.key),
                    "List at least one value, or leave the key out.",
                ));
            }
            Ok(patterns.join("\n"))
        }
    }
}

/// access_key and secret_key come together; session_token only with them.
fn check_pairs(entries: &[ConfigEntry]) -> Result<(), FdwError> {
    let line_of_key = |name: &str| {
        entries
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.line)
    };
    let access = line_of_key("access_key");
    let secret = line_of_key("secret_key");
    let token = line_of_key("session_token");
    let problem = match (access, secret, token) {
        (Some(line), None, _) => Some((line, "access_key is set without secret_key")),
        (None, Some(line), _) => Some((line, "secret_key is set without access_key")),
        (None, None, Some(line)) => Some((
            line,
            "session_token is set without access_key and secret_key",
        )),
        _ => None,
    };
    match problem {
        Some((line, why)) => Err(FdwError::new(
            SqlState::OptionNameNotFound,
            format!("config line {line}: {why}"),
        )
        .with_hint("Give access_key and secret_key together (and session_token for temporary credentials).")),
        None => Ok(()),
    }
}

fn config_error(line: usize, why: String, hint: &str) -> FdwError {
    FdwError::new(
        SqlState::InvalidAttributeValue,
        format!("invalid value for option \"config\": line {line}: {why}"),
    )
    .with_hint(hint.to_string())
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    let offset = span.map(|range| range.start).unwrap_or(0).min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(&'static str, String, usize)> {
        parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error:?}"))
            .into_iter()
            .map(|entry| (entry.name, entry.value, entry.line))
            .collect()
    }

    #[test]
    fn the_steampipe_sample_config_parses() {
        // config/aws.spc of the Steampipe AWS plugin, its commented lines switched on.
        let text = r#"connection "aws" {
  plugin = "aws"
  regions = ["us-east-1", "eu-west-2"] # Specific regions
  default_region = "eu-west-2"
  profile = "myprofile"
  max_error_retry_attempts = 9
  min_error_retry_delay = 25
  ignore_error_codes = ["AccessDenied", "AccessDeniedException", "NotAuthorized", "UnauthorizedOperation", "UnrecognizedClientException", "AuthorizationError"]
  endpoint_url = "http://localhost:4566"
  s3_force_path_style = false
}
"#;
        assert_eq!(
            entries(text),
            vec![
                ("regions", "us-east-1, eu-west-2".into(), 3),
                ("default_region", "eu-west-2".into(), 4),
                ("profile", "myprofile".into(), 5),
                ("max_error_retry_attempts", "9".into(), 6),
                ("min_error_retry_delay", "25".into(), 7),
                (
                    "ignore_error_codes",
                    "AccessDenied, AccessDeniedException, NotAuthorized, UnauthorizedOperation, UnrecognizedClientException, AuthorizationError".into(),
                    8
                ),
                ("endpoint_url", "http://localhost:4566".into(), 9),
            ]
        );
    }

    #[test]
    fn a_body_as_steampipe_postgres_aws_takes_it() {
        assert_eq!(
            entries("profile = \"prod\"\nregions = [\"*\"]"),
            vec![("profile", "prod".into(), 1), ("regions", "*".into(), 2)]
        );
        assert_eq!(entries(""), vec![]);
        assert_eq!(
            entries("assume_role_arn = \"arn:aws:iam::123456789012:role/r\"\nassume_role_duration = \"3600\""),
            vec![
                ("role_arn", "arn:aws:iam::123456789012:role/r".into(), 1),
                ("duration_seconds", "3600".into(), 2)
            ]
        );
    }

    fn error(text: &str) -> FdwError {
        parse(text).expect_err(text)
    }

    #[test]
    fn mistakes_name_their_line() {
        let unknown = error("profile = \"a\"\nregion = \"us-east-1\"");
        assert_eq!(unknown.state, SqlState::InvalidOptionName);
        assert_eq!(unknown.message, "unknown key \"region\" in config (line 2)");
        assert!(unknown.hint.unwrap().contains("default_region"));

        let malformed = error("profile = \"a\"\n\nregions = [\"us-east-1\"");
        assert_eq!(malformed.state, SqlState::InvalidAttributeValue);
        assert!(
            malformed.message.contains("line 3"),
            "{}",
            malformed.message
        );

        let empty = error("regions = []");
        assert_eq!(
            empty.message,
            "invalid value for option \"config\": line 1: key \"regions\" is an empty list"
        );
        let negative = error("\nmax_error_retry_attempts = -1");
        assert!(negative.message.contains("line 2"), "{}", negative.message);
        let fractional = error("min_error_retry_delay = 2.5");
        assert!(fractional.message.contains("whole number"));
        let twice = error("profile = \"a\"\nprofile = \"b\"");
        assert!(twice.message.contains("line 2"), "{}", twice.message);
        let template = error("profile = \"${var.p}\"");
        assert!(template.message.contains("must be a string"));
        let block = error("options \"x\" {\n}\n");
        assert!(block.message.contains("unexpected block"));
        let two = error("connection \"a\" {\n}\nconnection \"b\" {\n}\n");
        assert!(two.message.contains("line 3"), "{}", two.message);
    }

    #[test]
    fn ignore_error_messages_is_a_list_of_patterns_one_per_line() {
        assert_eq!(
            entries("\nignore_error_messages = [\"^User: .* is not authorized\", \"a, b{1,2}\"]"),
            vec![(
                "ignore_error_messages",
                "^User: .* is not authorized\na, b{1,2}".into(),
                2
            )]
        );
        // HCL's escapes: \\d is the regex's \d.
        assert_eq!(
            entries(r#"ignore_error_messages = ["\\d{12}"]"#),
            vec![("ignore_error_messages", r"\d{12}".into(), 1)]
        );
        let empty = error("ignore_error_messages = []");
        assert_eq!(
            empty.message,
            "invalid value for option \"config\": line 1: key \"ignore_error_messages\" is an empty list"
        );
        let blank = error("profile = \"p\"\nignore_error_messages = [\"x\", \" \"]");
        assert_eq!(
            blank.message,
            "invalid value for option \"config\": line 2: key \"ignore_error_messages\" holds an empty pattern, which would match every message"
        );
        let broken = error("ignore_error_messages = [\"a\\nb\"]");
        assert!(broken.message.contains("line break"), "{}", broken.message);
        let not_a_list = error("ignore_error_messages = \"x\"");
        assert!(not_a_list.message.contains("must be a list of strings"));
        for culprit in [&empty, &blank, &broken, &not_a_list] {
            crate::error::assert_tidy(culprit);
        }
    }

    #[test]
    fn partial_key_pairs_are_refused_without_echoing_them() {
        let half = error("access_key = \"AKIAEXAMPLE\"\nprofile = \"x\"");
        assert_eq!(half.state, SqlState::OptionNameNotFound);
        assert_eq!(
            half.message,
            "config line 1: access_key is set without secret_key"
        );
        let token = error("session_token = \"tok-secret\"");
        assert!(!format!("{token:?}").contains("tok-secret"));
        let wrong = error("secret_key = 12");
        assert!(!wrong.message.contains("12"));
    }

    #[test]
    fn keys_are_listed_with_their_lines_values_unchecked() {
        let keys = |text| super::keys(text);
        assert_eq!(
            keys("connection \"all\" {\n  type = \"aggregator\"\n  connections = [\"aws_*\"]\n}\n"),
            vec![("type".to_string(), 2), ("connections".to_string(), 3)]
        );
        assert_eq!(
            keys("profile = 12\nbogus = \"x\""),
            vec![("profile".to_string(), 1), ("bogus".to_string(), 2)]
        );
        assert!(keys("regions = [").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_answer_or_an_error_never_a_panic(text in "\\PC{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn near_valid_configs_never_panic(
            key in "(profile|regions|default_region|max_error_retry_attempts|x)",
            value in "(\"[a-z0-9-]{0,8}\"|\\[\\]|\\[\"a\", 1\\]|[0-9]{1,4}|-[0-9]|\\{\\}|true|\"\\$\\{x\\}\")",
        ) {
            let _ = parse(&format!("{key} = {value}\n"));
        }
    }
}
