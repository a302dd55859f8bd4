//! Unit tests of option parsing and validation: the options of each catalog here;
//! `ignore_error_messages` in patterns.rs, `ca_bundle` and `proxy_url` in transport.rs, and
//! random option lists in fuzz.rs.

mod fuzz;
mod patterns;
mod transport;

use super::table::{is_secret, VALID_OPTIONS};
use super::values::parse_millis;
use super::*;
use crate::aggregate::OnError;

fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn config_keys_and_plain_options_merge_and_never_overlap() {
    let parsed = parse_server(&opts(&[
        ("config", "regions = [\"eu-*\"]\nmax_error_retry_attempts = 4\nignore_error_codes = [\"Access*\"]"),
        ("timeout", "2s"),
    ]))
    .unwrap();
    assert_eq!(parsed.regions, vec!["eu-*"]);
    assert_eq!(parsed.max_attempts, 4);
    assert_eq!(parsed.timeout, Duration::from_secs(2));
    let denied = FdwError::new(SqlState::FdwError, "x").with_aws_code("AccessDenied");
    assert!(parsed.ignores(&denied));
    assert!(!parsed.ignores(&FdwError::new(SqlState::FdwError, "x").with_aws_code("Throttling")));
    assert!(!parsed.ignores(&FdwError::new(SqlState::FdwError, "no code")));

    let both = parse_server(&opts(&[("config", "profile = \"a\""), ("profile", "b")])).unwrap_err();
    assert_eq!(both.state, SqlState::InvalidOptionName);
    let line = parse_server(&opts(&[("config", "\n\ndefault_region = \"moon\"")])).unwrap_err();
    assert_eq!(
        line.message,
        "invalid value \"moon\" for option \"default_region\": not an AWS region name (config line 3)"
    );
    let aliases = parse_server(&opts(&[
        ("region", "us-east-1"),
        ("default_region", "us-east-2"),
    ]));
    assert!(aliases.is_err());
}

#[test]
fn a_nul_in_config_is_shown_escaped_not_cut() {
    // HCL's \u0000 escape puts a NUL in the value, which a C string would end at.
    let error = parse_server(&opts(&[("config", "default_region = \"a\\u0000b\"")])).unwrap_err();
    assert_eq!(
        error.message,
        "invalid value \"a\\0b\" for option \"default_region\": not an AWS region name (config line 1)"
    );
    let error = parse_server(&opts(&[("config", "profile = \"p\\u0000q\"")])).unwrap_err();
    assert!(
        error
            .message
            .starts_with("invalid value \"p\\0q\" for option \"profile\""),
        "{}",
        error.message
    );
    let error = parse_server(&opts(&[("endpoint_url", "http://a\0b")])).unwrap_err();
    crate::error::assert_remedied(&error);
    assert!(!error.message.contains('\0'), "{}", error.message);
    assert!(error.message.contains("http://a\\0b"), "{}", error.message);
}

#[test]
fn keys_in_server_options_need_a_superuser_and_warn() {
    let keys = opts(&[
        ("access_key", "AKIASERVER"),
        ("secret_key", "server-secret"),
    ]);
    let parsed = parse_server(&keys).unwrap();
    assert_eq!(parsed.keys.as_ref().unwrap().access_key_id, "AKIASERVER");
    assert_eq!(
        validate(Catalog::Server, &keys, true).unwrap(),
        vec![SERVER_KEYS_WARNING]
    );
    let denied = validate(Catalog::Server, &keys, false).unwrap_err();
    assert_eq!(denied.state, SqlState::InsufficientPrivilege);
    crate::error::assert_tidy(&denied);
    let ambient = validate(
        Catalog::UserMapping,
        &opts(&[("ambient_credentials", "true")]),
        false,
    )
    .unwrap_err();
    crate::error::assert_tidy(&ambient);
    assert!(
        validate(Catalog::Server, &opts(&[("region", "us-east-1")]), false)
            .unwrap()
            .is_empty()
    );
    assert!(may_carry_secrets(&opts(&[("config", "profile = \"x\"")])));
    assert!(!may_carry_secrets(&opts(&[("region", "us-east-1")])));
    // Misspelt key names carry keys all the same.
    assert!(may_carry_secrets(&opts(&[("acess_key", "AKIA")])));
    assert!(may_carry_secrets(&opts(&[("secretkey", "wJalr")])));
    assert!(may_carry_secrets(&opts(&[(
        "endpoint_url",
        "http://AKIA:wJalr@host"
    )])));
    assert!(!may_carry_secrets(&opts(&[("timeout", "2s")])));
}

