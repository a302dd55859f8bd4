//! `ca_bundle` and `proxy_url`: how requests leave the process.

use super::*;

#[test]
fn ca_bundle_is_an_absolute_path_that_only_a_superuser_sets() {
    let bundle = opts(&[("ca_bundle", "/etc/ssl/private-ca.pem")]);
    assert_eq!(
        parse_server(&bundle).unwrap().ca_bundle.as_deref(),
        Some("/etc/ssl/private-ca.pem")
    );
    assert!(validate(Catalog::Server, &bundle, true).unwrap().is_empty());
    let denied = validate(Catalog::Server, &bundle, false).unwrap_err();
    assert_eq!(denied.state, SqlState::InsufficientPrivilege);
    assert_eq!(denied.message, "only a superuser may set ca_bundle");
    assert!(denied.hint.as_deref().unwrap().contains("AWS_CA_BUNDLE"));
    crate::error::assert_tidy(&denied);
    // With keys too, the bundle is refused first; a superuser gets the keys' warning.
    let both = opts(&[
        ("ca_bundle", "/etc/ssl/private-ca.pem"),
        ("access_key", "AKIASERVER"),
        ("secret_key", "server-secret"),
    ]);
    assert_eq!(
        validate(Catalog::Server, &both, false).unwrap_err().message,
        "only a superuser may set ca_bundle"
    );
    assert_eq!(
        validate(Catalog::Server, &both, true).unwrap(),
        vec![SERVER_KEYS_WARNING]
    );
    for (value, why) in [
        ("", "not a file path"),
        ("ca.pem", "not an absolute path"),
        ("~/ca.pem", "not an absolute path"),
        ("/etc/ssl/a\nb.pem", "not a file path"),
    ] {
        let error = parse_server(&opts(&[("ca_bundle", value)])).unwrap_err();
        assert_eq!(error.state, SqlState::InvalidAttributeValue);
        assert!(error.message.ends_with(why), "{}", error.message);
        crate::error::assert_tidy(&error);
        crate::error::assert_remedied(&error);
    }
    assert_eq!(ServerOptions::default().ca_bundle, None);
}

#[test]
fn proxy_url_is_http_host_and_port_without_credentials() {
    for (value, kept) in [
        (
            "http://proxy.example.com:3128",
            "http://proxy.example.com:3128",
        ),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:3128", "http://[::1]:3128"),
    ] {
        let parsed = parse_server(&opts(&[("proxy_url", value)])).unwrap();
        assert_eq!(parsed.proxy_url.as_deref(), Some(kept));
        // Any user may set it: it reads no file.
        assert!(
            validate(Catalog::Server, &opts(&[("proxy_url", value)]), false)
                .unwrap()
                .is_empty()
        );
    }
    for (value, why) in [
        ("proxy.example.com:3128", "must start with http://"),
        ("socks5://proxy:1080", "must start with http://"),
        (
            "https://proxy:3128",
            "aws_sts talks to a proxy in plain HTTP (HTTPS requests go through a CONNECT tunnel)",
        ),
        ("http://proxy.example.com", "the URL has no port"),
        ("http://[::1]", "the URL has no port"),
        (
            "http://proxy:http",
            "the port is not a number from 1 to 65535",
        ),
        ("http://proxy:0", "the port is not a number from 1 to 65535"),
        (
            "http://proxy:3128/path",
            "a proxy URL has no path, query or fragment",
        ),
        (
            "http://proxy:3128?x=1",
            "a proxy URL has no path, query or fragment",
        ),
        ("http://", "not a valid URL"),
        ("http://:3128", "not a valid URL"),
        ("http://pro xy:3128", "not a valid URL"),
    ] {
        let error = parse_server(&opts(&[("proxy_url", value)])).unwrap_err();
        assert_eq!(error.state, SqlState::InvalidAttributeValue, "{value}");
        assert!(error.message.ends_with(why), "{value}: {}", error.message);
        assert!(
            error.hint.as_deref().unwrap().contains("http://"),
            "{value}"
        );
        crate::error::assert_tidy(&error);
        crate::error::assert_remedied(&error);
    }
    // Credentials are refused without echoing them, and the statement is kept out of logs.
    let with_password = opts(&[("proxy_url", "http://user:s3cret@proxy:3128")]);
    let error = parse_server(&with_password).unwrap_err();
    assert_eq!(
        error.message,
        "invalid value for option \"proxy_url\": user information in the URL is not allowed"
    );
    assert!(!error.to_string().contains("s3cret"));
    assert!(error.hint.as_deref().unwrap().contains("HTTPS_PROXY"));
    crate::error::assert_tidy(&error);
    assert!(may_carry_secrets(&with_password));
}
