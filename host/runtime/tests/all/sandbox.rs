//! The sandbox against a hostile guest: every misbehaviour fails that one call
//! with an error naming plugin, stage and limit, and the host carries on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use crate::common;

use common::{placement, runtime, test_guest};
use keel_data::{Batch, Column, ColumnData, Value};
use keel_runtime::instance::Instance;
use keel_runtime::sandbox::{Grant, Limits};
use keel_runtime::{Outcome, Plugin, PluginKind, Runtime, RuntimeError};
use std::time::{Duration, Instant};

fn batch(n: usize) -> Batch {
    Batch::from_columns(vec![Column::new(
        "x",
        ColumnData::F64((0..n).map(|i| i as f64).collect()),
    )])
    .unwrap()
}

fn hostile(rt: &Runtime) -> Plugin {
    Plugin::load_file(rt, &test_guest("hostile")).unwrap()
}

fn limits(memory_mb: u64, timeout_ms: u64) -> Limits {
    Limits {
        memory_mb,
        timeout_ms,
        ..Limits::default()
    }
}

fn instance(rt: &Runtime, mode: &str, l: Limits) -> Instance {
    let p = hostile(rt);
    let cfg = format!(r#"{{"mode":"{mode}"}}"#);
    Instance::create(rt, &placement(&p, "bad-stage", &cfg, l, vec![]), None).unwrap()
}

#[test]
fn loads_with_kind_metadata_and_digest() {
    let rt = runtime();
    let p = hostile(&rt);
    assert_eq!(p.kind(), PluginKind::Transform);
    assert_eq!(p.name(), "hostile");
    assert!(p.digest().starts_with("sha256:") && p.digest().len() == 71);
    assert!(
        p.summary()
            .exports
            .iter()
            .any(|e| e == "keel:plugin/transform@0.1.0")
    );
    // Loading again hits the precompiled cache.
    let again = hostile(&rt);
    assert!(again.summary().cached);
}

#[test]
fn echo_passes_data_through() {
    let rt = runtime();
    let mut i = instance(&rt, "echo", Limits::default());
    let out = i.process(batch(5), 0).unwrap();
    assert_eq!(out, batch(5));
}

#[test]
fn plugin_error_is_a_value_and_keeps_the_instance() {
    let rt = runtime();
    let p = hostile(&rt);
    let mut i = Instance::create(
        &rt,
        &placement(
            &p,
            "s",
            r#"{"mode":"error","after_calls":1}"#,
            Limits::default(),
            vec![],
        ),
        None,
    )
    .unwrap();
    assert!(i.process(batch(1), 0).is_ok());
    let e = i.process(batch(1), 0).unwrap_err();
    assert_eq!(e.outcome, Outcome::Error);
    assert_eq!(e.column.as_deref(), Some("x"));
    assert!(
        e.to_string().contains("invalid-input: refused on purpose"),
        "{e}"
    );
    assert!(!i.is_poisoned());
}

#[test]
fn config_errors_name_the_problem() {
    let rt = runtime();
    let p = hostile(&rt);
    let err = Instance::create(
        &rt,
        &placement(&p, "s", r#"{"mood":"x"}"#, Limits::default(), vec![]),
        None,
    )
    .err()
    .unwrap();
    assert_eq!(err.outcome, Outcome::Error);
    assert_eq!(err.call, "create");
    assert!(
        err.message.contains("invalid-config") && err.message.contains("mode"),
        "{}",
        err.message
    );
    let err = Instance::create(
        &rt,
        &placement(
            &p,
            "s",
            r#"{"mode":"fail-create"}"#,
            Limits::default(),
            vec![],
        ),
        None,
    )
    .err()
    .unwrap();
    assert_eq!(err.column.as_deref(), Some("mode"));
}

#[test]
fn panic_traps_names_plugin_and_stage_and_host_carries_on() {
    let rt = runtime();
    for mode in ["panic", "unreachable", "abort"] {
        let mut i = instance(&rt, mode, Limits::default());
        let e = i.process(batch(3), 0).unwrap_err();
        assert_eq!(e.outcome, Outcome::Trap, "{mode}: {e}");
        assert!(i.is_poisoned());
        let text = e.to_string();
        assert!(
            text.contains("stage `bad-stage`") && text.contains("plugin `hostile`"),
            "{text}"
        );
        if mode == "panic" {
            assert!(
                text.contains("hostile plugin panicked on purpose"),
                "{text}"
            );
        }
    }
    // The host is fine: a fresh instance of the same plugin works.
    let mut ok = instance(&rt, "echo", Limits::default());
    assert_eq!(ok.process(batch(2), 0).unwrap().rows(), 2);
}

#[test]
fn endless_loop_stopped_by_deadline() {
    let rt = runtime();
    let mut i = instance(&rt, "loop", limits(64, 200));
    let t = Instant::now();
    let e = i.process(batch(1), 0).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.outcome, Outcome::Timeout);
    assert_eq!(e.limit.as_deref(), Some("timeout_ms = 200"));
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn spinning_on_the_clock_is_stopped_too() {
    let rt = runtime();
    let mut i = instance(&rt, "spin-clock", limits(64, 200));
    let e = i.process(batch(1), 0).unwrap_err();
    assert_eq!(e.outcome, Outcome::Timeout);
}

#[test]
fn memory_growth_beyond_cap_traps_with_the_limit() {
    let rt = runtime();
    for mode in ["grow", "huge-alloc"] {
        let mut i = instance(&rt, mode, limits(32, 10_000));
        let e = i.process(batch(1), 0).unwrap_err();
        assert_eq!(e.outcome, Outcome::Trap, "{mode}: {e}");
        assert_eq!(e.limit.as_deref(), Some("memory_mb = 32"), "{mode}: {e}");
        assert!(i.peak_memory() <= 32 << 20);
    }
}

#[test]
fn slow_leak_hits_the_cap_after_some_calls() {
    let rt = runtime();
    let mut i = instance(&rt, "leak", limits(48, 10_000));
    let mut ok_calls = 0;
    let err = loop {
        match i.process(batch(1), 0) {
            Ok(_) => ok_calls += 1,
            Err(e) => break e,
        }
        assert!(ok_calls < 100, "leak never stopped");
    };
    assert!(ok_calls >= 2, "{ok_calls}");
    assert_eq!(err.limit.as_deref(), Some("memory_mb = 48"));
}

#[test]
fn deep_recursion_is_a_stack_overflow_trap() {
    let rt = runtime();
    let mut i = instance(&rt, "recurse", Limits::default());
    let e = i.process(batch(1), 0).unwrap_err();
    assert_eq!(e.outcome, Outcome::Trap);
    assert!(e.message.contains("stack overflow"), "{e}");
}

#[test]
fn oversized_output_is_refused() {
    let rt = runtime();
    let mut i = instance(
        &rt,
        "huge-output",
        Limits {
            max_output_rows: 1000,
            ..Limits::default()
        },
    );
    let e = i.process(batch(1), 0).unwrap_err();
    assert_eq!(e.limit.as_deref(), Some("max_output_rows = 1000"));
    assert!(i.is_poisoned());
}

#[test]
fn no_files_without_a_grant() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let p = hostile(&rt);
    let cfg = format!(r#"{{"mode":"read-file","path":"{}"}}"#, secret.display());
    let mut i = Instance::create(
        &rt,
        &placement(&p, "s", &cfg, Limits::default(), vec![]),
        None,
    )
    .unwrap();
    let e = i.process(batch(1), 0).unwrap_err();
    assert_eq!(e.outcome, Outcome::Error);
    assert!(!e.message.contains("top secret"));
}

#[test]
fn granted_directory_is_readable_but_not_writable_or_escapable() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("table.txt"), "granted").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), data.join("link.txt")).unwrap();
    let grant = vec![Grant {
        host: data.clone(),
        guest: "/data".into(),
        writable: false,
    }];
    let p = hostile(&rt);
    let run = |mode: &str, path: &str| {
        let cfg = format!(r#"{{"mode":"{mode}","path":"{path}"}}"#);
        let mut i = Instance::create(
            &rt,
            &placement(&p, "s", &cfg, Limits::default(), grant.clone()),
            None,
        )
        .unwrap();
        i.process(batch(1), 0)
    };
    let ok = run("read-file", "/data/table.txt").unwrap();
    assert_eq!(
        ok.column("content").unwrap().value(0),
        Value::Str("granted")
    );
    assert!(run("read-file", "/data/../outside.txt").is_err());
    assert!(run("read-file", "/data/link.txt").is_err());
    assert!(run("write-file", "/data/new.txt").is_err());
    assert!(!data.join("new.txt").exists());
}