#[test]
fn assume_role_options_are_checked_together() {
    let role = parse_server(&opts(&[
        (
            "role_arn",
            "arn:aws-us-gov:iam::123456789012:role/path/to/Reader",
        ),
        ("external_id", "ext:1234/x"),
        ("duration_seconds", "3600"),
    ]))
    .unwrap()
    .assume_role
    .unwrap();
    assert_eq!(role.session_name, DEFAULT_ROLE_SESSION_NAME);
    assert_eq!(role.external_id.as_deref(), Some("ext:1234/x"));
    assert_eq!(role.duration, Some(Duration::from_secs(3600)));
    for bad in [
        "arn:aws:iam::123456789012:user/Alice",
        "arn:aws:iam::12345:role/r",
        "arn:aws:sts::123456789012:role/r",
        "arn:aws:iam::123456789012:role/",
        "role/r",
    ] {
        assert!(parse_server(&opts(&[("role_arn", bad)])).is_err(), "{bad}");
    }
    let orphan = parse_server(&opts(&[("duration_seconds", "900")])).unwrap_err();
    assert_eq!(orphan.state, SqlState::OptionNameNotFound);
    let arn = ("role_arn", "arn:aws:iam::123456789012:role/r");
    assert!(parse_server(&opts(&[arn, ("duration_seconds", "899")])).is_err());
    assert!(parse_server(&opts(&[arn, ("duration_seconds", "43201")])).is_err());
    assert!(parse_server(&opts(&[arn, ("role_session_name", "x")])).is_err());
    assert!(parse_server(&opts(&[arn, ("external_id", "has space")])).is_err());
}

#[test]
fn regions_and_error_codes_take_wildcards() {
    let parsed = parse_server(&opts(&[
        ("regions", "us-east-1, us-??st-2, eu-*, *"),
        ("ignore_error_codes", "AccessDenied, Unauthorized*"),
    ]))
    .unwrap();
    assert_eq!(parsed.regions.len(), 4);
    assert_eq!(
        parsed.ignore_error_codes,
        vec!["AccessDenied", "Unauthorized*"]
    );
    assert!(parse_server(&opts(&[("regions", "us-east-1,,eu-west-1")])).is_err());
    assert!(parse_server(&opts(&[("regions", "US-EAST-1")])).is_err());
    assert!(parse_server(&opts(&[("ignore_error_codes", "a b")])).is_err());
    assert!(parse_server(&opts(&[("instance_metadata", "off")]))
        .map(|p| !p.instance_metadata)
        .unwrap());
}

