//! Plain `wasi:cli` command guests that use only standard `wasi:nn` (as
//! wasmtime's own wasi-nn example guests do), run in Keel's sandbox:
//! `keel model exec`. Not a plugin: no keel:plugin exports, just stdout.

use crate::engine::Runtime;
use crate::error::RuntimeError;
use crate::nn::StageModel;
use crate::sandbox::Limits;
use crate::store::StoreBuilder;
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// What a `wasi:cli` command guest printed, and whether it exited successfully.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub stdout: Vec<u8>,
    pub success: bool,
}

/// Largest stdout kept from a command guest.
const COMMAND_STDOUT_LIMIT: usize = 16 << 20;

/// Runs a plain `wasi:cli` command that uses only standard `wasi:nn` (as
/// wasmtime's own wasi-nn example guests do) in Keel's sandbox: no files,
/// network or environment, `args` as its arguments, `models` preloaded for
/// `load-by-name`, memory and CPU limits as for a stage. Returns its stdout.
pub fn run_command(
    rt: &Runtime,
    bytes: &[u8],
    source: &str,
    args: &[String],
    models: &[StageModel],
    limits: &Limits,
) -> Result<CommandOutput, RuntimeError> {
    use sha2::Digest as _;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let (component, _) = rt.cache.load(&rt.engine, bytes, &digest, source)?;
    let sandbox = |message: String| RuntimeError::Sandbox {
        plugin: source.to_string(),
        message,
    };
    let stdout = MemoryOutputPipe::new(COMMAND_STDOUT_LIMIT);
    let mut argv = vec![source.to_string()];
    argv.extend(args.iter().cloned());
    let mut store = StoreBuilder::new(source, limits)
        .command(&argv, stdout.clone())
        .models(models)
        .build(rt)
        .map_err(sandbox)?;
    // The linker's whole message names the import: a command guest's
    // imports are not listed beforehand.
    let command = Command::instantiate(&mut store, &component, &rt.linker)
        .map_err(|e| RuntimeError::unlinked(source, &e, &[]))?;
    let success = match command.wasi_cli_run().call_run(&mut store) {
        Ok(r) => r.is_ok(),
        // `std::process::exit` in the guest: an exit status, not a crash.
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(code) => code.0 == 0,
            None => return Err(sandbox(format!("trapped: {e:#}"))),
        },
    };
    Ok(CommandOutput {
        stdout: stdout.contents().to_vec(),
        success,
    })
}