#[test]
fn no_env_args_or_sockets() {
    let rt = runtime();
    let mut i = instance(&rt, "env", Limits::default());
    let out = i.process(batch(1), 0).unwrap();
    let env = out.column("env").unwrap();
    assert_eq!(env.value(0), Value::Str(""), "environment leaked");
    assert_eq!(env.value(1), Value::Str(""), "arguments leaked");
    let mut s = instance(&rt, "socket", Limits::default());
    let e = s.process(batch(1), 0).unwrap_err();
    assert!(e.message.contains("connect: Err"), "{e}");
}

#[test]
fn clocks_and_randomness_are_repeatable() {
    let rt = runtime();
    let read = |seed| {
        let mut i = instance(&rt, "clock", Limits::default());
        let out = i.process(batch(1), seed).unwrap();
        (
            out.column("now").unwrap().value(0).to_string(),
            out.column("rand").unwrap().value(0).to_string(),
        )
    };
    let a = read(7);
    assert_eq!(a, read(7), "same seed, same clock and randomness");
    assert_ne!(a.1, read(8).1, "another seed, other randomness");
    // 2020-01-01 in nanoseconds, plus a few virtual microseconds.
    let now: i64 = a.0.parse().unwrap();
    assert!(
        (1_577_836_800_000_000_000..1_577_836_801_000_000_000).contains(&now),
        "{now}"
    );
}

