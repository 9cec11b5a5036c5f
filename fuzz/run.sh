#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60): the CSV and JSON Lines
# decoders (keel-data), the pipeline spec parser (keel-runtime) and the Open
# Inference Protocol request decoder (keel-server).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain (installed with rustup if missing) and cargo-fuzz
# (installed from crates.io if missing). New inputs go to target/fuzz/corpus/,
# never into the committed seeds; a crash is written to fuzz/artifacts/TARGET/
# and stops the run. Keep a fixed finding as a regression: copy it into
# fuzz/regressions/TARGET/ with a name saying what it was; `cargo test -p keel
# --test all fuzz_regressions::` (stable) runs every seed and regression through the
# same harness.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv jsonl spec oip)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# No sanitizer: these decoders are safe Rust, so ASan would only slow the
# build of wasmtime; debug assertions (-a) turn integer overflow into a crash.
flags=(--fuzz-dir fuzz --target-dir "${KEEL_FUZZ_TARGET_DIR:-target/fuzz}" -s none -a)
cargo +nightly fuzz build "${flags[@]}"
for t in "${targets[@]}"; do
    mkdir -p "target/fuzz/corpus/$t"
    echo "== fuzz $t for ${seconds}s"
    cargo +nightly fuzz run "${flags[@]}" "$t" "target/fuzz/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
