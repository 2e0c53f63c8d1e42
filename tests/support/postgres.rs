//! A throw-away PostgreSQL database for a test: a fresh database in the cluster that
//! `MINNOW_TEST_POSTGRES` names (as `.ci/run` starts one), or else a cluster of its own in a
//! temporary directory, started with `initdb` and `pg_ctl` and stopped when dropped.
//!
//! Without PostgreSQL installed the test fails in CI (`CI=true`) with the package to install,
//! and is skipped with a note elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A database for one test.
pub struct TestPostgres {
    /// Its URL.
    pub url: String,
    /// The cluster to stop, when the test started one.
    cluster: Option<(PathBuf, tempfile::TempDir)>,
}

impl TestPostgres {
    /// A fresh database, or `None` (with a note) where PostgreSQL is not installed outside CI.
    pub fn start(name: &str) -> Option<TestPostgres> {
        if let Ok(url) = std::env::var("MINNOW_TEST_POSTGRES") {
            return Some(fresh_database(&url, name));
        }
        let Some(bin) = postgres_bin() else {
            let message = "PostgreSQL is not installed, and the farm tests need it: install it \
                           with `sudo apt-get install postgresql`, or set MINNOW_TEST_POSTGRES \
                           to a postgres:// URL of a cluster the tests may create databases in";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}");
            }
            eprintln!("SKIPPED (tool missing): {message}");
            return None;
        };
        Some(own_cluster(&bin, name))
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some((bin, dir)) = &self.cluster {
            let data = dir.path().join("data");
            let mut stop = as_postgres_user(&bin.join("pg_ctl"));
            stop.args(["-D", &data.display().to_string(), "-m", "immediate", "stop"]);
            let _ = stop.output();
        }
    }
}

/// The directory with `initdb` and `pg_ctl`: on `PATH`, or Debian's versioned directory.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(initdb) = which("initdb") {
        return initdb.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when the tests run as root (PostgreSQL refuses
/// root).
fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn own_cluster(bin: &Path, name: &str) -> TestPostgres {
    let dir = tempfile::Builder::new()
        .prefix(&format!("minnow-pg-{name}-"))
        .tempdir()
        .expect("a temporary directory");
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres"]).arg(dir.path());
                c
            },
            "chown",
        );
    }
    let data = dir.path().join("data");
    let mut initdb = as_postgres_user(&bin.join("initdb"));
    initdb.args(["-D", &data.display().to_string()]).args([
        "-U",
        "minnow",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    ]);
    run(initdb, "initdb");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
        dir.path().display()
    );
    let mut start = as_postgres_user(&bin.join("pg_ctl"));
    start
        .args(["-D", &data.display().to_string(), "-o", &options])
        .args([
            "-l",
            &dir.path().join("log").display().to_string(),
            "-w",
            "start",
        ]);
    run(start, "pg_ctl start");
    TestPostgres {
        url: format!("postgres://minnow@127.0.0.1:{port}/postgres"),
        cluster: Some((bin.to_path_buf(), dir)),
    }
}

/// A new database named after the test and this process in the cluster at `url`.
fn fresh_database(url: &str, name: &str) -> TestPostgres {
    let db = format!("minnow_test_{name}_{}", std::process::id());
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("MINNOW_TEST_POSTGRES={url}: cannot connect: {e}"));
    // One statement per query: neither may run inside a transaction block.
    for statement in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        client
            .batch_execute(&statement)
            .expect("a fresh test database");
    }
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    TestPostgres {
        url: format!("{base}/{db}"),
        cluster: None,
    }
}
