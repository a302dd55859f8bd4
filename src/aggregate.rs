//! Aggregator servers (Steampipe's `type = "aggregator"`): which member servers a scan
//! calls, from the `connections` patterns and the `sp_connection_name` quals.

use crate::error::{FdwError, SqlState};

pub const DEFAULT_CONCURRENCY: usize = 25;
const MAX_CONCURRENCY: usize = 1000;

/// What an aggregator does when a member server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The query fails with the member's error (Steampipe's behaviour).
    Fail,
    /// The member's row is left out with a WARNING naming it.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatorOptions {
    /// Glob patterns (`*`, `?`) over server names, as Steampipe's `connections`.
    pub patterns: Vec<String>,
    /// How many member servers are called at once.
    pub concurrency: usize,
    pub on_error: OnError,
}

fn invalid(name: &str, value: &str, why: &str, hint: &str) -> FdwError {
    FdwError::new(
        SqlState::InvalidAttributeValue,
        format!("invalid value \"{value}\" for option \"{name}\": {why}"),
    )
    .with_hint(hint.to_string())
}

/// Parses `connections 'aws_*, billing'`: a comma-separated list of server name patterns.
pub fn parse_patterns(value: &str) -> Result<Vec<String>, FdwError> {
    let patterns: Vec<String> = value
        .split(',')
        .map(|part| part.trim().to_string())
        .collect();
    let valid = |pattern: &String| {
        !pattern.is_empty()
            && pattern
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '*' | '?'))
    };
    if patterns.iter().all(valid) {
        Ok(patterns)
    } else {
        Err(invalid(
            "connections",
            value,
            "not a list of server name patterns",
            "Give server names separated by commas; * matches any run of characters and ? one character ('aws_*, billing').",
        ))
    }
}

pub fn parse_concurrency(value: &str) -> Result<usize, FdwError> {
    match value.trim().parse::<usize>() {
        Ok(concurrency) if (1..=MAX_CONCURRENCY).contains(&concurrency) => Ok(concurrency),
        _ => Err(invalid(
            "concurrency",
            value,
            "not a whole number from 1 to 1000",
            "Give how many member servers may be called at once (default 25).",
        )),
    }
}

/// The most member calls a scan runs at once in a backend that may hold `file_limit`
/// descriptors (the smaller of `max_files_per_process` and its RLIMIT_NOFILE): each call
/// holds one connection, and half the limit stays Postgres's own (its files, sockets, pipes).
pub fn effective_concurrency(configured: usize, file_limit: usize) -> usize {
    configured.min((file_limit / 2).max(1))
}

pub fn parse_on_error(value: &str) -> Result<OnError, FdwError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "fail" => Ok(OnError::Fail),
        "skip" => Ok(OnError::Skip),
        _ => Err(invalid(
            "on_error",
            value,
            "neither 'fail' nor 'skip'",
            "'fail' fails the query on a member's error; 'skip' leaves that member's row out with a WARNING.",
        )),
    }
}

/// Glob matching as Steampipe's connection wildcards: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, n));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            n = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// What a query's quals pin down, so an aggregator calls no member whose row could not
/// match: `sp_connection_name` and `account_id` compared with `=` or `IN (...)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinned {
    pub connection_names: Option<Vec<String>>,
    pub account_ids: Option<Vec<String>>,
}

impl Pinned {
    /// JSON for the plan's fdw_private (a plan can be cached and copied, so no pointers).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&(&self.connection_names, &self.account_ids)).unwrap_or_default()
    }

    /// Reads what [`Pinned::to_json`] wrote; anything else pins nothing.
    pub fn from_json(json: &str) -> Pinned {
        let (connection_names, account_ids) = serde_json::from_str(json).unwrap_or_default();
        Pinned {
            connection_names,
            account_ids,
        }
    }

    /// Whether a member whose account is `known` (None: cannot be known without calling)
    /// may produce a row that passes the account_id quals.
    pub fn admits_account(&self, known: Option<&str>) -> bool {
        match (&self.account_ids, known) {
            (Some(accounts), Some(account)) => accounts.iter().any(|pinned| pinned == account),
            _ => true,
        }
    }
}

/// Narrows what a column is pinned to by one more qual's values: a row must pass every qual.
pub fn narrow(pinned: &mut Option<Vec<String>>, values: Vec<String>) {
    *pinned = Some(match pinned.take() {
        None => values,
        Some(previous) => previous
            .into_iter()
            .filter(|value| values.contains(value))
            .collect(),
    });
}

