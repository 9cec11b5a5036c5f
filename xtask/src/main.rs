//! `cargo xtask`: the project's tasks, so that a fresh clone needs exactly two
//! commands (`cargo xtask demo`, `cargo xtask test`). Each task installs what
//! it needs (the wasm32-wasip2 target), builds every guest component once, and
//! then does its job. One module per task; `cmd` runs commands, `langs` and
//! `tools` install the toolchains and packages the tasks need.

mod bench;
mod ci;
mod cmd;
mod demo;
mod edge;
mod guests;
mod langs;
mod layout;
mod test;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Keel's build tasks: guests, demo, tests, benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build everything and run the example pipeline (examples/penguins), then keel performance (examples/performance).
    Demo,
    /// Build guests, run every test in the workspace, then the edge smoke
    /// tests (x86_64, aarch64 under qemu).
    Test {
        /// Passed to `cargo test` (`-p keel-store`, `--no-fail-fast`, a filter after `--`);
        /// with any, the edge smoke tests are skipped.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Build first-party plugins and test guests (Rust for wasm32-wasip2;
    /// Python, JS, C through keel-build).
    BuildGuests,
    /// Component size, build time, instantiate time and throughput per language.
    BenchLangs {
        /// The test profile (wasmtime and Cranelift optimised, the rest not),
        /// where a release build of wasmtime is too slow.
        #[arg(long)]
        dev: bool,
    },
    /// Run the benchmarks (criterion) and print the figures.
    Bench,
    /// keel drift vs Evidently on 1M x 50 Parquet files (installs the Python side).
    BenchDrift {
        /// Passed to benches/drift/bench.py.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// keel performance vs NannyML (CBPE + PerformanceCalculator) on 1M predictions,
    /// 800k labels, a 100k reference (installs the Python side; checks both agree).
    BenchPerformance {
        /// Predictions (a tenth as many reference rows; chunks of rows / 20).
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// keel serve under load: one-row OIP requests, open and closed loop, three audit modes.
    BenchServe {
        /// Seconds per scenario.
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
    /// Label import through keel serve: labels/s from one client in batches of 1,000.
    BenchFeedback {
        /// Predictions served first, then labelled.
        #[arg(long, default_value_t = 200_000)]
        predictions: u64,
        /// The test profile (wasmtime and Cranelift optimised, the rest not).
        #[arg(long)]
        dev: bool,
    },
    /// The console's pages (`keel serve`'s /ui) with a million audit records: server time per page.
    BenchConsole {
        /// Audit records in the store (filled once under target/bench-console/).
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
    },
    /// The runtime-only keel: size, bundle smoke test, footprint, Pulley.
    Edge(edge::EdgeArgs),
    /// The onnx-model stage (wasi:nn, tract) vs onnxruntime on the same model and rows.
    BenchOnnx,
    /// Exact Shapley values of one penguins row through the pipeline; penguins-onnx vs
    /// shap.KernelExplainer on onnxruntime (installs the Python side; checks both agree).
    BenchExplain,
    /// No import cycle among a crate's top-level modules; no long function in host/.
    Layout(layout::LayoutArgs),
    /// What .ci/run does: fmt check, clippy -D warnings, layout, test.
    Ci,
}

impl Cli {
    /// Parses `args` (the program name first). clap swallows a `--` that
    /// comes first among a task's pass-through arguments; `cargo test` and
    /// bench.py get it back, as they got every argument before the typed CLI.
    fn parse_from_args(args: Vec<String>) -> Result<Cli, clap::Error> {
        let mut cli = Cli::try_parse_from(&args)?;
        if args.get(2).is_some_and(|a| a == "--")
            && let Task::Test { cargo_args: pass } | Task::BenchDrift { args: pass } = &mut cli.task
        {
            pass.insert(0, "--".into());
        }
        Ok(cli)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse_from_args(std::env::args().collect()).unwrap_or_else(|e| e.exit());
    let root = cmd::root()?;
    std::env::set_current_dir(&root)?;
    match cli.task {
        Task::Demo => demo::demo(&root),
        Task::Test { cargo_args } => test::test(&root, &cargo_args),
        Task::BuildGuests => guests::build_guests(&root).map(|_| ()),
        Task::Bench => bench::bench(&root),
        Task::BenchDrift { args } => bench::drift::bench_drift(&root, &args),
        Task::BenchPerformance { rows } => bench::performance::bench_performance(&root, rows),
        Task::BenchServe { seconds } => bench::serve::bench_serve(&root, seconds),
        Task::BenchOnnx => bench::onnx::bench_onnx(&root),
        Task::BenchFeedback { predictions, dev } => {
            bench::feedback::bench_feedback(&root, predictions, dev)
        }
        Task::BenchExplain => bench::explain::bench_explain(&root),
        Task::BenchConsole { records } => bench::console::bench_console(&root, records),
        Task::BenchLangs { dev } => bench::langs::bench_langs(&root, dev),
        Task::Edge(args) => edge::edge(&root, args.target),
        Task::Layout(args) => layout::layout(&root, &args),
        Task::Ci => ci::ci(&root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Task {
        let argv = std::iter::once("xtask").chain(args.iter().copied());
        match Cli::parse_from_args(argv.map(String::from).collect()) {
            Ok(cli) => cli.task,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn cargo_args(args: &[&str]) -> Vec<String> {
        match parse(args) {
            Task::Test { cargo_args } => cargo_args,
            _ => panic!("not the test task"),
        }
    }

    #[test]
    fn test_passes_everything_on_to_cargo_test() {
        assert_eq!(cargo_args(&["test"]), Vec::<String>::new());
        assert_eq!(
            cargo_args(&["test", "-p", "keel-store"]),
            ["-p", "keel-store"]
        );
        assert_eq!(
            cargo_args(&["test", "--no-fail-fast", "-p", "keel", "--", "--nocapture"]),
            ["--no-fail-fast", "-p", "keel", "--", "--nocapture"]
        );
        assert_eq!(
            cargo_args(&["test", "--", "--nocapture"]),
            ["--", "--nocapture"]
        );
        assert_eq!(
            cargo_args(&["test", "-p", "keel", "--test", "all", "serve::"]),
            ["-p", "keel", "--test", "all", "serve::"]
        );
    }

    #[test]
    fn edge_targets() {
        assert!(matches!(parse(&["edge"]), Task::Edge(a) if a.target == edge::Arch::Native));
        assert!(
            matches!(parse(&["edge", "--target", "x86_64"]), Task::Edge(a) if a.target == edge::Arch::Native)
        );
        assert!(
            matches!(parse(&["edge", "--target", "aarch64"]), Task::Edge(a) if a.target == edge::Arch::Aarch64)
        );
        assert!(Cli::try_parse_from(["xtask", "edge", "--target", "arm"]).is_err());
    }

    #[test]
    fn other_task_arguments() {
        assert!(matches!(
            parse(&["bench-serve"]),
            Task::BenchServe { seconds: 10 }
        ));
        assert!(matches!(
            parse(&["bench-serve", "3"]),
            Task::BenchServe { seconds: 3 }
        ));
        assert!(matches!(
            parse(&["bench-langs", "--dev"]),
            Task::BenchLangs { dev: true }
        ));
        assert!(
            matches!(parse(&["bench-drift", "--rows", "1000"]), Task::BenchDrift { args } if args == ["--rows", "1000"])
        );
        assert!(
            matches!(parse(&["bench-drift", "--", "--rows", "1"]), Task::BenchDrift { args } if args == ["--", "--rows", "1"])
        );
        assert!(matches!(
            parse(&["bench-performance"]),
            Task::BenchPerformance { rows: 1_000_000 }
        ));
        assert!(matches!(
            parse(&["bench-performance", "--rows", "100000"]),
            Task::BenchPerformance { rows: 100_000 }
        ));
        assert!(matches!(parse(&["layout"]), Task::Layout(a) if a.max_fn_lines == 120));
        assert!(Cli::try_parse_from(["xtask", "no-such-task"]).is_err());
    }
}
