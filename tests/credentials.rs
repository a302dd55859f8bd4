//! Steampipe's `config`, assume-role, profiles and who may use which credentials, through
//! Postgres against moto (and the fault endpoint where moto cannot fail the way we need).
//! Run by `make test`.

mod common;

use std::time::{Duration, Instant};

use common::faults::{Fault, FaultServer};
use common::*;

fn plan(client: &mut postgres::Client, schema: &str) -> String {
    client
        .query(
            &format!("EXPLAIN SELECT * FROM {schema}.aws_sts_caller_identity"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server with these options (no user mapping) and its imported table in a schema of the
/// same name.
fn server(client: &mut postgres::Client, name: &str, options: &str) {
    server_with_keys(client, name, options, None);
}

#[test]
fn steampipe_config_strings_from_the_docs_work_unchanged() {
    let (mut client, notices) = connect_collecting_notices();
    let (alice, alice_id) = create_iam_user("ConfigAlice");
    // The Steampipe FDW's documented form: a connection block body, keys in it.
    let config = format!(
        "access_key = \"{}\"\nsecret_key = \"{}\"\nregions = [\"us-east-1\", \"eu-west-2\"]\n\
         endpoint_url = \"{}\"\nmax_error_retry_attempts = 9\nmin_error_retry_delay = 25",
        alice.access_key,
        alice.secret_key,
        moto_endpoint()
    );
    server(
        &mut client,
        "it_config",
        &format!("config {}", literal(&config)),
    );
    let row = client
        .query_one(
            "SELECT arn, user_id, account_id FROM it_config.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "arn:aws:iam::123456789012:user/ConfigAlice"
    );
    assert_eq!(row.get::<_, String>(1), alice_id);
    let warnings = notices.lock().unwrap().join("\n");
    assert!(
        warnings.contains("01000: AWS keys in server options are readable by every user"),
        "{warnings}"
    );
    assert!(!warnings.contains(&alice.secret_key));
    let explained = plan(&mut client, "it_config");
    assert!(
        explained.contains("AWS Credentials: server options"),
        "{explained}"
    );
    assert!(explained.contains("AWS Region: us-east-1"), "{explained}");

    // config/aws.spc from the Steampipe AWS plugin, every setting switched on, as a whole
    // connection block (the endpoint pointed at moto, the profile left out).
    let sample = format!(
        r#"connection "aws" {{
  plugin = "aws"
  regions = ["eu-*"] # All EU regions
  max_error_retry_attempts = 9
  min_error_retry_delay = 25
  ignore_error_codes = ["AccessDenied", "AccessDeniedException", "NotAuthorized", "UnauthorizedOperation", "UnrecognizedClientException", "AuthorizationError"]
  endpoint_url = "{}"
  s3_force_path_style = false
}}"#,
        moto_endpoint()
    );
    server_with_keys(
        &mut client,
        "it_sample",
        &format!("config {}", literal(&sample)),
        Some(&alice),
    );
    assert_eq!(
        query_arn(&mut client, "it_sample").unwrap(),
        "arn:aws:iam::123456789012:user/ConfigAlice"
    );
    let explained = plan(&mut client, "it_sample");
    // No default_region, no AWS_REGION in the server's environment: the main region of
    // the partition `regions` names.
    assert!(explained.contains("AWS Region: us-east-1"), "{explained}");
    assert!(
        explained.contains("AWS Ignore Error Codes: AccessDenied, AccessDeniedException"),
        "{explained}"
    );

    // steampipe_postgres_aws's README form: profile and regions (validated at CREATE SERVER;
    // the profile is only read by a scan).
    client
        .batch_execute(
            "DROP SERVER IF EXISTS it_readme; CREATE SERVER it_readme FOREIGN DATA WRAPPER aws_sts \
             OPTIONS (config E'profile = \"prod\"\\nregions = [\"us-east-1\"]')",
        )
        .unwrap();
}

#[test]
fn the_region_follows_steampipes_order() {
    let mut client = connect();
    let cases = [
        (
            "default_region = \"eu-west-3\"\nregions = [\"us-west-2\"]",
            "eu-west-3",
        ),
        ("regions = [\"ap-south-1\", \"eu-*\"]", "ap-south-1"),
        ("regions = [\"us-gov-*\"]", "us-gov-west-1"),
        ("regions = [\"cn-*\"]", "cn-northwest-1"),
        ("regions = [\"*\"]", "us-east-1"),
        ("", "us-east-1"),
    ];
    for (index, (config, region)) in cases.iter().enumerate() {
        let name = format!("it_region_{index}");
        server_with_keys(
            &mut client,
            &name,
            &format!("config {}", literal(config)),
            Some(&Keys::new("AKIAREGION", "region-secret")),
        );
        let explained = plan(&mut client, &name);
        assert!(
            explained.contains(&format!("AWS Region: {region}")),
            "{config}: {explained}"
        );
    }
    // The plain option is Steampipe's default_region under another name.
    server_with_keys(
        &mut client,
        "it_region_plain",
        "default_region 'sa-east-1'",
        Some(&Keys::new("AKIAREGION", "region-secret")),
    );
    assert!(plan(&mut client, "it_region_plain").contains("AWS Region: sa-east-1"));
}

#[test]
fn every_config_mistake_is_a_validator_error_with_its_line() {
    let mut client = connect();
    let cases: &[(&str, &str, &str)] = &[
        (
            "config E'profile = \"a\"\\nregion = \"us-east-1\"'",
            "HV00D",
            "unknown key \"region\" in config (line 2)",
        ),
        (
            "config E'profile = \"a\"\\n\\nregions = [\"us-east-1\"'",
            "HV024",
            "invalid value for option \"config\": line 3: not valid HCL",
        ),
        (
            "config 'regions = []'",
            "HV024",
            "line 1: key \"regions\" is an empty list",
        ),
        (
            "config E'\\nmax_error_retry_attempts = 0'",
            "HV024",
            "invalid value \"0\" for option \"max_error_retry_attempts\": not a whole number from 1 to 100 (config line 2)",
        ),
        (
            "config 'access_key = \"AKIAHALF\"'",
            "HV00J",
            "config line 1: access_key is set without secret_key",
        ),
        (
            "config 'regions = [\"moon-1\"]'",
            "HV024",
            "\"moon-1\" is neither a region code nor a wildcard (config line 1)",
        ),
        (
            "config 'endpoint_url = \"ftp://x\"', endpoint_url 'http://127.0.0.1:1'",
            "HV00D",
            "option \"endpoint_url\" is set both as a server option and in config (line 1)",
        ),
        (
            "region 'us-east-1', default_region 'us-east-2'",
            "HV00D",
            "options \"region\" and \"default_region\" name the same thing",
        ),
        (
            "role_arn 'arn:aws:iam::123:role/x'",
            "HV024",
            "for option \"role_arn\": not an IAM role ARN",
        ),
        (
            "role_arn 'arn:aws:iam::123456789012:role/x', duration_seconds '60'",
            "HV024",
            "not a whole number of seconds from 900 to 43200",
        ),
        (
            "external_id 'abc'",
            "HV00J",
            "option \"external_id\" requires role_arn",
        ),
        (
            "config 'assume_role_arn = \"arn:aws:iam::123456789012:role/x\"\nassume_role_session_name = \"a b\"'",
            "HV024",
            "for option \"role_session_name\": not 2 to 64 letters",
        ),
        (
            "ignore_error_codes 'AccessDenied, no spaces'",
            "HV024",
            "\"no spaces\" is not an AWS error code or pattern",
        ),
        (
            "instance_metadata 'maybe'",
            "HV024",
            "invalid value \"maybe\" for option \"instance_metadata\": not a boolean",
        ),
        (
            "session_token 'tok-only'",
            "HV00J",
            "option \"session_token\" requires access_key and secret_key in the same server",
        ),
    ];
    for (options, code, message) in cases {
        let error = client
            .batch_execute(&format!(
                "CREATE SERVER it_bad FOREIGN DATA WRAPPER aws_sts OPTIONS ({options})"
            ))
            .unwrap_err();
        let (state, text, _, _) = db_error(&error);
        assert_eq!(&state, code, "{options}: {text}");
        assert!(text.contains(message), "{options}: {text}");
        assert!(!text.contains("tok-only"), "{text}");
    }
    // ALTER SERVER is validated the same way.
    server(&mut client, "it_alter", "");
    let error = client
        .batch_execute("ALTER SERVER it_alter OPTIONS (ADD config 'regions = []')")
        .unwrap_err();
    assert_eq!(db_error(&error).0, "HV024");
}

#[test]
fn keys_in_server_options_are_for_superusers_only() {
    let mut admin = connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_owner; CREATE ROLE it_owner LOGIN;
             GRANT USAGE ON FOREIGN DATA WRAPPER aws_sts TO it_owner;",
        )
        .unwrap();
    remember_secret("owner-secret-1");
    let mut owner = connect_as("it_owner");
    for options in [
        "access_key 'AKIAOWNER', secret_key 'owner-secret-1'",
        "config E'access_key = \"AKIAOWNER\"\\nsecret_key = \"owner-secret-1\"'",
    ] {
        let error = owner
            .batch_execute(&format!(
                "CREATE SERVER it_owned FOREIGN DATA WRAPPER aws_sts OPTIONS ({options})"
            ))
            .unwrap_err();
        let (state, message, _, hint) = db_error(&error);
        assert_eq!(state, "42501", "{message}");
        assert_eq!(
            message,
            "only a superuser may put AWS keys in server options"
        );
        assert!(hint.contains("CREATE USER MAPPING"), "{hint}");
    }
    // Without keys the same user may create servers (USAGE on the wrapper).
    owner
        .batch_execute(
            "DROP SERVER IF EXISTS it_owned; CREATE SERVER it_owned FOREIGN DATA WRAPPER aws_sts OPTIONS (region 'us-east-1')",
        )
        .unwrap();
    owner.batch_execute("DROP SERVER it_owned").unwrap();
}

