//! Schedule primitives (split, reorder, fuse, unroll, vectorize, compute_at, cache) and the
//! per-operator schedule spaces that the autotuner searches.
//!
//! A `Schedule` will be serde data: a trace of primitive applications that replays
//! deterministically. Nothing lives here yet (issue 4).
