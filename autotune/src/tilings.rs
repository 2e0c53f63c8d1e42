//! [`Tilings`]: the tiler's nests per workload and machine, computed once per compile. The
//! graph rewriter's price of widened weights ([`crate::cost::ScheduleCost`]) and the default
//! schedules ([`crate::compile::default_schedule`]) read the same tilings, so choosing a
//! layout costs no tiling beyond what scheduling does anyway.

use crate::compile::workload;
use minnow_ir::loops::reduction::Reduction;
use minnow_ir::WeightLayout;
use minnow_passes::loops::{LoopTiler, Machine, Tiling, Widening};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Both layouts' cheapest nests of a workload: in bytes, and widened where one exists.
type Layouts = Option<(Tiling, Option<Tiling>)>;

/// The tiler's results by workload and machine. Clones share them.
#[derive(Clone, Default)]
pub struct Tilings {
    tiler: LoopTiler,
    known: Rc<RefCell<HashMap<String, Rc<Layouts>>>>,
}

impl std::fmt::Debug for Tilings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tilings({} workloads)", self.known.borrow().len())
    }
}

impl Tilings {
    /// Both layouts' nests of `r` on `machine` (`None`: the tiler finds no nest).
    fn layouts(&self, r: &Reduction, machine: Machine) -> Rc<Layouts> {
        let key = format!("{machine:?} {}", workload(r));
        if let Some(known) = self.known.borrow().get(&key) {
            return known.clone();
        }
        let layouts = Rc::new(self.tiler.both_layouts(r, machine).ok());
        self.known.borrow_mut().insert(key, layouts.clone());
        layouts
    }

    /// What widening `r`'s weights changes on `machine`, if a nest can take them widened.
    pub fn widening(&self, r: &Reduction, machine: Machine) -> Option<Widening> {
        match &*self.layouts(r, machine) {
            Some((bytes, Some(wide))) => Some(Widening::between(r, bytes, wide)),
            _ => None,
        }
    }

    /// The cheapest nest of `r` on `machine` with its weights stored as `layout` (in bytes
    /// where no nest takes them widened).
    pub fn nest(&self, r: &Reduction, machine: Machine, layout: WeightLayout) -> Option<Tiling> {
        let layouts = self.layouts(r, machine);
        let (bytes, wide) = layouts.as_ref().as_ref()?;
        match (layout, wide) {
            (WeightLayout::Wide, Some(wide)) => Some(wide.clone()),
            _ => Some(bytes.clone()),
        }
    }
}
