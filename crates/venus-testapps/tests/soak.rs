//! The short leak soak (`venus_testapps::soak`, `docs/soak.md`): 40 `venus-compute saxpy`
//! clients, 2 at a time, each run to its end or SIGKILLed during its work or right after its
//! result, against one venus-server on lavapipe. Every host object the server created must be
//! destroyed (its counters), every context released, no ERROR line, the server's descriptors
//! and threads back to their warm-up figures and its settled RSS within 16 MiB of the warm-up
//! figure. The 1000-cycle soak is `scripts/soak.sh`.

use venus_testapps::server::ServerOptions;
use venus_testapps::soak::{self, SoakConfig};
use venus_testapps::tools::{require, Tool};

#[test]
fn short_soak_leaks_nothing() {
    let test = "short_soak_leaks_nothing";
    let Some(tools) = require(test, &[Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let cfg = SoakConfig {
        cycles: 40,
        workers: 2,
        checkpoints: 4,
        elements: 65536,
        reps: 4,
        seed: 1,
        rss_tolerance_kib: 16 << 10,
        compute: env!("CARGO_BIN_EXE_venus-compute").into(),
        server: ServerOptions::default(),
        progress: false,
    };
    let (report, log) = soak::run(&tools, &cfg);
    let table = report.table();
    eprintln!("{test}:\n{table}");
    let o = &report.outcomes;
    // The three endings all happened (40 runs, one in three each on average).
    assert!(
        o.completed > 0 && o.killed_during > 0 && o.killed_after_result > 0,
        "{test}: not every ending was exercised:\n{table}"
    );
    // Every client that connected had a context, and each released what it created.
    assert!(
        report.counters.contexts >= 30 && report.counters.objects_created > 0,
        "{test}: too few contexts or objects:\n{table}"
    );
    let failures = report.failures(&cfg);
    assert!(
        failures.is_empty(),
        "{test}:\n- {}\n{table}\nserver log:\n{log}",
        failures.join("\n- ")
    );
}
