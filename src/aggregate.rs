//! Aggregator servers (Steampipe's `type = "aggregator"`): which member servers a scan
//! calls, from the `connections` patterns and the `sp_connection_name` quals.

use crate::error::{FdwError, SqlState};
use crate::like::like_match;
pub use crate::like::{glob_match, GlobSet};

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

/// An operator of a qual that prunes without pinning values: Steampipe's `LIKE`, `ILIKE`,
/// `NOT LIKE`, `NOT ILIKE` and `<>` on `sp_connection_name` and `account_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Like,
    ILike,
    NotLike,
    NotILike,
    NotEqual,
}

impl FilterOp {
    /// The operator's name in PostgreSQL (`~~` is LIKE).
    pub fn name(self) -> &'static str {
        match self {
            FilterOp::Like => "~~",
            FilterOp::ILike => "~~*",
            FilterOp::NotLike => "!~~",
            FilterOp::NotILike => "!~~*",
            FilterOp::NotEqual => "<>",
        }
    }

    pub fn from_name(name: &str) -> Option<FilterOp> {
        [
            FilterOp::Like,
            FilterOp::ILike,
            FilterOp::NotLike,
            FilterOp::NotILike,
            FilterOp::NotEqual,
        ]
        .into_iter()
        .find(|op| op.name() == name)
    }
}

/// `column <op> operand`; a NULL operand (None) lets no row pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub op: FilterOp,
    pub operand: Option<String>,
}

impl Filter {
    /// Whether a row whose column is `value` passes, as PostgreSQL evaluates the qual; a
    /// pattern PostgreSQL refuses passes here, so that the query fails as it would anyway.
    pub fn admits(&self, value: &str) -> bool {
        let Some(operand) = &self.operand else {
            return false;
        };
        let like = |case_insensitive| like_match(operand, value, case_insensitive);
        match self.op {
            FilterOp::Like => like(false).unwrap_or(true),
            FilterOp::ILike => like(true).unwrap_or(true),
            FilterOp::NotLike => like(false).is_none_or(|matched| !matched),
            FilterOp::NotILike => like(true).is_none_or(|matched| !matched),
            FilterOp::NotEqual => operand != value,
        }
    }

    fn to_pair(&self) -> (&'static str, Option<&str>) {
        (self.op.name(), self.operand.as_deref())
    }

    fn from_pairs(pairs: Vec<(String, Option<String>)>) -> Vec<Filter> {
        pairs
            .into_iter()
            .filter_map(|(op, operand)| {
                Some(Filter {
                    op: FilterOp::from_name(&op)?,
                    operand,
                })
            })
            .collect()
    }
}

/// What a query's quals pin down, so an aggregator calls no member whose row could not
/// match: `sp_connection_name` and `account_id` compared with `=` or `IN (...)` (the values
/// pinned), or with `LIKE`, `ILIKE`, `NOT LIKE`, `NOT ILIKE` or `<>` (filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinned {
    pub connection_names: Option<Vec<String>>,
    pub account_ids: Option<Vec<String>>,
    pub name_filters: Vec<Filter>,
    pub account_filters: Vec<Filter>,
}

fn pairs(filters: &[Filter]) -> Vec<(&'static str, Option<&str>)> {
    filters.iter().map(Filter::to_pair).collect()
}

type PinnedJson = (
    Option<Vec<String>>,
    Option<Vec<String>>,
    Vec<(String, Option<String>)>,
    Vec<(String, Option<String>)>,
);

