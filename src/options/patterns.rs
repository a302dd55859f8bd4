//! `ignore_error_messages`: Steampipe's regular expressions over AWS error messages.

use std::fmt;
use std::hash::{Hash, Hasher};

use regex::Regex;

use super::values::invalid_value;
use crate::error::{FdwError, SqlState};

const PATTERN_HINT: &str = "Give one regular expression per line, in Go's (RE2) syntax as \
                            Steampipe takes them: ^User: .* is not authorized.";

/// Regular expressions matched against an AWS error message (`ignore_error_messages`),
/// compiled once, when the option is parsed. Options compare and hash by the patterns'
/// text, so that the client pool and the caches keyed by [`super::ServerOptions`] see what
/// was written; a clone shares the compiled patterns.
#[derive(Clone, Default)]
pub struct MessagePatterns {
    patterns: Vec<(String, Regex)>,
}

impl MessagePatterns {
    /// The patterns of the plain option: one regular expression per line, spaces around
    /// each dropped, blank lines skipped (so that a pattern may hold a comma). At least
    /// one is needed; each must compile.
    pub(super) fn parse(value: &str) -> Result<Self, FdwError> {
        let mut patterns = Vec::new();
        for line in value.lines().map(str::trim).filter(|line| !line.is_empty()) {
            // The regex crate's limits (10 MiB compiled) hold.
            let regex = Regex::new(line).map_err(|error| {
                invalid_value(
                    "ignore_error_messages",
                    line,
                    &format!("not a regular expression ({})", regex_error(&error)),
                    PATTERN_HINT,
                )
            })?;
            patterns.push((line.to_string(), regex));
        }
        if patterns.is_empty() {
            // The value is blank: nothing worth quoting.
            return Err(FdwError::new(
                SqlState::InvalidAttributeValue,
                "invalid value for option \"ignore_error_messages\": no regular expression",
            )
            .with_hint("Give one regular expression per line, or leave the option out."));
        }
        Ok(MessagePatterns { patterns })
    }

    /// The patterns as written.
    pub fn sources(&self) -> Vec<&str> {
        self.patterns
            .iter()
            .map(|(source, _)| source.as_str())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern matches somewhere in `message` (unanchored, as Go's
    /// `MatchString`).
    pub fn matches(&self, message: &str) -> bool {
        self.patterns
            .iter()
            .any(|(_, regex)| regex.is_match(message))
    }
}

/// What is wrong with a pattern, in one line: the regex crate's last line says it
/// ("error: unclosed group"), after the pattern and a caret.
fn regex_error(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .unwrap_or("a syntax error")
            .to_string(),
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than {limit} bytes")
        }
        _ => error
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl PartialEq for MessagePatterns {
    fn eq(&self, other: &Self) -> bool {
        self.sources() == other.sources()
    }
}

impl Eq for MessagePatterns {}

impl Hash for MessagePatterns {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sources().hash(state);
    }
}

impl fmt::Debug for MessagePatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.sources()).finish()
    }
}
