//! What the runtime's benchmarks share: where the built components are, the
//! median of timed runs, and a fixed random source so every run sees the
//! same rows.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

/// `$var`, or `target/<default>` of the workspace (where `cargo xtask`
/// builds the guests).
pub fn dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target")
            .join(default)
    })
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Uniform numbers in [0, 1) from a fixed LCG: the same on every run.
pub fn lcg() -> impl FnMut() -> f64 {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}