#[test]
fn pg_user_mappings_hides_other_users_keys() {
    let mut admin = connect();
    remember_secret("peer-secret-2");
    remember_secret("viewer-secret-3");
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_peer; DROP ROLE IF EXISTS it_viewer;
             CREATE ROLE it_peer LOGIN; CREATE ROLE it_viewer LOGIN;
             DROP SERVER IF EXISTS it_hidden CASCADE;
             CREATE SERVER it_hidden FOREIGN DATA WRAPPER aws_sts;
             GRANT USAGE ON FOREIGN SERVER it_hidden TO it_viewer;
             CREATE USER MAPPING FOR it_peer SERVER it_hidden OPTIONS (access_key 'AKIAPEER', secret_key 'peer-secret-2');
             CREATE USER MAPPING FOR it_viewer SERVER it_hidden OPTIONS (access_key 'AKIAVIEW', secret_key 'viewer-secret-3');",
        )
        .unwrap();
    let mut viewer = connect_as("it_viewer");
    let rows = viewer
        .query(
            "SELECT usename, umoptions::text FROM pg_user_mappings WHERE srvname = 'it_hidden' ORDER BY usename",
            &[],
        )
        .unwrap();
    let seen: Vec<(String, Option<String>)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(seen[0], ("it_peer".to_string(), None), "{seen:?}");
    assert_eq!(seen[1].0, "it_viewer");
    assert!(seen[1].1.as_deref().unwrap().contains("viewer-secret-3"));
}