#[test]
fn guest_output_is_logged_not_fatal() {
    let rt = runtime();
    let mut i = instance(&rt, "print", Limits::default());
    assert_eq!(i.process(batch(2), 0).unwrap().rows(), 2);
}

#[test]
fn nan_and_infinities_cross_intact() {
    let rt = runtime();
    let mut i = instance(&rt, "nan", Limits::default());
    let out = i.process(batch(3), 0).unwrap();
    let w = out.column("weird").unwrap().numeric().unwrap().into_owned();
    assert!(w[0].is_nan() && w[1] == f64::INFINITY && w[2] == f64::NEG_INFINITY);
}

#[test]
fn a_hostile_neighbour_does_not_disturb_others() {
    let rt = runtime();
    std::thread::scope(|s| {
        let bad = s.spawn(|| {
            let mut i = instance(&rt, "loop", limits(64, 1500));
            i.process(batch(1), 0).unwrap_err().outcome
        });
        let good = s.spawn(|| {
            let mut i = instance(&rt, "echo", Limits::default());
            let t = Instant::now();
            let mut n = 0;
            while t.elapsed() < Duration::from_millis(500) {
                assert_eq!(i.process(batch(100), n).unwrap().rows(), 100);
                n += 1;
            }
            n
        });
        assert!(good.join().unwrap() > 10);
        assert_eq!(bad.join().unwrap(), Outcome::Timeout);
    });
}

#[test]
fn bad_components_get_clear_errors() {
    let rt = runtime();
    let e = Plugin::load(&rt, b"not wasm at all", "junk.wasm")
        .err()
        .unwrap();
    assert!(matches!(e, RuntimeError::Compile { .. }), "{e}");
    assert!(e.to_string().contains("junk.wasm"));

    let bytes = std::fs::read(test_guest("hostile")).unwrap();
    let e = Plugin::load(&rt, &bytes[..bytes.len() / 2], "truncated.wasm")
        .err()
        .unwrap();
    assert!(matches!(e, RuntimeError::Compile { .. }), "{e}");

    let core_module = wat_bytes("(module (func (export \"f\")))");
    assert!(Plugin::load(&rt, &core_module, "core.wasm").is_err());

    let wrong_world = wat_bytes("(component (core module $m) (core instance (instantiate $m)))");
    let e = Plugin::load(&rt, &wrong_world, "empty.wasm").err().unwrap();
    assert!(matches!(e, RuntimeError::UnknownKind { .. }), "{e}");

    let greedy = wat_bytes(
        r#"(component
             (import "wasi:http/outgoing-handler@0.2.0" (instance))
             (import "keel:plugin/transform@0.1.0" (instance))
           )"#,
    );
    let e = Plugin::load(&rt, &greedy, "greedy.wasm").err().unwrap();
    assert!(
        matches!(
            e,
            RuntimeError::UnknownKind { .. } | RuntimeError::UnsupportedImport { .. }
        ),
        "{e}"
    );
}

