//! What the golden and timing tests share: reading a golden file written by
//! a script in `tests/golden/`, a collector of mismatches that fails a test
//! once naming all of them, a uniform random source and best-of-N timing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// `tests/golden/<file>`, parsed.
pub fn golden(file: &str) -> Value {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The non-empty list `group` of a golden file.
pub fn cases<'a>(g: &'a Value, group: &str) -> &'a [Value] {
    let list = g[group]
        .as_array()
        .unwrap_or_else(|| panic!("the golden file has no `{group}` list"));
    assert!(!list.is_empty(), "the golden file's `{group}` is empty");
    list
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

pub fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap()
}

/// `|got - want| <= tol`, false when `got` is NaN.
pub fn within(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol
}

/// Mismatches found so far; the test fails at the end listing all of them.
#[derive(Default)]
pub struct Check(pub Vec<String>);

impl Check {
    pub fn that(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push(message());
        }
    }

    pub fn done(self, group: &str) {
        assert!(
            self.0.is_empty(),
            "{group}: {} mismatch(es):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// xorshift64*: uniform numbers in (0, 1) without an RNG crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Best of `runs` (the least disturbed by the other work on the machine).
pub fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = None;
    let mut min = Duration::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        let r = black_box(f());
        min = min.min(t.elapsed());
        out = Some(r);
    }
    (min, out.unwrap())
}
