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

/// Glob matching as Steampipe's connection wildcards: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let tokens: Vec<Token> = pattern
        .chars()
        .map(|c| match c {
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Literal(c),
        })
        .collect();
    matches(&tokens, &name.chars().collect::<Vec<_>>())
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
        assert!(glob_match("aws_*", "aws_prod"));
        assert!(glob_match("aws_*", "aws_"));
        assert!(!glob_match("aws_*", "gcp_prod"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("aws_?", "aws_1"));
        assert!(!glob_match("aws_?", "aws_12"));
        assert!(glob_match("*_prod_*", "aws_prod_eu"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        // No escapes in globs: a backslash is a character like any other.
        assert!(glob_match("a\\*", "a\\bc"));
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
