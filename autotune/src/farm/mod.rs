//! The farm: many hosts with boards measuring for many tuning runs through one PostgreSQL
//! database, which is both the tuning database ([`PgDb`]) and the queue of measurement jobs.
//!
//! `minnow tune --db postgres://...` measures through a [`FarmMeasurer`]: each candidate
//! becomes a job row (the generated C, the input vectors) and the tuner waits for its result.
//! `minnow farm worker` runs a [`Worker`]: it leases jobs for its target and board with
//! `SELECT ... FOR UPDATE SKIP LOCKED` (workers never block each other), runs them on its
//! board, renews its leases by heartbeat while it works, and writes each result once. A lease
//! that lapses (a killed worker, an unplugged board) returns the job to the queue. The schema
//! comes from versioned migrations ([`schema`]).
//!
//! Modules, in the order a job passes through them: [`job`] (what a job carries), [`queue`]
//! (the SQL of enqueueing, leasing, renewing and finishing), [`measurer`] (the tuner's side),
//! [`worker`] (the board's side), [`status`] (`minnow farm status`).

pub mod job;
pub mod measurer;
mod pg;
pub mod queue;
pub mod schema;
pub mod status;
pub mod worker;

pub use measurer::FarmMeasurer;
pub use pg::PgDb;
pub use worker::{Worker, WorkerOptions};

use crate::db::DbError;
use postgres::{Client, NoTls};
use std::time::Duration;

/// How long a worker's lease on a job lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Times a job may be leased (a lapsed lease or a failed board each count) before it is
/// finished as failed: a candidate that kills every board it runs on is not retried forever.
pub const MAX_ATTEMPTS: i64 = 4;

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// A new connection to the farm database at `url` (no schema check: see [`schema::migrate`]).
pub fn connect(url: &str) -> Result<Client, DbError> {
    let open_error = |message: String| DbError::Open {
        path: redact(url),
        message,
    };
    let mut config: postgres::Config = url.parse().map_err(|e| {
        open_error(format!(
            "not a PostgreSQL URL ({e}); write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.application_name("minnow");
    config.connect(NoTls).map_err(|e| {
        open_error(format!(
            "cannot connect ({e}); check that the server is running and reachable, and the \
             user, password and database in the URL"
        ))
    })
}

/// Waits up to `timeout` for a notification on one of `client`'s channels (what it says does
/// not matter: the caller looks at the tables again either way).
pub(crate) fn wait_for_notification(client: &mut Client, timeout: Duration) {
    use fallible_iterator::FallibleIterator;
    let _ = client.notifications().timeout_iter(timeout).next();
}

/// A query error as a [`DbError`].
pub(crate) fn query(e: postgres::Error) -> DbError {
    DbError::Query(match e.as_db_error() {
        Some(db) => format!("PostgreSQL says: {}", db.message()),
        None => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_redacted() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("minnow-tuning.sqlite"));
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn a_bad_url_or_a_dead_server_names_the_fix() {
        let e = connect("postgres://u@[::1").err().unwrap().to_string();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
        // Port 1 on localhost: nothing listens there.
        let e = connect("postgres://u:pw@127.0.0.1:1/db")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot connect") && !e.contains("pw"), "{e}");
    }
}
