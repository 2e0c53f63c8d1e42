//! The autotuner: search over schedule knobs, a learned cost model, measurers (host, QEMU,
//! probe-rs) and the tuning database (SQLite, PostgreSQL for farms).
//!
//! Nothing lives here yet (issues 5 and 6).