#[test]
fn assume_role_with_keys_from_the_user_mapping() {
    let mut client = connect();
    let (alice, _) = create_iam_user("RoleSourceAlice");
    let role_arn = "arn:aws:iam::123456789012:role/it-assumed";
    // moto answers AssumeRole for any role ARN; create it anyway, as in AWS.
    assume_role("it-assumed", "setup");
    server_with_keys(
        &mut client,
        "it_role",
        &format!("endpoint_url '{}', role_arn '{role_arn}'", moto_endpoint()),
        Some(&alice),
    );
    let row = client
        .query_one(
            "SELECT arn, user_id, title FROM it_role.aws_sts_caller_identity",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "arn:aws:sts::123456789012:assumed-role/it-assumed/aws_sts"
    );
    let user_id: String = row.get(1);
    assert!(
        user_id.starts_with("AROA") && user_id.ends_with(":aws_sts"),
        "{user_id}"
    );
    // Steampipe's title is the UserId.
    assert_eq!(row.get::<_, String>(2), user_id);
    assert!(plan(&mut client, "it_role").contains(&format!(
        "AWS Credentials: user mapping, then AssumeRole {role_arn}"
    )));

    // Session name, external id and duration, as plain options and as Steampipe config keys.
    for (name, options) in [
        (
            "it_role_ext",
            format!(
                "endpoint_url '{}', role_arn '{role_arn}', role_session_name 'it-session', \
                 external_id 'ext-1234', duration_seconds '900'",
                moto_endpoint()
            ),
        ),
        (
            "it_role_cfg",
            format!(
                "config {}",
                literal(&format!(
                    "endpoint_url = \"{}\"\nassume_role_arn = \"{role_arn}\"\n\
                     assume_role_session_name = \"it-session\"\nassume_role_external_id = \"ext-1234\"\n\
                     assume_role_duration = \"900\"",
                    moto_endpoint()
                ))
            ),
        ),
    ] {
        server_with_keys(&mut client, name, &options, Some(&alice));
        assert_eq!(
            query_arn(&mut client, name).unwrap(),
            "arn:aws:sts::123456789012:assumed-role/it-assumed/it-session",
            "{name}"
        );
    }
}

