use minnow_autotune::db::{SqliteDb, Status, TuningDb};
use minnow_autotune::task::extract_tasks;
use minnow_passes::loops::estimate_nest;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model, dbp) = (&args[1], &args[2]);
    let bytes = std::fs::read(format!("../shared/models/{model}.tflite")).unwrap();
    let graph = minnow_ir::import::tflite::import(&bytes, model).unwrap();
    let target = minnow_targets::find("cortex-m4").unwrap();
    let lowered = minnow_autotune::compile::lower(
        &graph,
        model,
        &target,
        minnow_passes::patch::Patching::Off,
    )
    .unwrap();
    let tasks = extract_tasks(&lowered, &target, None).unwrap();
    let db = SqliteDb::open(std::path::Path::new(dbp)).unwrap();
    let machine = minnow_autotune::cost::machine(&target);
    for t in &tasks {
        let mut recs = db.records(&t.key, target.name).unwrap();
        recs.retain(|r| r.status == Status::Ok);
        if recs.len() < 3 {
            continue;
        }
        recs.sort_by(|a, b| a.figure.partial_cmp(&b.figure).unwrap());
        println!(
            "== {} {} macs {}",
            t.layer.chars().take(40).collect::<String>(),
            t.op,
            t.macs
        );
        for r in recs.iter().take(12) {
            let Ok(nest) = r.schedule.apply(&t.reduction) else {
                continue;
            };
            let e = estimate_nest(&t.reduction, machine, &nest);
            let order: Vec<String> = nest
                .loops
                .iter()
                .filter(|l| l.extent > 1)
                .map(|l| {
                    format!(
                        "{}{}{}",
                        t.reduction.axes[l.axis].name,
                        l.extent,
                        match l.kind {
                            minnow_ir::loops::ForKind::Serial => "",
                            minnow_ir::loops::ForKind::Unrolled => "u",
                            _ => "v",
                        }
                    )
                })
                .collect();
            println!(
                "{:>6} {:>9.0} est/mac {:.3} regs {:>2} {:>8} {}",
                r.origin,
                r.figure.unwrap(),
                e.instructions / t.macs as f64,
                e.registers,
                "",
                order.join(" ")
            );
        }
    }
}
