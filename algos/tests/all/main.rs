//! keel-algos' integration tests, in one test binary, one module per area.
//! A new test goes in the module of the area it checks; a check against a
//! reference implementation reads golden values that a committed script in
//! `tests/golden/` writes (never values typed in by hand). Timing runs are
//! `#[ignore]`d: `cargo test --release -p keel-algos --test all <module>:: -- --ignored --nocapture`.
//!
//! - `common`: golden files, the mismatch collector, a random source, best-of-N timing
//! - `dle`: DLE estimates against NannyML's (`golden/dle.py`; needs the `dle` feature, on in `cargo xtask test`)
//! - `explain`: Shapley values against shap's KernelExplainer and LinearExplainer (`golden/explain.py`)
//! - `golden`: the drift statistics against scipy (`golden/generate.py`)
//! - `penguins`: the example pipeline's maths natively against scikit-learn and its README
//! - `performance`: realized metrics against scikit-learn, CBPE against NannyML (`golden/performance.py`)
//! - `performance_timing`: the performance analysis at the benchmark size (ignored)
//! - `stats_timing`: the drift statistics at the sizes a monitor meets (ignored)

mod common;

#[cfg(feature = "dle")]
mod dle;
mod explain;
mod golden;
mod penguins;
mod performance;
mod performance_timing;
mod stats_timing;
