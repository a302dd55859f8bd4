//! The row model of `aws_sts_caller_identity`: Steampipe's columns, their types and comments,
//! and how each is derived from a GetCallerIdentity answer.

use serde_json::json;

/// What GetCallerIdentity answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub arn: String,
    pub user_id: String,
    pub account_id: String,
}

/// The columns of `aws_sts_caller_identity`, in Steampipe's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Arn,
    UserId,
    Title,
    Akas,
    Partition,
    AccountId,
    SpConnectionName,
    SpCtx,
    Ctx,
}

pub const TABLE_NAME: &str = "aws_sts_caller_identity";
pub const TABLE_COMMENT: &str =
    "The IAM user or role whose credentials are used to call the AWS STS \
GetCallerIdentity operation (one row per server).";

pub const ALL_COLUMNS: [Column; 9] = [
    Column::Arn,
    Column::UserId,
    Column::Title,
    Column::Akas,
    Column::Partition,
    Column::AccountId,
    Column::SpConnectionName,
    Column::SpCtx,
    Column::Ctx,
];

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::Arn => "arn",
            Column::UserId => "user_id",
            Column::Title => "title",
            Column::Akas => "akas",
            Column::Partition => "partition",
            Column::AccountId => "account_id",
            Column::SpConnectionName => "sp_connection_name",
            Column::SpCtx => "sp_ctx",
            Column::Ctx => "_ctx",
        }
    }

    pub fn sql_type(self) -> &'static str {
        match self {
            Column::Akas | Column::SpCtx | Column::Ctx => "jsonb",
            _ => "text",
        }
    }

    /// Steampipe's column descriptions.
    pub fn comment(self) -> &'static str {
        match self {
            Column::Arn => "The AWS ARN associated with the calling entity.",
            Column::UserId => "The unique identifier of the calling entity.",
            Column::Title => "Title of the resource.",
            Column::Akas => {
                "Array of globally unique identifier strings (also known as) for the resource."
            }
            Column::Partition => {
                "The AWS partition in which the resource is located (aws, aws-cn, or aws-us-gov)."
            }
            Column::AccountId => "The AWS Account ID in which the resource is located.",
            Column::SpConnectionName => {
                "Steampipe connection name: the foreign server the row came from."
            }
            Column::SpCtx => {
                "Steampipe context in JSON form: the connection and the extension version."
            }
            Column::Ctx => {
                "Steampipe context in JSON form: the connection and the extension version."
            }
        }
    }

    pub fn by_name(name: &str) -> Option<Column> {
        ALL_COLUMNS.into_iter().find(|column| column.name() == name)
    }

    /// The column's value in its text form (jsonb columns as JSON text); `None` is SQL NULL.
    pub fn value(self, identity: &CallerIdentity, connection_name: &str) -> Option<String> {
        match self {
            Column::Arn => Some(identity.arn.clone()),
            Column::UserId | Column::Title => Some(identity.user_id.clone()),
            Column::Akas => Some(json!([identity.arn]).to_string()),
            Column::Partition => partition_of(&identity.arn).map(str::to_string),
            Column::AccountId => Some(identity.account_id.clone()),
            Column::SpConnectionName => Some(connection_name.to_string()),
            Column::SpCtx | Column::Ctx => Some(context_json(connection_name)),
        }
    }
}

pub fn column_names() -> Vec<&'static str> {
    ALL_COLUMNS.iter().map(|column| column.name()).collect()
}

/// The partition is the ARN's second field: `arn:aws-us-gov:iam::…` → `aws-us-gov`.
pub fn partition_of(arn: &str) -> Option<&str> {
    let mut fields = arn.split(':');
    match (fields.next(), fields.next()) {
        (Some("arn"), Some(partition)) if !partition.is_empty() => Some(partition),
        _ => None,
    }
}

