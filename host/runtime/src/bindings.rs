//! The host's only `bindgen!`: one module per plugin world, sharing the
//! `types` and `host` interfaces so one set of Rust types and one host
//! implementation serve every kind.

pub mod transform {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "keel:plugin/transform-plugin",
        additional_derives: [PartialEq],
    });
}

pub mod validator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "keel:plugin/validator-plugin",
        with: {
            "keel:plugin/types": super::transform::keel::plugin::types,
            "keel:plugin/host": super::transform::keel::plugin::host,
        },
    });
}

pub mod monitor {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "keel:plugin/monitor-plugin",
        with: {
            "keel:plugin/types": super::transform::keel::plugin::types,
            "keel:plugin/host": super::transform::keel::plugin::host,
        },
    });
}

pub use transform::keel::plugin::host;
pub use transform::keel::plugin::types;
