//! A guest that knows nothing of Keel: a `wasi:cli` command written only
//! against the standard `wasi:nn` WIT, the way wasmtime's own wasi-nn example
//! guests are (`load-by-name`, `init-execution-context`, a tensor, `compute`,
//! read the outputs). Keel must run it unchanged.
//!
//! Usage: `nn-classify GRAPH INPUT ROW [ROW …]` where each ROW is
//! comma-separated f32 features. Prints one line per output tensor:
//! `NAME TYPE DIMS VALUES` (values comma-separated).

wit_bindgen::generate!({
    path: "../../../wit/deps/wasi-nn",
    world: "ml",
});

use wasi::nn::graph::load_by_name;
use wasi::nn::tensor::{Tensor, TensorType};

fn main() {
    if let Err(e) = run() {
        eprintln!("nn-classify: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: nn-classify GRAPH INPUT ROW [ROW ...]".into());
    }
    let rows: Vec<Vec<f32>> = args[3..]
        .iter()
        .map(|r| {
            r.split(',')
                .map(|v| v.trim().parse::<f32>().map_err(|e| format!("{v:?}: {e}")))
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let width = rows[0].len();
    if rows.iter().any(|r| r.len() != width) {
        return Err("rows differ in length".into());
    }
    let graph = load_by_name(&args[1]).map_err(|e| format!("load-by-name: {}", e.data()))?;
    let context = graph
        .init_execution_context()
        .map_err(|e| format!("init-execution-context: {}", e.data()))?;
    let data: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let dims = vec![rows.len() as u32, width as u32];
    let tensor = Tensor::new(&dims, TensorType::Fp32, &data);
    let outputs = context
        .compute(vec![(args[2].clone(), tensor)])
        .map_err(|e| format!("compute: {}", e.data()))?;
    for (name, t) in outputs {
        let bytes = t.data();
        let values: Vec<String> = match t.ty() {
            TensorType::Fp32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
                .collect(),
            TensorType::I64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    i64::from_le_bytes(b).to_string()
                })
                .collect(),
            other => vec![format!("<{other:?}>")],
        };
        let dims: Vec<String> = t.dimensions().iter().map(|d| d.to_string()).collect();
        println!(
            "{name} {:?} {} {}",
            t.ty(),
            dims.join("x"),
            values.join(",")
        );
    }
    Ok(())
}