#[test]
fn server_options_parse_with_defaults() {
    let parsed = parse_server(&opts(&[
        ("region", "eu-west-2"),
        ("endpoint_url", "http://127.0.0.1:5000/"),
    ]))
    .unwrap();
    assert_eq!(parsed.region.as_deref(), Some("eu-west-2"));
    assert_eq!(
        parsed.endpoint_url.as_deref(),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(parsed.timeout, DEFAULT_TIMEOUT);
    assert_eq!(parsed.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
}

#[test]
fn unknown_option_names_the_valid_ones() {
    let err = validate(Catalog::Server, &opts(&[("regoin", "us-east-1")]), true).unwrap_err();
    assert_eq!(err.state, SqlState::InvalidOptionName);
    assert_eq!(err.message, "invalid option \"regoin\"");
    assert!(err
        .hint
        .as_deref()
        .unwrap()
        .contains("region, endpoint_url, profile"));
}

#[test]
fn option_in_the_wrong_catalog_says_where_it_belongs() {
    let err = validate(
        Catalog::Server,
        &opts(&[("ambient_credentials", "true")]),
        true,
    )
    .unwrap_err();
    assert_eq!(err.state, SqlState::InvalidOptionName);
    assert_eq!(
        err.hint.as_deref(),
        Some("\"ambient_credentials\" is an option of a user mapping, not of a server.")
    );
    let err = validate(Catalog::Wrapper, &opts(&[("x", "1")]), true).unwrap_err();
    assert_eq!(
        err.hint.as_deref(),
        Some("A foreign-data wrapper of aws_sts takes no options.")
    );
}

#[test]
fn bad_region_and_url_are_rejected() {
    for region in [
        "US-EAST-1",
        "useast1",
        "us-east-",
        "-us-east-1",
        "us east 1",
        "",
        "aws-globals",
        "AWS-GLOBAL",
    ] {
        let err = parse_server(&opts(&[("region", region)])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{region}");
    }
    for region in [
        "us-east-1",
        "us-gov-west-1",
        "cn-northwest-1",
        "eu-isoe-west-1",
        "ap-southeast-3",
        // STS's global endpoint, as the SDK names it.
        "aws-global",
    ] {
        assert!(
            parse_server(&opts(&[("region", region)])).is_ok(),
            "{region}"
        );
    }
    for url in [
        "ftp://x",
        "127.0.0.1:5000",
        "http://",
        "http://a b",
        "http://h:99999",
    ] {
        let err = parse_server(&opts(&[("endpoint_url", url)])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{url}");
    }
    let err = parse_server(&opts(&[(
        "endpoint_url",
        "https://AKIA:secret@sts.amazonaws.com",
    )]))
    .unwrap_err();
    assert!(!err.message.contains("secret"), "{}", err.message);
    assert!(parse_server(&opts(&[("endpoint_url", "http://[::1]:5000/")])).is_ok());
}

#[test]
fn durations_accept_seconds_and_postgres_units() {
    assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
    assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_duration("2 s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_duration("1min"), Some(Duration::from_secs(60)));
    assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    for bad in ["", "s", "2x", "-1", "1e3", "two"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    for bad in ["0", "0ms", "2h"] {
        let err = parse_server(&opts(&[("timeout", bad)])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad}");
    }
}

#[test]
fn retry_options_take_steampipe_units() {
    let parsed = parse_server(&[]).unwrap();
    assert_eq!(
        (parsed.max_attempts, parsed.min_retry_delay),
        (9, Duration::from_millis(25))
    );
    let parsed = parse_server(&opts(&[
        ("max_error_retry_attempts", "3"),
        ("min_error_retry_delay", "100"),
    ]))
    .unwrap();
    assert_eq!(
        (parsed.max_attempts, parsed.min_retry_delay),
        (3, Duration::from_millis(100))
    );
    let parsed = parse_server(&opts(&[("min_error_retry_delay", "1s")])).unwrap();
    assert_eq!(parsed.min_retry_delay, Duration::from_secs(1));
    for bad in [
        ("max_error_retry_attempts", "0"),
        ("max_error_retry_attempts", "1.5"),
        ("max_error_retry_attempts", "101"),
        ("min_error_retry_delay", "0"),
        ("min_error_retry_delay", "0.5"),
        ("min_error_retry_delay", "soon"),
    ] {
        let err = parse_server(&opts(&[bad])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad:?}");
    }
}

#[test]
fn aggregator_servers_take_their_own_options() {
    let parsed =
        parse_server_kind(&opts(&[("type", "aggregator"), ("connections", "aws_*")])).unwrap();
    assert_eq!(
        parsed,
        ServerKind::Aggregator(AggregatorOptions {
            patterns: vec!["aws_*".into()],
            concurrency: 25,
            on_error: OnError::Fail
        })
    );
    let err = parse_server_kind(&opts(&[("type", "aggregator")])).unwrap_err();
    assert_eq!(err.state, SqlState::OptionNameNotFound);
    let err = parse_server_kind(&opts(&[
        ("type", "aggregator"),
        ("connections", "a"),
        ("region", "us-east-1"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.message,
        "option \"region\" does not apply to an aggregator server"
    );
    let err = parse_server_kind(&opts(&[("concurrency", "5")])).unwrap_err();
    assert_eq!(
        err.message,
        "option \"concurrency\" applies only to an aggregator server"
    );
    assert!(parse_server_kind(&opts(&[("type", "cluster")])).is_err());
    assert!(matches!(
        parse_server_kind(&opts(&[("type", "connection"), ("region", "eu-west-1")])).unwrap(),
        ServerKind::Connection(_)
    ));
}

#[test]
fn cache_options() {
    let parsed = parse_server(&[]).unwrap();
    assert!(parsed.caching());
    assert_eq!(parsed.cache_ttl, DEFAULT_CACHE_TTL);
    let parsed = parse_server(&opts(&[("cache_ttl", "0")])).unwrap();
    assert!(!parsed.caching());
    let parsed = parse_server(&opts(&[("cache", "false"), ("cache_ttl", "10min")])).unwrap();
    assert!(!parsed.caching());
    assert_eq!(parsed.cache_ttl, Duration::from_secs(600));
    for bad in [
        ("cache", "sometimes"),
        ("cache_ttl", "2d"),
        ("cache_ttl", "25h"),
    ] {
        let err = parse_server(&opts(&[bad])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue, "{bad:?}");
    }
}

#[test]
fn keys_come_in_pairs_and_are_never_echoed() {
    let parsed = parse_user_mapping(&opts(&[
        ("access_key", "AKIAEXAMPLE"),
        ("secret_key", "s3cr3t"),
    ]))
    .unwrap();
    let keys = parsed.keys.unwrap();
    assert_eq!(keys.access_key_id, "AKIAEXAMPLE");
    assert!(!format!("{keys:?}").contains("s3cr3t"));

    let err = parse_user_mapping(&opts(&[("access_key", "AKIAEXAMPLE")])).unwrap_err();
    assert_eq!(err.state, SqlState::OptionNameNotFound);
    assert_eq!(
        err.message,
        "option \"access_key\" requires secret_key in the same user mapping"
    );
    let err = parse_user_mapping(&opts(&[("secret_key", "s3cr3t")])).unwrap_err();
    assert_eq!(
        err.message,
        "option \"secret_key\" requires access_key in the same user mapping"
    );
    let err = parse_user_mapping(&opts(&[("session_token", "tok")])).unwrap_err();
    assert_eq!(
        err.message,
        "option \"session_token\" requires access_key and secret_key in the same user mapping"
    );

    let err = parse_user_mapping(&opts(&[
        ("access_key", "AKIA"),
        ("secret_key", "bad secret"),
    ]))
    .unwrap_err();
    assert_eq!(err.state, SqlState::InvalidAttributeValue);
    assert!(!err.message.contains("bad secret"), "{}", err.message);
    assert!(parse_user_mapping(&[]).unwrap().keys.is_none());
}

#[test]
fn ambient_credentials_need_a_superuser() {
    let options = opts(&[("ambient_credentials", "true")]);
    assert!(validate(Catalog::UserMapping, &options, true).is_ok());
    let err = validate(Catalog::UserMapping, &options, false).unwrap_err();
    assert_eq!(err.state, SqlState::InsufficientPrivilege);
    assert!(validate(
        Catalog::UserMapping,
        &opts(&[("ambient_credentials", "maybe")]),
        true
    )
    .is_err());
    assert!(
        !parse_user_mapping(&opts(&[("ambient_credentials", "off")]))
            .unwrap()
            .ambient_credentials
    );
}

#[test]
fn column_name_must_be_a_known_column() {
    assert_eq!(
        parse_column(&opts(&[("column_name", "arn")]))
            .unwrap()
            .column_name
            .as_deref(),
        Some("arn")
    );
    let err = parse_column(&opts(&[("column_name", "nope")])).unwrap_err();
    assert_eq!(err.state, SqlState::InvalidAttributeValue);
    assert!(err.hint.unwrap().contains("account_id"));
}

#[test]
fn fips_and_dual_stack_are_booleans_left_to_the_environment_when_unset() {
    let parsed = parse_server(&[]).unwrap();
    assert_eq!((parsed.use_fips, parsed.use_dual_stack), (None, None));
    let parsed = parse_server(&opts(&[
        ("use_fips_endpoint", "on"),
        ("use_dualstack_endpoint", "false"),
    ]))
    .unwrap();
    assert_eq!(
        (parsed.use_fips, parsed.use_dual_stack),
        (Some(true), Some(false))
    );
    for name in ["use_fips_endpoint", "use_dualstack_endpoint"] {
        let err = parse_server(&opts(&[(name, "maybe")])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidAttributeValue);
        assert_eq!(
            err.message,
            format!("invalid value \"maybe\" for option \"{name}\": not a boolean")
        );
        assert!(validate(Catalog::Server, &opts(&[(name, "true")]), false).is_ok());
        // Options of a server, nowhere else.
        assert!(validate(Catalog::UserMapping, &opts(&[(name, "true")]), true).is_err());
        assert!(connection_option_names().contains(&name));
    }
    // They are part of the settings a client is pooled by.
    assert_ne!(
        parse_server(&opts(&[("use_fips_endpoint", "true")])).unwrap(),
        parse_server(&[]).unwrap()
    );
}

#[test]
fn a_custom_endpoint_has_no_fips_or_dual_stack_variant() {
    let url = ("endpoint_url", "http://127.0.0.1:4566");
    for name in ["use_fips_endpoint", "use_dualstack_endpoint"] {
        let err = parse_server(&opts(&[url, (name, "true")])).unwrap_err();
        assert_eq!(err.state, SqlState::InvalidOptionName);
        assert!(
            err.message
                .starts_with(&format!("options \"endpoint_url\" and \"{name}\" ")),
            "{}",
            err.message
        );
        crate::error::assert_tidy(&err);
        // Off is fine, and so is either one without a custom endpoint.
        assert!(parse_server(&opts(&[url, (name, "false")])).is_ok());
        assert!(parse_server(&opts(&[(name, "true")])).is_ok());
    }
    // endpoint_url from config says its line.
    let err = parse_server(&opts(&[
        (
            "config",
            "profile = \"p\"\nendpoint_url = \"http://127.0.0.1:4566\"",
        ),
        ("use_fips_endpoint", "true"),
    ]))
    .unwrap_err();
    assert!(err.message.ends_with("(config line 2)"), "{}", err.message);
}
