//! Schedules: how a multiply-accumulate op's loops are ordered, blocked, unrolled and
//! vectorized, without changing what it computes.
//!
//! A [`Schedule`] is a trace of [`Primitive`] applications (split, reorder, unroll, vectorize)
//! on the loop nest of a [`Reduction`](minnow_ir::loops::reduction::Reduction), plain serde data
//! that replays deterministically. The accumulators of every output computed inside the first
//! reduce loop are kept in a local block (TVM's cache-write at that loop), so a split and a
//! reorder are all it takes to block registers. Each operator kind has a [`Space`] of knobs; a
//! point of the space yields a schedule, and [`Space::default_for`] picks one per target
//! (SMLAD on Arm DSP targets, plain blocked code elsewhere). [`schedule_program`] applies the
//! defaults to a lowered program.
//!
//! ```
//! use minnow_schedules::{Primitive, Schedule};
//! let s = Schedule {
//!     steps: vec![
//!         Primitive::Split { name: "d".into(), factor: 4 },
//!         Primitive::Vectorize { name: "d_i".into(), lanes: 4 },
//!     ],
//! };
//! let json = serde_json::to_string(&s).unwrap();
//! assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
//! ```

mod apply;
mod narrow;
mod primitive;
mod space;

pub use apply::{schedule_program, weight_is_private, winograd_allowed, Chooser};
pub use narrow::NarrowRequantization;
pub use primitive::{Primitive, Schedule, ScheduleError};
pub use space::{Knobs, Space};
