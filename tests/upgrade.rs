//! `ALTER EXTENSION aws_sts UPDATE` from 0.1.0 gives what a fresh install of the current
//! version gives (its objects, their definitions, privileges and comments), and what was
//! created at 0.1.0 keeps working.

mod common;

use common::*;

const OLD: &str = "0.1.0";
const CURRENT: &str = env!("CARGO_PKG_VERSION");

/// A fresh database (dropped first), as a superuser connection.
fn fresh_database(name: &str) -> postgres::Client {
    let mut admin = connect();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname={name}",
            pg_port()
        ),
        postgres::NoTls,
    )
    .unwrap()
}

/// Every object of the extension, one line each: what it is, its definition when it has
/// one (functions, views), its privileges and its comment.
fn extension_objects(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT concat_ws(' | ',
                    pg_describe_object(d.classid, d.objid, d.objsubid),
                    CASE d.classid
                        WHEN 'pg_proc'::regclass THEN pg_get_functiondef(d.objid)
                            || coalesce((SELECT proacl::text FROM pg_proc WHERE oid = d.objid), '')
                        WHEN 'pg_class'::regclass THEN coalesce(pg_get_viewdef(d.objid), '')
                            || coalesce((SELECT relacl::text FROM pg_class WHERE oid = d.objid), '')
                    END,
                    obj_description(d.objid, d.classid::regclass::name))
             FROM pg_depend AS d
             WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aws_sts')
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn extension_version(client: &mut postgres::Client) -> String {
    client
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'aws_sts'",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn update_from_0_1_0_gives_what_a_fresh_install_gives() {
    let mut fresh = fresh_database("aws_sts_upgrade_fresh");
    fresh.batch_execute("CREATE EXTENSION aws_sts").unwrap();
    assert_eq!(extension_version(&mut fresh), CURRENT);
    let expected = extension_objects(&mut fresh);

    let mut updated = fresh_database("aws_sts_upgrade_updated");
    updated
        .batch_execute(&format!("CREATE EXTENSION aws_sts VERSION '{OLD}'"))
        .unwrap();
    assert_eq!(extension_version(&mut updated), OLD);
    let before = extension_objects(&mut updated);
    updated
        .batch_execute("ALTER EXTENSION aws_sts UPDATE")
        .unwrap();
    assert_eq!(extension_version(&mut updated), CURRENT);
    let after = extension_objects(&mut updated);

    assert_eq!(
        after, expected,
        "0.1.0 updated differs from a fresh {CURRENT}"
    );
    // The update did something: 0.1.0 had no comment on its functions.
    assert_ne!(before, after);
    let uncommented: Vec<String> = updated
        .query(
            "SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
             FROM pg_depend AS d
             WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aws_sts')
               AND d.classid IN ('pg_proc'::regclass, 'pg_event_trigger'::regclass)
               AND obj_description(d.objid, d.classid::regclass::name) IS NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(uncommented.is_empty(), "no comment on {uncommented:?}");
}

#[test]
fn what_0_1_0_created_keeps_working_after_the_update() {
    // After connect() (in fresh_database), which starts each run from an empty moto.
    let mut client = fresh_database("aws_sts_upgrade_kept");
    let (keys, user_id) = create_iam_user("UpgradeUser");
    client
        .batch_execute(&format!("CREATE EXTENSION aws_sts VERSION '{OLD}'"))
        .unwrap();
    let endpoint = moto_endpoint();
    client
        .batch_execute(&format!(
            "CREATE SERVER kept FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url '{endpoint}', region 'us-east-1');
             CREATE USER MAPPING FOR CURRENT_USER SERVER kept
                 OPTIONS (access_key '{}', secret_key '{}');
             IMPORT FOREIGN SCHEMA aws FROM SERVER kept INTO public;",
            keys.access_key, keys.secret_key
        ))
        .unwrap();
    let user_id_of = |client: &mut postgres::Client| -> String {
        client
            .query_one("SELECT user_id FROM aws_sts_caller_identity", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(user_id_of(&mut client), user_id);

    client
        .batch_execute("ALTER EXTENSION aws_sts UPDATE")
        .unwrap();
    assert_eq!(user_id_of(&mut client), user_id);
    // A new connection (no cached identity, the table's comment from 0.1.0's import).
    let mut next = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=aws_sts_upgrade_kept",
            pg_port()
        ),
        postgres::NoTls,
    )
    .unwrap();
    assert_eq!(user_id_of(&mut next), user_id);
    let comment: Option<String> = next
        .query_one(
            "SELECT obj_description('aws_sts_caller_identity'::regclass, 'pg_class')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(comment.is_some_and(|c| !c.is_empty()));
}
