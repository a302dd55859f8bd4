//! Wildcard matching, one matcher for two syntaxes: Steampipe's globs (`*`, `?`: the
//! `connections` option, `ignore_error_codes`) and PostgreSQL's `LIKE` and `ILIKE` (`%`,
//! `_`, `\` escaping the next character), with which an aggregator prunes its members.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This character.
    Literal(char),
    /// Any one character (`?`, `_`).
    One,
    /// Any run of characters, none included (`*`, `%`).
    Any,
}

/// Whether `tokens` match the whole of `text`: the classic backtracking over the last `Any`,
/// linear for patterns with a single `Any` and at worst quadratic.
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < text.len() {
        match tokens.get(t) {
            Some(Token::One) => {
                t += 1;
                n += 1;
            }
            Some(Token::Literal(c)) if *c == text[n] => {
                t += 1;
                n += 1;
            }
            Some(Token::Any) => {
                backtrack = Some((t, n));
                t += 1;
            }
            _ => match backtrack {
                Some((any, matched)) => {
                    t = any + 1;
                    n = matched + 1;
                    backtrack = Some((any, matched + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|&token| token == Token::Any)
}

fn glob_tokens(pattern: &str) -> Vec<Token> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Literal(c),
        })
        .collect()
}

/// Glob matching as Steampipe's connection wildcards: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    matches(&glob_tokens(pattern), &name.chars().collect::<Vec<_>>())
}

/// A list of globs compiled once, for matching many names: a name without wildcards is a
/// hash look-up, so an aggregator listing 1,000 members by name costs 1,000 look-ups rather
/// than a million matches.
pub struct GlobSet {
    exact: std::collections::HashSet<String>,
    wildcards: Vec<Vec<Token>>,
}

impl GlobSet {
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a String>) -> Self {
        let (wild, exact): (Vec<&String>, Vec<&String>) = patterns
            .into_iter()
            .partition(|pattern| pattern.contains(['*', '?']));
        Self {
            exact: exact.into_iter().cloned().collect(),
            wildcards: wild
                .into_iter()
                .map(|pattern| glob_tokens(pattern))
                .collect(),
        }
    }

    /// Whether any of the globs matches the whole of `name`.
    pub fn matches(&self, name: &str) -> bool {
        if self.exact.contains(name) {
            return true;
        }
        if self.wildcards.is_empty() {
            return false;
        }
        let name: Vec<char> = name.chars().collect();
        self.wildcards.iter().any(|tokens| matches(tokens, &name))
    }
}

/// `value LIKE pattern` (`ILIKE` when `case_insensitive`) as PostgreSQL evaluates it with
/// the default escape `\`: None for a pattern PostgreSQL refuses (one ending with the
/// escape character), whose query fails anyway.
pub fn like_match(pattern: &str, value: &str, case_insensitive: bool) -> Option<bool> {
    // ILIKE lowers both sides first, as PostgreSQL does for multibyte encodings.
    let fold = |text: &str| -> Vec<char> {
        if case_insensitive {
            text.chars().flat_map(char::to_lowercase).collect()
        } else {
            text.chars().collect()
        }
    };
    let mut tokens = Vec::new();
    let mut pattern = fold(pattern).into_iter();
    while let Some(c) = pattern.next() {
        tokens.push(match c {
            '\\' => Token::Literal(pattern.next()?),
            '%' => Token::Any,
            '_' => Token::One,
            c => Token::Literal(c),
        });
    }
    Some(matches(&tokens, &fold(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_steampipe_wildcards() {
        let cases = [
            ("aws_*", "aws_prod", true),
            ("aws_*", "aws_", true),
            ("aws_*", "gcp_prod", false),
            ("*", "anything", true),
            ("aws_?", "aws_1", true),
            ("aws_?", "aws_12", false),
            ("*_prod_*", "aws_prod_eu", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            // No escapes in globs: a backslash is a character like any other.
            ("a\\*", "a\\bc", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} {name}");
            let set = GlobSet::new([&pattern.to_string()]);
            assert_eq!(set.matches(name), expected, "set of {pattern}: {name}");
        }
        // Exact names and wildcards together; an empty set matches nothing.
        let patterns = ["m0001".to_string(), "prod_*".to_string(), "x?".to_string()];
        let set = GlobSet::new(&patterns);
        for (name, expected) in [
            ("m0001", true),
            ("m0002", false),
            ("prod_eu", true),
            ("xy", true),
            ("x", false),
        ] {
            assert_eq!(set.matches(name), expected, "{name}");
        }
        assert!(!GlobSet::new(&[]).matches(""));
    }

    /// Cases checked against PostgreSQL 18 (`SELECT value LIKE pattern`).
    #[test]
    fn like_matches_as_postgres() {
        let like = |pattern, value| like_match(pattern, value, false);
        assert_eq!(like("aws_%", "aws_prod"), Some(true));
        assert_eq!(like("aws_%", "aws"), Some(false));
        assert_eq!(like("aws\\_%", "aws_prod"), Some(true));
        assert_eq!(like("aws\\_%", "awsXprod"), Some(false));
        assert_eq!(like("aws_%", "awsXprod"), Some(true));
        assert_eq!(like("%", ""), Some(true));
        assert_eq!(like("_", ""), Some(false));
        assert_eq!(like("", ""), Some(true));
        assert_eq!(like("", "a"), Some(false));
        assert_eq!(like("a%b%c", "axxbyyc"), Some(true));
        assert_eq!(like("a%b%c", "axxbyy"), Some(false));
        assert_eq!(like("%\\%", "100%"), Some(true));
        assert_eq!(like("%\\%", "100"), Some(false));
        assert_eq!(like("a\\\\b", "a\\b"), Some(true));
        // An escaped ordinary character is that character.
        assert_eq!(like("\\a\\b", "ab"), Some(true));
        // PostgreSQL: "LIKE pattern must not end with escape character".
        assert_eq!(like("abc\\", "abc"), None);
        // Case matters for LIKE, not for ILIKE; characters, not bytes, for `_`.
        assert_eq!(like("AWS%", "aws_prod"), Some(false));
        assert_eq!(like_match("AWS%", "aws_prod", true), Some(true));
        assert_eq!(like_match("ÉTÉ_", "étéx", true), Some(true));
        assert_eq!(like("caf_", "café"), Some(true));
        assert_eq!(like("caf__", "café"), Some(false));
        assert_eq!(like("_%_", "ab"), Some(true));
        assert_eq!(like("%a%a%a%a%a%b", &"a".repeat(40)), Some(false));
    }
}