impl Pinned {
    /// JSON for the plan's fdw_private (a plan can be cached and copied, so no pointers).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&(
            &self.connection_names,
            &self.account_ids,
            pairs(&self.name_filters),
            pairs(&self.account_filters),
        ))
        .unwrap_or_default()
    }

    /// Reads what [`Pinned::to_json`] wrote; anything else pins nothing.
    pub fn from_json(json: &str) -> Pinned {
        let (connection_names, account_ids, name_filters, account_filters): PinnedJson =
            serde_json::from_str(json).unwrap_or_default();
        Pinned {
            connection_names,
            account_ids,
            name_filters: Filter::from_pairs(name_filters),
            account_filters: Filter::from_pairs(account_filters),
        }
    }

    /// Whether a member of this name may produce a row that passes the
    /// sp_connection_name quals.
    pub fn admits_name(&self, name: &str) -> bool {
        self.connection_names
            .as_ref()
            .is_none_or(|names| names.iter().any(|pinned| pinned == name))
            && self.name_filters.iter().all(|filter| filter.admits(name))
    }

    /// Whether a member whose account is `known` (None: cannot be known without calling)
    /// may produce a row that passes the account_id quals.
    pub fn admits_account(&self, known: Option<&str>) -> bool {
        let Some(account) = known else {
            return true;
        };
        self.account_ids
            .as_ref()
            .is_none_or(|accounts| accounts.iter().any(|pinned| pinned == account))
            && self
                .account_filters
                .iter()
                .all(|filter| filter.admits(account))
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

/// The members a scan calls: non-aggregator servers matching a pattern whose name passes the
/// query's `sp_connection_name` quals. Sorted by name.
pub fn select_members<Id: Clone>(
    candidates: &[Candidate<Id>],
    patterns: &[String],
    pinned: &Pinned,
) -> Vec<Candidate<Id>> {
    let globs = GlobSet::new(patterns);
    let mut members: Vec<Candidate<Id>> = candidates
        .iter()
        .filter(|candidate| !candidate.is_aggregator)
        .filter(|candidate| globs.matches(&candidate.name))
        .filter(|candidate| pinned.admits_name(&candidate.name))
        .cloned()
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_quals_prune_only_members_whose_account_is_known() {
        let pinned = Pinned {
            account_ids: Some(vec!["111111111111".into()]),
            ..Pinned::default()
        };
        assert!(pinned.admits_account(Some("111111111111")));
        assert!(!pinned.admits_account(Some("222222222222")));
        assert!(pinned.admits_account(None));
        assert!(Pinned::default().admits_account(Some("222222222222")));
        let filtered = Pinned {
            account_filters: vec![Filter {
                op: FilterOp::NotLike,
                operand: Some("1111%".into()),
            }],
            ..Pinned::default()
        };
        assert!(!filtered.admits_account(Some("111111111111")));
        assert!(filtered.admits_account(Some("222222222222")));
        assert!(filtered.admits_account(None));
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
            name_filters: vec![Filter {
                op: FilterOp::NotILike,
                operand: Some("AWS\\_%".into()),
            }],
            account_filters: vec![Filter {
                op: FilterOp::NotEqual,
                operand: None,
            }],
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
            names(select_members(&candidates, &patterns, &Pinned::default())),
            vec!["aws_a", "aws_b"]
        );
        let pinned = |connection_names: Option<Vec<&str>>,
                      name_filters: Vec<(FilterOp, Option<&str>)>| Pinned {
            connection_names: connection_names
                .map(|names| names.into_iter().map(str::to_string).collect()),
            name_filters: name_filters
                .into_iter()
                .map(|(op, operand)| Filter {
                    op,
                    operand: operand.map(str::to_string),
                })
                .collect(),
            ..Pinned::default()
        };
        assert_eq!(
            names(select_members(
                &candidates,
                &patterns,
                &pinned(Some(vec!["aws_b", "gcp"]), vec![])
            )),
            vec!["aws_b"]
        );
        assert!(select_members(&candidates, &patterns, &pinned(Some(vec![]), vec![])).is_empty());
        let filtered = |op, operand| {
            names(select_members(
                &candidates,
                &patterns,
                &pinned(None, vec![(op, operand)]),
            ))
        };
        assert_eq!(filtered(FilterOp::Like, Some("%b")), vec!["aws_b"]);
        assert_eq!(filtered(FilterOp::Like, Some("AWS%")), Vec::<String>::new());
        assert_eq!(
            filtered(FilterOp::ILike, Some("AWS%")),
            vec!["aws_a", "aws_b"]
        );
        assert_eq!(filtered(FilterOp::NotLike, Some("%a")), vec!["aws_b"]);
        assert_eq!(filtered(FilterOp::NotILike, Some("%A")), vec!["aws_b"]);
        assert_eq!(filtered(FilterOp::NotEqual, Some("aws_a")), vec!["aws_b"]);
        // A NULL operand matches nothing; a pattern PostgreSQL refuses prunes nothing.
        assert_eq!(filtered(FilterOp::NotEqual, None), Vec::<String>::new());
        assert_eq!(filtered(FilterOp::Like, None), Vec::<String>::new());
        assert_eq!(
            filtered(FilterOp::Like, Some("aws\\")),
            vec!["aws_a", "aws_b"]
        );
        assert_eq!(
            filtered(FilterOp::NotLike, Some("aws\\")),
            vec!["aws_a", "aws_b"]
        );
    }
}
