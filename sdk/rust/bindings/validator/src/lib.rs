//! Generated guest bindings for `keel:plugin/validator-plugin`, sharing `types`
//! and `host` with the transform bindings. Use `keel-sdk` instead.
#![allow(clippy::all, missing_docs, unsafe_op_in_unsafe_fn)]
wit_bindgen::generate!({
    path: "../../../../wit",
    world: "keel:plugin/validator-plugin",
    pub_export_macro: true,
    export_macro_name: "export_world",
    with: {
        "keel:plugin/types@0.1.0": keel_sdk_transform::keel::plugin::types,
        "keel:plugin/host@0.1.0": keel_sdk_transform::keel::plugin::host,
    },
});