#[test]
fn a_refused_assume_role_names_the_role_and_the_aws_code() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Error(403, "AccessDenied"));
    let role_arn = "arn:aws:iam::123456789012:role/it-refused";
    server_with_keys(
        &mut client,
        "it_refused",
        &format!(
            "endpoint_url '{}', role_arn '{role_arn}', external_id 'wrong-id', max_error_retry_attempts '1'",
            endpoint.url
        ),
        Some(&Keys::new("AKIAREFUSED", "refused-secret-4")),
    );
    let error = query_arn(&mut client, "it_refused").unwrap_err();
    let (state, message, detail, hint) = db_error(&error);
    assert_eq!(state, "HV00N");
    assert_eq!(
        message,
        format!("aws_sts server \"it_refused\": could not assume role {role_arn} (AccessDenied)")
    );
    assert!(detail.contains("AWS error AccessDenied"), "{detail}");
    assert!(hint.contains("trust policy"), "{hint}");
    assert!(!format!("{message}{detail}{hint}").contains("refused-secret-4"));

    // The same code listed in ignore_error_codes: an empty table instead of an error.
    client
        .batch_execute("ALTER SERVER it_refused OPTIONS (ADD ignore_error_codes 'Access*')")
        .unwrap();
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM it_refused.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[test]
fn ignore_error_codes_turn_only_matching_errors_into_zero_rows() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Error(403, "AccessDenied"));
    server_with_keys(
        &mut client,
        "it_ignore",
        &format!(
            "config {}",
            literal(&format!(
                "endpoint_url = \"{}\"\nignore_error_codes = [\"UnauthorizedOperation\", \"AccessDen?ed\"]",
                endpoint.url
            ))
        ),
        Some(&Keys::new("AKIAIGNORE", "ignore-secret-5")),
    );
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM it_ignore.aws_sts_caller_identity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    // AccessDenied is not retried, so one request answered the query.
    assert_eq!(endpoint.request_count(), 1);

    server_with_keys(
        &mut client,
        "it_not_ignored",
        &format!(
            "endpoint_url '{}', ignore_error_codes 'Throttling'",
            endpoint.url
        ),
        Some(&Keys::new("AKIAIGNORE", "ignore-secret-5")),
    );
    let error = query_arn(&mut client, "it_not_ignored").unwrap_err();
    assert!(
        db_error(&error)
            .1
            .contains("AWS denied GetCallerIdentity (AccessDenied)"),
        "{error}"
    );
}

#[test]
fn retry_settings_from_config_drive_the_sdk() {
    let mut client = connect();
    let endpoint = FaultServer::start(vec![], Fault::Error(500, "InternalFailure"));
    server_with_keys(
        &mut client,
        "it_retry_cfg",
        &format!(
            "config {}",
            literal(&format!(
                "endpoint_url = \"{}\"\nmax_error_retry_attempts = 3\nmin_error_retry_delay = 1",
                endpoint.url
            ))
        ),
        Some(&Keys::new("AKIARETRY", "retry-secret-6")),
    );
    let error = query_arn(&mut client, "it_retry_cfg").unwrap_err();
    let (_, message, detail, _) = db_error(&error);
    assert!(message.ends_with("after 3 attempts"), "{message}");
    assert!(detail.contains("3 of at most 3 attempts"), "{detail}");
    assert_eq!(endpoint.request_count(), 3);
}

