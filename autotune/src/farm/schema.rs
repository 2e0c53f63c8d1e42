//! The farm database's schema: versioned migrations (`autotune/migrations/V<n>__<name>.sql`)
//! applied by refinery, one process at a time under an advisory lock, so workers and tuners
//! that start together do not race to create it.

use super::query;
use crate::db::DbError;
use postgres::Client;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The advisory lock key the migrations run under ("minnow" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d69_6e6e_6f77;

/// The table refinery records applied migrations in.
const HISTORY_TABLE: &str = "minnow_schema_history";

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Brings the database to [`latest_version`]. A database migrated by a newer minnow is
/// refused (upgrade minnow); one that holds other tables is left as it is.
pub fn migrate(client: &mut Client, url: &str) -> Result<(), DbError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(query)?;
    let applied = embedded::migrations::runner()
        .set_migration_table_name(HISTORY_TABLE)
        .run(client);
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    applied.map(|_| ()).map_err(|e| {
        let message = match e.kind() {
            refinery::error::Kind::MissingVersion(m) => format!(
                "its schema has migration {m}, which this minnow does not know: it was made by \
                 a newer minnow; upgrade minnow on every host of the farm"
            ),
            refinery::error::Kind::DivergentVersion(a, b) => format!(
                "its schema migration {a} differs from this minnow's {b}: every host of the \
                 farm must run the same minnow"
            ),
            _ => format!(
                "cannot create the schema ({e}); the database must be one minnow may create \
                 tables in"
            ),
        };
        DbError::Open {
            path: super::redact(url),
            message,
        }
    })
}
