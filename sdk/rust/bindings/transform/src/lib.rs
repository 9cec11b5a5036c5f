//! Generated guest bindings for `keel:plugin/transform-plugin`; also the home
//! of the shared `types` and `host` bindings. Use `keel-sdk` instead.
#![allow(clippy::all, missing_docs, unsafe_op_in_unsafe_fn)]
wit_bindgen::generate!({
    path: "../../../../wit",
    world: "keel:plugin/transform-plugin",
    pub_export_macro: true,
    export_macro_name: "export_world",
});
