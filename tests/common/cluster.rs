//! A second cluster for tests that need the server started differently from the scratch
//! cluster (another environment, `shared_preload_libraries`): tests/cluster.sh on its own
//! port and scratch directory, sharing the scratch cluster's moto, stopped when dropped.

use std::process::Command;

use super::{moto_port, pg_port};

pub struct ExtraCluster {
    pub port: u16,
    scratch: String,
}

impl ExtraCluster {
    /// Starts (fresh) the cluster numbered `number` (0 to 9: its port is the scratch
    /// cluster's plus 10 plus `number`), with more postgres options (`-c name=value ...`)
    /// and more `NAME=value` words in the server's environment, and creates a database
    /// `aws_sts_it` with the extension.
    pub fn start(number: u16, server_conf: &str, server_env: &[&str]) -> Self {
        assert!(number < 10);
        let port = pg_port() + 10 + number;
        let scratch = format!("/tmp/aws_sts-scratch-{port}");
        let cluster = Self { port, scratch };
        cluster.script("stop", &[]);
        let _ = std::fs::remove_dir_all(&cluster.scratch);
        cluster.script(
            "start",
            &[
                ("AWS_STS_SERVER_CONF", server_conf.to_string()),
                ("AWS_STS_SERVER_ENV", server_env.join(" ")),
            ],
        );
        cluster
            .connect("postgres", "postgres")
            .batch_execute("CREATE DATABASE aws_sts_it")
            .unwrap();
        cluster
            .connect(super::DATABASE, "postgres")
            .batch_execute("CREATE EXTENSION aws_sts")
            .unwrap();
        cluster
    }

    fn script(&self, command: &str, env: &[(&str, String)]) {
        let root = env!("CARGO_MANIFEST_DIR");
        let status = Command::new(format!("{root}/tests/cluster.sh"))
            .arg(command)
            .env("AWS_STS_TEST_PGPORT", self.port.to_string())
            .env("AWS_STS_TEST_MOTO_PORT", moto_port().to_string())
            .env("AWS_STS_SCRATCH", &self.scratch)
            .envs(env.iter().map(|(name, value)| (*name, value)))
            .status()
            .expect("run tests/cluster.sh");
        assert!(status.success(), "tests/cluster.sh {command} failed");
    }

    pub fn connect(&self, database: &str, user: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user={user} dbname={database}",
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// A superuser connection to `aws_sts_it`.
    pub fn client(&self) -> postgres::Client {
        self.connect(super::DATABASE, "postgres")
    }

    /// What this cluster's server log holds.
    pub fn log(&self) -> String {
        std::fs::read_to_string(format!("{}/postgres.log", self.scratch)).unwrap_or_default()
    }
}

impl Drop for ExtraCluster {
    fn drop(&mut self) {
        self.script("stop", &[]);
    }
}