/// Writes the cluster's ~/.aws/config (readable by the postgres OS user); removed on drop.
struct SharedConfig(String);

impl SharedConfig {
    fn write(text: &str) -> SharedConfig {
        let dir = format!("{}/.aws", cluster_home());
        std::fs::create_dir_all(&dir).unwrap();
        let path = format!("{dir}/config");
        std::fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SharedConfig(path)
    }
}

impl Drop for SharedConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Profiles in one shared config file: chained role profiles and an SSO profile with no
/// session. One test, so that the file's contents are known while it exists.
#[test]
fn profiles_from_the_shared_config_file() {
    let mut admin = connect();
    let (base, _) = create_iam_user("ProfileBase");
    assume_role("it-chain-role", "setup");
    let _config = SharedConfig::write(&format!(
        "[profile it_base]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n\
         [profile it_chained]\nrole_arn = arn:aws:iam::123456789012:role/it-chain-role\n\
         source_profile = it_base\nrole_session_name = it-chained-session\nregion = eu-central-1\n\
         endpoint_url = {endpoint}\n\n\
         [profile it_sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = ReadOnly\nregion = us-east-1\n",
        key = base.access_key,
        secret = base.secret_key,
        endpoint = moto_endpoint()
    ));
    server(
        &mut admin,
        "it_chain",
        &format!("profile 'it_chained', endpoint_url '{}'", moto_endpoint()),
    );
    assert_eq!(
        query_arn(&mut admin, "it_chain").unwrap(),
        "arn:aws:sts::123456789012:assumed-role/it-chain-role/it-chained-session"
    );
    let explained = plan(&mut admin, "it_chain");
    assert!(
        explained.contains("AWS Region: eu-central-1"),
        "{explained}"
    );
    assert!(
        explained.contains("AWS Credentials: profile it_chained"),
        "{explained}"
    );

    // role_arn on the server with source credentials from a profile (the chain).
    server(
        &mut admin,
        "it_profile_role",
        &format!(
            "profile 'it_base', endpoint_url '{}', role_arn 'arn:aws:iam::123456789012:role/it-chain-role', \
             role_session_name 'from-profile'",
            moto_endpoint()
        ),
    );
    assert_eq!(
        query_arn(&mut admin, "it_profile_role").unwrap(),
        "arn:aws:sts::123456789012:assumed-role/it-chain-role/from-profile"
    );
    assert!(plan(&mut admin, "it_profile_role").contains(
        "AWS Credentials: profile it_base, then AssumeRole arn:aws:iam::123456789012:role/it-chain-role"
    ));

    // Steampipe's config form of the same.
    server(
        &mut admin,
        "it_chain_cfg",
        &format!(
            "config {}",
            literal(&format!(
                "profile = \"it_chained\"\nendpoint_url = \"{}\"",
                moto_endpoint()
            ))
        ),
    );
    assert_eq!(
        query_arn(&mut admin, "it_chain_cfg").unwrap(),
        "arn:aws:sts::123456789012:assumed-role/it-chain-role/it-chained-session"
    );

    // A profile reads the database server's files: a non-superuser needs ambient_credentials
    // from a superuser, even with keys of their own.
    remember_secret("prof-secret-7");
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS it_profiled; CREATE ROLE it_profiled LOGIN;
             GRANT USAGE ON FOREIGN SERVER it_chain TO it_profiled;
             GRANT USAGE ON SCHEMA it_chain TO it_profiled;
             GRANT SELECT ON ALL TABLES IN SCHEMA it_chain TO it_profiled;
             CREATE USER MAPPING FOR it_profiled SERVER it_chain OPTIONS (access_key 'AKIAPROF', secret_key 'prof-secret-7');",
        )
        .unwrap();
    let mut user = connect_as("it_profiled");
    let error = query_arn(&mut user, "it_chain").unwrap_err();
    let (state, message, _, hint) = db_error(&error);
    assert_eq!(state, "42501");
    assert_eq!(
        message,
        "aws_sts server \"it_chain\": user \"it_profiled\" may not use profile \"it_chained\" of the database server's AWS configuration"
    );
    assert!(hint.contains("ambient_credentials 'true'"), "{hint}");
    admin
        .batch_execute(
            "ALTER USER MAPPING FOR it_profiled SERVER it_chain OPTIONS (ADD ambient_credentials 'true')",
        )
        .unwrap();
    // The mapping's keys win over the profile's credentials; the profile still gives the region.
    assert_eq!(
        query_arn(&mut user, "it_chain").unwrap(),
        "arn:aws:sts::123456789012:user/moto"
    );

    // An SSO profile whose session was never started (or has expired) says so.
    server(&mut admin, "it_sso", "profile 'it_sso', timeout '5s'");
    let started = Instant::now();
    let error = query_arn(&mut admin, "it_sso").unwrap_err();
    let (state, message, _, hint) = db_error(&error);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(state, "HV00N", "{message}");
    assert_eq!(
        message,
        "aws_sts server \"it_sso\": the AWS SSO session of profile \"it_sso\" is missing or has expired"
    );
    assert!(hint.contains("aws sso login --profile it_sso"), "{hint}");

    // A profile that does not exist.
    server(&mut admin, "it_noprofile", "profile 'it_missing'");
    let error = query_arn(&mut admin, "it_noprofile").unwrap_err();
    let (state, message, detail, _) = db_error(&error);
    assert_eq!(state, "HV00N");
    assert!(message.contains("credentials"), "{message}");
    assert!(detail.contains("it_missing"), "{detail}");
}

