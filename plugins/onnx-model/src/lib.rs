//! `onnx-model` plugin (world `model-plugin`): packs batch columns into the
//! input tensor of an ONNX graph the host preloads for its stage, runs it
//! through the standard `wasi:nn` interface (`load-by-name`, `compute`), and
//! unpacks the output tensors into prediction columns (labels, probabilities).

use keel_sdk::{Batch, Column, ColumnData, Config, Error, Info, Result, Transform};
use serde::Deserialize;

mod nn {
    //! Guest bindings of the standard wasi:nn WIT (the copy in wit/deps,
    //! taken from the wasmtime-wasi-nn crate), imports only.
    #![allow(clippy::all, missing_docs, unsafe_op_in_unsafe_fn)]
    wit_bindgen::generate!({
        path: "../../wit/deps/wasi-nn",
        world: "ml",
    });
}

use nn::wasi::nn::graph;
use nn::wasi::nn::inference::GraphExecutionContext;
use nn::wasi::nn::tensor::{Tensor, TensorType};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    /// Graph name, as granted by the stage's `models` (name without version).
    model: String,
    /// Name of the graph's input tensor.
    input: String,
    /// Feature columns, in the order the model expects them.
    features: Vec<String>,
    /// Element type of the input tensor.
    #[serde(default)]
    dtype: DType,
    /// Output tensors to turn into columns.
    outputs: Vec<OutputCfg>,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum DType {
    #[default]
    F32,
    F64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputCfg {
    /// Output tensor name.
    tensor: String,
    /// One column per element of the tensor's last dimension (one column
    /// for a `[N]` or `[N, 1]` tensor); `""` skips that element.
    columns: Vec<String>,
    /// Column type: `f64` (floats' default), `s64` (integers' default),
    /// `bool` (value != 0), or `string` (an integer class index into `classes`).
    #[serde(default)]
    as_type: Option<AsType>,
    /// Class names for `as_type = "string"`, by class index.
    #[serde(default)]
    classes: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum AsType {
    F64,
    S64,
    Bool,
    String,
}

struct OnnxModel {
    cfg: Cfg,
    ctx: GraphExecutionContext,
}

fn nn_error(what: &str, e: nn::wasi::nn::errors::Error) -> String {
    format!("{what}: {:?}: {}", e.code(), e.data())
}

impl Transform for OnnxModel {
    fn info() -> Info {
        Info::new("onnx-model", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .schema(SCHEMA)
            .model()
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        let cfg: Cfg = config.parse()?;
        if cfg.features.is_empty() {
            return Err(Error::config("`features` must name at least one column"));
        }
        if cfg.outputs.is_empty() {
            return Err(Error::config("`outputs` must name at least one tensor"));
        }
        for (i, o) in cfg.outputs.iter().enumerate() {
            if o.columns.iter().all(String::is_empty) {
                return Err(Error::config(format!(
                    "outputs[{i}] (`{}`): `columns` names no column",
                    o.tensor
                )));
            }
            if o.as_type == Some(AsType::String) && o.classes.is_empty() {
                return Err(Error::config(format!(
                    "outputs[{i}] (`{}`): `as_type = \"string\"` needs `classes`",
                    o.tensor
                )));
            }
        }
        let g = graph::load_by_name(&cfg.model).map_err(|e| {
            Error::config(format!(
                "{} (is `{}` in this stage's `models`?)",
                nn_error(&format!("loading model `{}`", cfg.model), e),
                cfg.model
            ))
        })?;
        let ctx = g
            .init_execution_context()
            .map_err(|e| Error::internal(nn_error("init-execution-context", e)))?;
        Ok(OnnxModel { cfg, ctx })
    }

    fn process(&mut self, mut input: Batch) -> Result<Batch> {
        let rows = input.rows();
        let width = self.cfg.features.len();
        // Rows with a null feature are computed on zeros and come out null.
        let mut valid = vec![true; rows];
        let mut values = vec![0.0f64; rows * width];
        for (j, name) in self.cfg.features.iter().enumerate() {
            let col = input.require(name)?;
            let data = col.numeric().map_err(|e| Error::from(e).in_column(name))?;
            for (r, v) in data.iter().enumerate() {
                if col.is_valid(r) {
                    values[r * width + j] = *v;
                } else {
                    valid[r] = false;
                }
            }
        }
        let outputs = if rows == 0 {
            Vec::new()
        } else {
            let (ty, bytes) = match self.cfg.dtype {
                DType::F32 => (
                    TensorType::Fp32,
                    values
                        .iter()
                        .flat_map(|v| (*v as f32).to_le_bytes())
                        .collect::<Vec<u8>>(),
                ),
                DType::F64 => (
                    TensorType::Fp64,
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            };
            let dims = [rows as u32, width as u32];
            let tensor = Tensor::new(&dims, ty, &bytes);
            self.ctx
                .compute(vec![(self.cfg.input.clone(), tensor)])
                .map_err(|e| Error::input(nn_error("compute", e)))?
        };
        let validity = if valid.iter().all(|v| *v) {
            None
        } else {
            Some(valid)
        };
        for o in &self.cfg.outputs {
            let cols = if rows == 0 {
                empty_columns(o)
            } else {
                let (_, t) = outputs
                    .iter()
                    .find(|(n, _)| *n == o.tensor)
                    .ok_or_else(|| {
                        let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
                        Error::config(format!(
                            "the model has no output `{}` (outputs: {})",
                            o.tensor,
                            names.join(", ")
                        ))
                    })?;
                unpack(o, t, rows)?
            };
            for mut c in cols {
                c.validity = validity.clone();
                input.set(c)?;
            }
        }
        Ok(input)
    }
}

keel_sdk::export_transform!(OnnxModel);

/// One tensor's values as f64 or i64, whatever its element type.
enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

fn read(t: &Tensor) -> Result<Values> {
    let data = t.data();
    fn chunks<const W: usize>(d: &[u8]) -> impl Iterator<Item = [u8; W]> + '_ {
        d.chunks_exact(W).map(|c| {
            let mut b = [0u8; W];
            b.copy_from_slice(c);
            b
        })
    }
    Ok(match t.ty() {
        TensorType::Fp32 => Values::Float(
            chunks::<4>(&data)
                .map(|b| f64::from(f32::from_le_bytes(b)))
                .collect(),
        ),
        TensorType::Fp64 => Values::Float(chunks::<8>(&data).map(f64::from_le_bytes).collect()),
        TensorType::I64 => Values::Int(chunks::<8>(&data).map(i64::from_le_bytes).collect()),
        TensorType::I32 => Values::Int(
            chunks::<4>(&data)
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect(),
        ),
        TensorType::U8 => Values::Int(data.iter().map(|b| i64::from(*b)).collect()),
        other => {
            return Err(Error::input(format!(
                "output tensor type {other:?} is not supported"
            )));
        }
    })
}

fn empty_columns(o: &OutputCfg) -> Vec<Column> {
    o.columns
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let data = match o.as_type {
                Some(AsType::S64) => ColumnData::S64(Vec::new()),
                Some(AsType::Bool) => ColumnData::Bool(Vec::new()),
                Some(AsType::String) => ColumnData::String(Vec::new()),
                _ => ColumnData::F64(Vec::new()),
            };
            Column::new(c.clone(), data)
        })
        .collect()
}

fn unpack(o: &OutputCfg, t: &Tensor, rows: usize) -> Result<Vec<Column>> {
    let dims = t.dimensions();
    let per_row: usize = dims.iter().skip(1).map(|d| *d as usize).product();
    if dims.first().map(|d| *d as usize) != Some(rows) || per_row != o.columns.len() {
        return Err(Error::config(format!(
            "output `{}` has shape {dims:?}: expected [{rows}, {}] for the {} column(s) configured",
            o.tensor,
            o.columns.len(),
            o.columns.len()
        )));
    }
    let values = read(t)?;
    let mut out = Vec::new();
    for (k, name) in o.columns.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let at = |r: usize| r * per_row + k;
        let data = match (&values, o.as_type) {
            (Values::Float(v), None | Some(AsType::F64)) => {
                ColumnData::F64((0..rows).map(|r| v[at(r)]).collect())
            }
            (Values::Int(v), Some(AsType::F64)) => {
                ColumnData::F64((0..rows).map(|r| v[at(r)] as f64).collect())
            }
            (Values::Int(v), None | Some(AsType::S64)) => {
                ColumnData::S64((0..rows).map(|r| v[at(r)]).collect())
            }
            (Values::Float(v), Some(AsType::S64)) => {
                ColumnData::S64((0..rows).map(|r| v[at(r)] as i64).collect())
            }
            (Values::Int(v), Some(AsType::Bool)) => {
                ColumnData::Bool((0..rows).map(|r| v[at(r)] != 0).collect())
            }
            (Values::Float(v), Some(AsType::Bool)) => {
                ColumnData::Bool((0..rows).map(|r| v[at(r)] != 0.0).collect())
            }
            (Values::Int(v), Some(AsType::String)) => {
                let mut s = Vec::with_capacity(rows);
                for r in 0..rows {
                    let i = v[at(r)];
                    let class = usize::try_from(i)
                        .ok()
                        .and_then(|i| o.classes.get(i))
                        .ok_or_else(|| {
                            Error::input(format!(
                                "output `{}` row {r}: class index {i} is outside `classes` ({} names)",
                                o.tensor,
                                o.classes.len()
                            ))
                            .in_column(name)
                        })?;
                    s.push(class.clone());
                }
                ColumnData::String(s)
            }
            (Values::Float(_), Some(AsType::String)) => {
                return Err(Error::config(format!(
                    "output `{}` is a float tensor; `as_type = \"string\"` needs integer class indices",
                    o.tensor
                )));
            }
        };
        out.push(Column::new(name.clone(), data));
    }
    Ok(out)
}

