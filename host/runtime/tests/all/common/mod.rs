//! Shared test setup: locating guest components built by `cargo xtask`, and a
//! runtime with a compile cache shared across tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_runtime::instance::Placement;
use keel_runtime::sandbox::{Grant, Limits};
use keel_runtime::{Plugin, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::sync::Arc;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir(var: &str, default: &str) -> PathBuf {
    let d = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join(default));
    assert!(
        d.is_dir(),
        "{} does not exist: build the guests first with `cargo xtask build-guests` (or run `cargo xtask test`)",
        d.display()
    );
    d
}

pub fn test_guest(name: &str) -> PathBuf {
    dir("KEEL_TEST_GUESTS", "test-guests").join(format!("{name}.wasm"))
}

pub fn plugin_dir() -> PathBuf {
    dir("KEEL_PLUGIN_DIR", "plugins")
}

pub fn runtime() -> Arc<Runtime> {
    Arc::new(
        Runtime::new(RuntimeOptions {
            cache_dir: Some(workspace().join("target").join("keel-test-cache")),
            ..RuntimeOptions::default()
        })
        .unwrap(),
    )
}

pub fn placement(
    plugin: &Plugin,
    stage: &str,
    config: &str,
    limits: Limits,
    grants: Vec<Grant>,
) -> Placement {
    Placement {
        plugin: plugin.clone(),
        stage: stage.into(),
        limits,
        grants,
        config: config.into(),
        models: Vec::new(),
    }
}

/// An SDK example plugin (sdk/<lang>/examples/<name>), built by `cargo xtask build-guests`.
pub fn sdk_example(name: &str) -> PathBuf {
    dir("KEEL_SDK_EXAMPLES", "sdk-examples").join(format!("{name}.wasm"))
}