#[test]
fn no_credentials_anywhere_fails_fast_listing_the_sources() {
    let mut admin = connect();
    for (name, options, sources) in [
        (
            "it_nocreds",
            format!("endpoint_url '{}'", moto_endpoint()),
            "EC2 instance metadata (at most 1s)",
        ),
        (
            "it_nocreds_noimds",
            format!(
                "endpoint_url '{}', instance_metadata 'false'",
                moto_endpoint()
            ),
            "(instance_metadata is off)",
        ),
    ] {
        server(&mut admin, name, &options);
        let started = Instant::now();
        let error = query_arn(&mut admin, name).unwrap_err();
        let elapsed = started.elapsed();
        println!("{name}: no credentials error after {elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        let (state, message, detail, hint) = db_error(&error);
        assert_eq!(state, "HV00N");
        assert_eq!(
            message,
            format!("aws_sts server \"{name}\": no AWS credentials found")
        );
        assert!(
            detail.starts_with("Tried: environment variables, shared config and credentials files"),
            "{detail}"
        );
        assert!(detail.contains(sources), "{detail}");
        assert!(hint.contains("CREATE USER MAPPING"), "{hint}");
    }
}

#[test]
fn failing_statements_with_keys_stay_out_of_the_server_log() {
    let mut client = connect();
    let secret = "wJalrLogCheckSecretThatMustNotBeLogged";
    remember_secret(secret);
    for statement in [
        format!(
            "CREATE SERVER it_logged FOREIGN DATA WRAPPER aws_sts OPTIONS (config E'secret_key = \"{secret}\"\\nbogus = 1')"
        ),
        format!(
            "CREATE SERVER it_logged FOREIGN DATA WRAPPER aws_sts OPTIONS (access_key 'AKIALOG', secret_key '{secret}', timeout 'never')"
        ),
        format!(
            "CREATE USER MAPPING FOR CURRENT_USER SERVER it_logged_target OPTIONS (access_key 'AKIALOG', secret_key '{secret}', session_token 'x y')"
        ),
    ] {
        client
            .batch_execute("DROP SERVER IF EXISTS it_logged_target CASCADE; CREATE SERVER it_logged_target FOREIGN DATA WRAPPER aws_sts")
            .unwrap();
        let error = client.batch_execute(&statement).unwrap_err();
        let (_, message, detail, hint) = db_error(&error);
        assert!(!format!("{message}{detail}{hint}").contains(secret));
    }
    let log = server_log();
    assert!(log.contains("invalid value \"never\" for option \"timeout\""));
    assert!(
        !log.contains(secret),
        "a statement with a secret reached the log"
    );
}