const DESCRIPTION: &str = "Runs an ONNX model that the host preloads for this stage (the stage's `models`), through wasi:nn: packs the feature columns into a [rows, features] input tensor, and turns output tensors into columns (probabilities, labels, class names). Rows with a null feature get null predictions.";

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "onnx-model config",
  "type": "object",
  "properties": {
    "model": {
      "description": "Name of the model to load (wasi:nn load-by-name): a name in the stage's `models`, without its version.",
      "type": "string",
      "minLength": 1
    },
    "input": {"description": "Name of the graph's input tensor.", "type": "string", "minLength": 1},
    "features": {
      "description": "Numeric feature columns, in the model's feature order.",
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "minItems": 1,
      "uniqueItems": true
    },
    "dtype": {"description": "Element type of the input tensor.", "enum": ["f32", "f64"], "default": "f32"},
    "outputs": {
      "description": "Output tensors to turn into columns.",
      "type": "array",
      "minItems": 1,
      "items": {
        "type": "object",
        "properties": {
          "tensor": {"description": "Output tensor name.", "type": "string", "minLength": 1},
          "columns": {
            "description": "One column name per element of the last dimension ([N] or [N, 1]: one name); an empty name skips that element.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1
          },
          "as_type": {"description": "Column type; default f64 for float tensors, s64 for integer ones.", "enum": ["f64", "s64", "bool", "string"]},
          "classes": {"description": "Class names by index, for as_type = string.", "type": "array", "items": {"type": "string"}}
        },
        "required": ["tensor", "columns"],
        "additionalProperties": false
      }
    }
  },
  "required": ["model", "input", "features", "outputs"],
  "additionalProperties": false
}"#;