/// `sp_ctx` and `_ctx`: which connection (foreign server) answered, and which extension.
pub fn context_json(connection_name: &str) -> String {
    json!({
        "connection_name": connection_name,
        "extension": "aws_sts",
        "version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

/// Quotes an SQL identifier when it needs it, as Postgres' quote_identifier does for
/// the names used here.
pub fn quote_ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && KEYWORDS.binary_search(&name).is_err();
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// PostgreSQL 18's keywords that are not unreserved (parser/kwlist.h, a superset of the
/// older versions'): as identifiers they need quotes (`SERVER "default"`), as
/// quote_identifier gives them. Sorted, for the binary search.
#[rustfmt::skip]
const KEYWORDS: [&str; 164] = [
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric",
    "authorization", "between", "bigint", "binary", "bit", "boolean", "both", "case",
    "cast", "char", "character", "check", "coalesce", "collate", "collation", "column",
    "concurrently", "constraint", "create", "cross", "current_catalog", "current_date",
    "current_role", "current_schema", "current_time", "current_timestamp", "current_user",
    "dec", "decimal", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "exists", "extract", "false", "fetch", "float", "for", "foreign", "freeze",
    "from", "full", "grant", "greatest", "group", "grouping", "having", "ilike", "in",
    "initially", "inner", "inout", "int", "integer", "intersect", "interval", "into", "is",
    "isnull", "join", "json", "json_array", "json_arrayagg", "json_exists", "json_object",
    "json_objectagg", "json_query", "json_scalar", "json_serialize", "json_table",
    "json_value", "lateral", "leading", "least", "left", "like", "limit", "localtime",
    "localtimestamp", "merge_action", "national", "natural", "nchar", "none", "normalize",
    "not", "notnull", "null", "nullif", "numeric", "offset", "on", "only", "or", "order",
    "out", "outer", "overlaps", "overlay", "placing", "position", "precision", "primary",
    "real", "references", "returning", "right", "row", "select", "session_user", "setof",
    "similar", "smallint", "some", "substring", "symmetric", "system_user", "table",
    "tablesample", "then", "time", "timestamp", "to", "trailing", "treat", "trim", "true",
    "union", "unique", "user", "using", "values", "varchar", "variadic", "verbose", "when",
    "where", "window", "with", "xmlattributes", "xmlconcat", "xmlelement", "xmlexists",
    "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize",
    "xmltable",
];

/// The `CREATE FOREIGN TABLE` that IMPORT FOREIGN SCHEMA runs for a server.
pub fn create_table_sql(server_name: &str) -> String {
    let columns: Vec<String> = ALL_COLUMNS
        .iter()
        .map(|column| format!("{} {}", quote_ident(column.name()), column.sql_type()))
        .collect();
    format!(
        "CREATE FOREIGN TABLE {} ({}) SERVER {}",
        TABLE_NAME,
        columns.join(", "),
        // Always quoted: a server name may be a keyword such as "default".
        format_args!("\"{}\"", server_name.replace('"', "\"\""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> CallerIdentity {
        CallerIdentity {
            arn: "arn:aws:iam::123456789012:user/Alice".into(),
            user_id: "AIDAEXAMPLE".into(),
            account_id: "123456789012".into(),
        }
    }

    #[test]
    fn columns_are_derived_as_steampipe_derives_them() {
        let identity = alice();
        let value = |column: Column| column.value(&identity, "aws");
        assert_eq!(
            value(Column::Arn).as_deref(),
            Some("arn:aws:iam::123456789012:user/Alice")
        );
        assert_eq!(value(Column::Title).as_deref(), Some("AIDAEXAMPLE"));
        assert_eq!(value(Column::UserId).as_deref(), Some("AIDAEXAMPLE"));
        assert_eq!(
            value(Column::Akas).as_deref(),
            Some(r#"["arn:aws:iam::123456789012:user/Alice"]"#)
        );
        assert_eq!(value(Column::Partition).as_deref(), Some("aws"));
        assert_eq!(value(Column::AccountId).as_deref(), Some("123456789012"));
        assert_eq!(value(Column::SpConnectionName).as_deref(), Some("aws"));
        let ctx: serde_json::Value = serde_json::from_str(&value(Column::Ctx).unwrap()).unwrap();
        assert_eq!(ctx["connection_name"], "aws");
        assert_eq!(ctx["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(value(Column::SpCtx), value(Column::Ctx));
    }

    #[test]
    fn partition_is_the_second_arn_field() {
        assert_eq!(
            partition_of("arn:aws-us-gov:sts::1:assumed-role/r/s"),
            Some("aws-us-gov")
        );
        assert_eq!(partition_of("arn:aws-cn:iam::1:user/x"), Some("aws-cn"));
        assert_eq!(partition_of("not-an-arn"), None);
        assert_eq!(partition_of("arn::iam"), None);
        assert_eq!(partition_of(""), None);
    }

    #[test]
    fn import_sql_lists_every_column_in_order() {
        assert_eq!(
            create_table_sql("aws"),
            "CREATE FOREIGN TABLE aws_sts_caller_identity (arn text, user_id text, title text, akas jsonb, \
             partition text, account_id text, sp_connection_name text, sp_ctx jsonb, _ctx jsonb) SERVER \"aws\""
        );
        assert!(create_table_sql("my \"srv\"").ends_with("SERVER \"my \"\"srv\"\"\""));
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(quote_ident("_ctx"), "_ctx");
        assert_eq!(quote_ident("Arn"), "\"Arn\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("default"), "\"default\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("json_table"), "\"json_table\"");
        // Unreserved keywords need no quotes.
        assert_eq!(quote_ident("partition"), "partition");
        assert!(KEYWORDS.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Column::by_name("account_id"), Some(Column::AccountId));
        assert_eq!(Column::by_name("nope"), None);
    }
}