#[test]
fn ungranted_import_is_named() {
    let rt = runtime();
    // The kind is detected from exports before imports are checked, so this
    // component exports the transform interface's name (empty) and imports
    // an interface the host does not grant.
    let c = wat_bytes(
        r#"(component
             (import "wasi:http/outgoing-handler@0.2.0" (instance $h (export "handle" (func))))
             (instance $t)
             (export "keel:plugin/transform@0.1.0" (instance $t))
           )"#,
    );
    let e = Plugin::load(&rt, &c, "net.wasm").err().unwrap();
    match e {
        RuntimeError::UnsupportedImport { plugin, interface } => {
            assert_eq!(plugin, "net.wasm");
            assert_eq!(interface, "wasi:http/outgoing-handler@0.2.0");
        }
        other => panic!("expected UnsupportedImport, got {other}"),
    }
}

fn wat_bytes(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A plugin on the raw bindings returning batches that break the contract:
/// the host refuses each, naming the column, and discards the instance.
#[test]
fn malformed_output_batches_are_refused_naming_the_column() {
    let rt = runtime();
    let p = Plugin::load_file(&rt, &test_guest("raw")).unwrap();
    let cases = [
        (
            "ragged",
            "column `short` has 4 values but the batch has 5 rows",
        ),
        ("ragged-validity", "`masked`"),
        (
            "rows-lie",
            "column `x` has 5 values but the batch has 12 rows",
        ),
        ("duplicate", "`dup`"),
    ];
    for (mode, needle) in cases {
        let cfg = format!(r#"{{"mode":"{mode}"}}"#);
        let mut i = Instance::create(
            &rt,
            &placement(&p, "raw-stage", &cfg, Limits::default(), vec![]),
            None,
        )
        .unwrap();
        let e = i.process(batch(5), 0).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("stage `raw-stage` (plugin `raw`)")
                && text.contains("returned a malformed batch")
                && text.contains(needle),
            "{mode}: {text}"
        );
        assert!(
            i.is_poisoned(),
            "{mode}: a contract breaker keeps no instance"
        );
    }
    // The same plugin behaving: accepted.
    let mut ok = Instance::create(
        &rt,
        &placement(
            &p,
            "raw-stage",
            r#"{"mode":"echo"}"#,
            Limits::default(),
            vec![],
        ),
        None,
    )
    .unwrap();
    assert_eq!(ok.process(batch(5), 0).unwrap().rows(), 5);
}

/// Every hostile mode at once, each on its own thread, next to well-behaved
/// instances whose answers must equal those of a quiet run.
#[test]
fn every_hostile_mode_at_once_leaves_neighbours_undisturbed() {
    let rt = runtime();
    let modes = [
        "panic",
        "unreachable",
        "abort",
        "loop",
        "spin-clock",
        "recurse",
        "grow",
        "huge-alloc",
        "leak",
        "huge-output",
    ];
    let quiet = {
        let mut i = instance(&rt, "echo", Limits::default());
        i.process(batch(100), 0).unwrap()
    };
    let outcomes = std::thread::scope(|s| {
        let bad: Vec<_> = modes
            .iter()
            .map(|mode| {
                let rt = &rt;
                s.spawn(move || {
                    let l = Limits {
                        memory_mb: 64,
                        timeout_ms: 1000,
                        max_output_rows: 1000,
                    };
                    let mut i = instance(rt, mode, l);
                    let t = Instant::now();
                    let e = loop {
                        if let Err(e) = i.process(batch(10), 0) {
                            break e;
                        }
                    };
                    (mode.to_string(), e, t.elapsed())
                })
            })
            .collect();
        let good: Vec<_> = (0..2)
            .map(|_| {
                let rt = &rt;
                let quiet = &quiet;
                s.spawn(move || {
                    let mut i = instance(rt, "echo", Limits::default());
                    let t = Instant::now();
                    let mut n = 0;
                    while t.elapsed() < Duration::from_millis(1500) {
                        assert_eq!(&i.process(batch(100), 0).unwrap(), quiet);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for g in good {
            assert!(g.join().unwrap() > 10);
        }
        bad.into_iter()
            .map(|b| b.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (mode, e, took) in outcomes {
        let text = e.to_string();
        assert!(
            text.contains("stage `bad-stage` (plugin `hostile`)"),
            "{mode}: {text}"
        );
        let want = match mode.as_str() {
            "loop" | "spin-clock" => Some("timeout_ms = 1000"),
            "grow" | "huge-alloc" | "leak" => Some("memory_mb = 64"),
            "recurse" => Some("wasm stack = 512 KiB"),
            "huge-output" => Some("max_output_rows = 1000"),
            _ => None,
        };
        assert_eq!(e.limit.as_deref(), want, "{mode}: {text}");
        assert!(took < Duration::from_secs(10), "{mode} took {took:?}");
    }
}
