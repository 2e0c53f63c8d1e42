//! Graph and loop passes: egg e-graph rewrites (fusion, layout, tiling) and static memory planning.
//!
//! Each pass is a small struct with one entry point and a place in one explicit pipeline list.
//! Nothing lives here yet: fusion and memory planning arrive with issues 3 and 4. The crate exists
//! now so that the workspace shows the whole pipeline (import → passes → lowering → schedules →
//! codegen → run) from the first commit.
