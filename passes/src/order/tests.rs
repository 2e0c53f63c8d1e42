//! The orderer on hand-built programs: it finds the better interleaving of two branches, and on
//! random dependency graphs it keeps every dependency and never grows the arena.

use super::{Dependencies, StepOrderer};
use crate::memory::{check, MemoryPlanner};
use minnow_ir::loops::{
    Access, Expr, FuncBuilder, Program, ScalarType, Slot, SlotId, SlotKind, Step,
};
use proptest::prelude::*;

/// A program over int8 activations of the given sizes (slot 0 is the model input, the last
/// slot the output); each step reads the listed slots and writes one.
fn program(sizes: &[usize], steps: &[(&[usize], usize)]) -> Program {
    let last = sizes.len() - 1;
    let slots = sizes
        .iter()
        .enumerate()
        .map(|(i, len)| Slot {
            name: format!("t{i}"),
            elem: ScalarType::I8,
            len: *len,
            kind: match i {
                0 => SlotKind::Input(0),
                i if i == last => SlotKind::Output(0),
                _ => SlotKind::Activation,
            },
        })
        .collect();
    let mut p = Program {
        name: "p".into(),
        slots,
        funcs: Vec::new(),
        steps: Vec::new(),
        inputs: vec![SlotId(0)],
        outputs: vec![SlotId(last)],
    };
    for (k, (reads, write)) in steps.iter().enumerate() {
        let mut f = FuncBuilder::new(format!("f{k}"));
        let ins: Vec<_> = reads
            .iter()
            .map(|r| f.param(&format!("in{r}"), ScalarType::I8, sizes[*r], Access::Read))
            .collect();
        let out = f.param("out", ScalarType::I8, sizes[*write], Access::Write);
        // Each input is read at an index loaded from it, which no analysis bounds: the
        // planner lets no output overlap an input it reads.
        let mut value = Expr::i32(0);
        for input in ins {
            let at = Expr::load(input, Expr::i32(0)).cast(ScalarType::I32);
            value = value + Expr::load(input, at).cast(ScalarType::I32);
        }
        f.store(out, Expr::i32(0), value.cast(ScalarType::I8));
        p.funcs.push(f.finish());
        let mut args: Vec<SlotId> = reads.iter().map(|r| SlotId(*r)).collect();
        args.push(SlotId(*write));
        p.steps.push(Step {
            name: format!("s{k}"),
            op: "TEST".into(),
            func: k,
            args,
            in_place: None,
            macs: 0,
            reduction: None,
        });
    }
    p
}

/// Two branches each make a large tensor and shrink it; running one branch to its end before
/// starting the other never holds both large tensors.
#[test]
fn finishes_a_branch_before_starting_the_next() {
    // t1 = A(t0), t2 = C(t0), t3 = B(t1), t4 = D(t2), t5 = E(t3, t4): A, C, B, D holds t1 and t2.
    let sizes = [16, 1000, 1000, 10, 10, 10];
    let steps: [(&[usize], usize); 5] = [(&[0], 1), (&[0], 2), (&[1], 3), (&[2], 4), (&[3, 4], 5)];
    let mut p = program(&sizes, &steps);
    let report = StepOrderer::default().run(&mut p);
    assert!(report.exact);
    assert_eq!(report.peak_before, 2010);
    assert_eq!(report.peak_after, 1020);
    assert_eq!((report.arena_before, report.arena_after), (2012, 1024));
    assert!(report.reordered);
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s0", "s2", "s1", "s3", "s4"]);
    check(&p, &MemoryPlanner::default().run(&p)).unwrap();
}

/// A chain has one order: the pass leaves it alone.
#[test]
fn leaves_a_chain_alone() {
    let sizes = [4, 100, 200, 50, 4];
    let steps: [(&[usize], usize); 4] = [(&[0], 1), (&[1], 2), (&[2], 3), (&[3], 4)];
    let mut p = program(&sizes, &steps);
    let before = p.clone();
    let report = StepOrderer::default().run(&mut p);
    assert!(!report.reordered);
    assert_eq!(report.states, 5);
    assert_eq!(p, before);
}

/// With one state per level the search is a greedy heuristic, and says so.
#[test]
fn reports_a_cut_search_as_inexact() {
    let sizes = [16, 1000, 1000, 10, 10, 10];
    let steps: [(&[usize], usize); 5] = [(&[0], 1), (&[0], 2), (&[1], 3), (&[2], 4), (&[3, 4], 5)];
    let report = StepOrderer { max_states: 1 }.run(&mut program(&sizes, &steps));
    assert!(!report.exact);
}

/// Random programs: each step reads one to three earlier tensors.
fn random_program() -> impl Strategy<Value = Program> {
    (2usize..12)
        .prop_flat_map(|n| {
            let sizes = proptest::collection::vec(1usize..400, n + 1);
            let reads = proptest::collection::vec(proptest::collection::vec(0usize..1000, 1..4), n);
            (sizes, reads)
        })
        .prop_map(|(sizes, reads)| {
            let steps: Vec<(Vec<usize>, usize)> = reads
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let mut r: Vec<usize> = r.iter().map(|x| x % (k + 1)).collect();
                    r.sort_unstable();
                    r.dedup();
                    (r, k + 1)
                })
                .collect();
            let borrowed: Vec<(&[usize], usize)> =
                steps.iter().map(|(r, w)| (r.as_slice(), *w)).collect();
            program(&sizes, &borrowed)
        })
}

proptest! {
    /// Every step still runs after the steps it depends on, the plan is valid, and the arena
    /// is never larger than the original order's.
    #[test]
    fn keeps_dependencies_and_never_grows_the_arena(p in random_program()) {
        let mut ordered = p.clone();
        let report = StepOrderer::default().run(&mut ordered);
        prop_assert!(report.arena_after <= report.arena_before);
        prop_assert!(report.peak_after <= report.peak_before || !report.reordered);
        let position = |name: &str| ordered.steps.iter().position(|s| s.name == name).unwrap();
        let deps = Dependencies::new(&p);
        for (k, before) in deps.before.iter().enumerate() {
            for j in 0..k {
                if super::has(before, j) {
                    let (pj, pk) = (position(&format!("s{}", j)), position(&format!("s{}", k)));
                    prop_assert!(pj < pk, "step {} runs before step {}", k, j);
                }
            }
        }
        // The orderer compares orders with the quick planner; breaking chains only shrinks.
        let plan = MemoryPlanner::default().run(&ordered);
        prop_assert!(plan.arena_bytes <= report.arena_after);
        prop_assert!(check(&ordered, &plan).is_ok());
    }
}