/// The account a member's row will show, when it is known before calling: an assumed
/// role's identity is in the role's account; else the account of a cached identity.
pub fn known_account(role_arn: Option<&str>, cached_account: Option<&str>) -> Option<String> {
    role_arn
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|account| !account.is_empty())
        .or(cached_account)
        .map(str::to_string)
}

/// A server an aggregator may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<Id> {
    pub id: Id,
    pub name: String,
    pub is_aggregator: bool,
}

/// The members a scan calls: non-aggregator servers matching a pattern, and, when the query
/// pins `sp_connection_name` (`=` or `IN`), only those names. Sorted by name.
pub fn select_members<Id: Clone>(
    candidates: &[Candidate<Id>],
    patterns: &[String],
    pinned_names: Option<&[String]>,
) -> Vec<Candidate<Id>> {
    let mut members: Vec<Candidate<Id>> = candidates
        .iter()
        .filter(|candidate| !candidate.is_aggregator)
        .filter(|candidate| {
            patterns
                .iter()
                .any(|pattern| glob_match(pattern, &candidate.name))
        })
        .filter(|candidate| pinned_names.is_none_or(|names| names.contains(&candidate.name)))
        .cloned()
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members
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
    }

    #[test]
    fn account_quals_prune_only_members_whose_account_is_known() {
        let pinned = Pinned {
            connection_names: None,
            account_ids: Some(vec!["111111111111".into()]),
        };
        assert!(pinned.admits_account(Some("111111111111")));
        assert!(!pinned.admits_account(Some("222222222222")));
        assert!(pinned.admits_account(None));
        assert!(Pinned::default().admits_account(Some("222222222222")));
        assert_eq!(
            known_account(
                Some("arn:aws:iam::333333333333:role/r"),
                Some("444444444444")
            ),
            Some("333333333333".into())
        );
        assert_eq!(
            known_account(None, Some("444444444444")),
            Some("444444444444".into())
        );
        assert_eq!(known_account(None, None), None);
        let both = Pinned {
            connection_names: Some(vec!["aws_a".into()]),
            account_ids: Some(vec![]),
        };
        assert_eq!(Pinned::from_json(&both.to_json()), both);
        assert_eq!(Pinned::from_json("garbage"), Pinned::default());
        let mut names = None;
        narrow(&mut names, vec!["a".into(), "b".into()]);
        narrow(&mut names, vec!["b".into(), "c".into()]);
        assert_eq!(names, Some(vec!["b".to_string()]));
        narrow(&mut names, vec![]);
        assert_eq!(names, Some(vec![]));
        assert_eq!(Pinned::from_json("null"), Pinned::default());
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            parse_patterns("aws_*, billing").unwrap(),
            vec!["aws_*", "billing"]
        );
        assert!(parse_patterns("aws_*,,x").is_err());
        assert!(parse_patterns("aws prod").is_err());
        assert_eq!(parse_concurrency("100").unwrap(), 100);
        assert!(parse_concurrency("0").is_err());
        assert!(parse_concurrency("1001").is_err());
        assert_eq!(parse_on_error("Skip").unwrap(), OnError::Skip);
        assert_eq!(effective_concurrency(25, 1000), 25);
        assert_eq!(effective_concurrency(1000, 1000), 500);
        assert_eq!(effective_concurrency(1000, 4096), 1000);
        assert_eq!(effective_concurrency(10, 1), 1);
        assert!(parse_on_error("ignore").is_err());
    }

    #[test]
    fn members_are_matching_non_aggregators_pruned_by_pinned_names() {
        let candidates: Vec<Candidate<u32>> = [
            ("aws_b", false),
            ("aws_a", false),
            ("aws_all", true),
            ("gcp", false),
        ]
        .iter()
        .enumerate()
        .map(|(id, (name, is_aggregator))| Candidate {
            id: id as u32,
            name: name.to_string(),
            is_aggregator: *is_aggregator,
        })
        .collect();
        let names =
            |members: Vec<Candidate<u32>>| members.into_iter().map(|m| m.name).collect::<Vec<_>>();
        let patterns = vec!["aws_*".to_string()];
        assert_eq!(
            names(select_members(&candidates, &patterns, None)),
            vec!["aws_a", "aws_b"]
        );
        let pinned = vec!["aws_b".to_string(), "gcp".to_string()];
        assert_eq!(
            names(select_members(&candidates, &patterns, Some(&pinned))),
            vec!["aws_b"]
        );
        assert!(select_members(&candidates, &patterns, Some(&[])).is_empty());
    }
}
