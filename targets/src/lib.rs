//! Target descriptions: a `target_lexicon::Triple`, the CPU and its features, memory sizes, the
//! cross toolchain, startup code, linker scripts and the boards (emulated or real) that run it.
//!
//! Nothing lives here yet (issue 3); `minnow run` only supports the host today.
