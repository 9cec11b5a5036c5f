//! ONNX graphs for model plugins behind the standard `wasi:nn` interface:
//! a pure-Rust backend on `tract-onnx` (no C++ runtime to download, so the
//! edge build keeps working), models parsed and optimised once per digest and
//! shared (`Arc`) by every instance, and a per-instance registry holding only
//! the graphs its stage names. Guests reach them through `load-by-name`;
//! `load` of raw bytes finds no backend and fails, so a plugin never brings
//! or reads a model of its own.
//!
//! Without the `nn` feature (the edge build) there is no tract and no wasi:nn:
//! loading a model fails with [`ModelError::Disabled`], which says so.

use std::sync::Arc;
#[cfg(feature = "nn")]
pub(crate) use tract_backend::StageGraphs;
#[cfg(feature = "nn")]
pub use tract_backend::type_name;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{source_name}: not an ONNX model: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: tract cannot run this ONNX graph: {message}")]
    Unsupported {
        source_name: String,
        message: String,
    },
    /// This build has no `nn` feature (the edge build): no tract, no wasi:nn.
    #[error(
        "{source_name}: this keel was built without the `nn` feature: models cannot be served; rebuild with --features nn"
    )]
    Disabled { source_name: String },
}

/// One tensor of a model's signature, as `keel model inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    pub name: String,
    /// Element type in wasi:nn's spelling (`FP32`, `I64`, …), or tract's when
    /// wasi:nn has none.
    pub datum_type: String,
    /// Dimensions; a free dimension (the batch) is a symbol such as `N`.
    pub shape: Vec<String>,
}

/// What a model file declares and what tract made of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    pub size_bytes: usize,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// `(domain, version)` per imported operator set; `ai.onnx` for the default domain.
    pub opsets: Vec<(String, i64)>,
    pub ir_version: i64,
    pub producer: String,
    pub doc: String,
    /// Operator types in the graph, with counts, sorted.
    pub operators: Vec<(String, usize)>,
}

/// A parsed, optimised model ready to run; shared by every instance.
pub struct Model {
    info: ModelInfo,
    #[cfg(feature = "nn")]
    plan: Arc<tract_onnx::prelude::TypedRunnableModel>,
    #[cfg(feature = "nn")]
    graph: wasmtime_wasi_nn::Graph,
}

impl Model {
    /// Signature and provenance.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// `sha256:<hex>` of the model file.
    pub fn digest(&self) -> &str {
        &self.info.digest
    }
}

#[cfg(not(feature = "nn"))]
impl Model {
    /// Refuses: this build has no ONNX backend.
    pub fn load(_bytes: &[u8], source_name: &str) -> Result<Arc<Model>, ModelError> {
        Err(ModelError::Disabled {
            source_name: source_name.to_string(),
        })
    }
}

/// A model a stage may load, under the name its plugin passes to `load-by-name`.
#[derive(Clone)]
pub struct StageModel {
    /// The name the guest uses (the model's name without its version, or the
    /// file stem of a path).
    pub name: String,
    /// `name@version` in the store, or the path it was read from.
    pub reference: String,
    /// The stored version, when it came from the store.
    pub version: Option<String>,
    pub model: Arc<Model>,
}

/// The tract backend behind wasi:nn (the `nn` feature).
#[cfg(feature = "nn")]
mod tract_backend {
    use super::{Model, ModelError, ModelInfo, StageModel, TensorInfo};
    use std::collections::HashMap;
    use std::sync::Arc;
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::Factoid;
    use wasmtime_wasi_nn::backend::{
        BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor,
    };
    use wasmtime_wasi_nn::wit::TensorType;
    use wasmtime_wasi_nn::{ExecutionContext, Graph, GraphRegistry};

    impl Model {
        /// Parses and optimises an ONNX model; `source_name` names it in errors.
        pub fn load(bytes: &[u8], source_name: &str) -> Result<Arc<Model>, ModelError> {
            use sha2::Digest as _;
            let parse = |message: String| ModelError::Parse {
                source_name: source_name.to_string(),
                message,
            };
            let unsupported = |e: TractError| ModelError::Unsupported {
                source_name: source_name.to_string(),
                message: format!("{e:#}"),
            };
            let onnx = tract_onnx::onnx();
            let proto = onnx
                .proto_model_for_read(&mut std::io::Cursor::new(bytes))
                .map_err(|e| parse(format!("{e:#}")))?;
            let graph = proto
                .graph
                .as_ref()
                .ok_or_else(|| parse("the model has no graph".into()))?;
            let (input_names, output_names) = tensor_names(graph);
            let mut model = onnx
                .model_for_proto_model(&proto)
                .map_err(|e| parse(format!("{e:#}")))?;
            name_free_dimensions(&mut model).map_err(unsupported)?;
            let typed = model.into_optimized().map_err(unsupported)?;
            let describe = |names: &[String], facts: Vec<TypedFact>| -> Vec<TensorInfo> {
                facts
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| TensorInfo {
                        name: names.get(i).cloned().unwrap_or_else(|| format!("#{i}")),
                        datum_type: tensor_type_of(f.datum_type)
                            .map(type_name)
                            .unwrap_or_else(|| format!("{:?}", f.datum_type)),
                        shape: f.shape.iter().map(|d| d.to_string()).collect(),
                    })
                    .collect()
            };
            let in_facts = (0..typed.inputs.len())
                .map(|i| typed.input_fact(i).cloned())
                .collect::<TractResult<Vec<_>>>()
                .map_err(unsupported)?;
            let out_facts = (0..typed.outputs.len())
                .map(|i| typed.output_fact(i).cloned())
                .collect::<TractResult<Vec<_>>>()
                .map_err(unsupported)?;
            let info = ModelInfo {
                digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))),
                size_bytes: bytes.len(),
                inputs: describe(&input_names, in_facts),
                outputs: describe(&output_names, out_facts),
                opsets: opsets(&proto),
                ir_version: proto.ir_version,
                producer: format!("{} {}", proto.producer_name, proto.producer_version)
                    .trim()
                    .to_string(),
                doc: proto.doc_string.clone(),
                operators: operators(graph),
            };
            let plan = typed.into_runnable().map_err(unsupported)?;
            let graph = Graph::from(Box::new(TractGraph {
                plan: plan.clone(),
                inputs: info.inputs.clone(),
                outputs: info.outputs.clone(),
            }) as Box<dyn BackendGraph>);
            Ok(Arc::new(Model { info, plan, graph }))
        }

        /// Runs the graph natively (no wasm): what the benchmark compares against.
        pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Arc<Tensor>>, String> {
            let out = self
                .plan
                .run(inputs.into_iter().map(TValue::from).collect())
                .map_err(|e| format!("{e:#}"))?;
            Ok(out.into_iter().map(|v| v.into_arc_tensor()).collect())
        }
    }

    /// The graph's input names (initializers, which ONNX also lists as
    /// inputs, left out) and output names.
    fn tensor_names(graph: &tract_onnx::pb::GraphProto) -> (Vec<String>, Vec<String>) {
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .map(|i| i.name.clone())
            .collect();
        let outputs = graph.output.iter().map(|o| o.name.clone()).collect();
        (inputs, outputs)
    }

    /// Operator types in the graph, with counts, sorted.
    fn operators(graph: &tract_onnx::pb::GraphProto) -> Vec<(String, usize)> {
        let mut operators: HashMap<String, usize> = HashMap::new();
        for n in &graph.node {
            *operators.entry(n.op_type.clone()).or_default() += 1;
        }
        let mut operators: Vec<(String, usize)> = operators.into_iter().collect();
        operators.sort();
        operators
    }

    /// The operator sets imported, `ai.onnx` for the default domain.
    fn opsets(proto: &tract_onnx::pb::ModelProto) -> Vec<(String, i64)> {
        proto
            .opset_import
            .iter()
            .map(|o| {
                let domain = if o.domain.is_empty() {
                    "ai.onnx".to_string()
                } else {
                    o.domain.clone()
                };
                (domain, o.version)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Exporters leave the batch dimension unnamed (skl2onnx's `None`);
    /// tract needs a symbol to optimise for any batch size, so each free
    /// dimension of an input gets one (`N`, `N2`, ...).
    fn name_free_dimensions(model: &mut InferenceModel) -> TractResult<()> {
        for ix in 0..model.inputs.len() {
            let fact = model.input_fact(ix)?.clone();
            let dims: Vec<Option<TDim>> = fact.shape.dims().map(|d| d.concretize()).collect();
            if fact.shape.is_open() || dims.iter().all(Option::is_some) {
                continue;
            }
            let mut free = 0;
            let dims: Vec<TDim> = dims
                .into_iter()
                .map(|d| {
                    d.unwrap_or_else(|| {
                        free += 1;
                        let s = if free == 1 {
                            "N".to_string()
                        } else {
                            format!("N{free}")
                        };
                        model.sym(&s).to_dim()
                    })
                })
                .collect();
            let new = match fact.datum_type.concretize() {
                Some(dt) => InferenceFact::dt_shape(dt, dims),
                None => InferenceFact::shape(dims),
            };
            model.set_input_fact(ix, new)?;
        }
        Ok(())
    }

    /// The graphs one instance may load: clones of shared `Arc`s, so an instance
    /// costs no parsing or optimisation.
    pub(crate) struct StageGraphs(HashMap<String, Graph>);

    impl StageGraphs {
        pub(crate) fn new(models: &[StageModel]) -> StageGraphs {
            StageGraphs(
                models
                    .iter()
                    .map(|m| (m.name.clone(), m.model.graph.clone()))
                    .collect(),
            )
        }
    }

    impl GraphRegistry for StageGraphs {
        fn get(&self, name: &str) -> Option<&Graph> {
            self.0.get(name)
        }
        fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
            self.0.get_mut(name)
        }
    }

    struct TractGraph {
        plan: Arc<tract_onnx::prelude::TypedRunnableModel>,
        inputs: Vec<TensorInfo>,
        outputs: Vec<TensorInfo>,
    }

    impl BackendGraph for TractGraph {
        fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
            Ok(ExecutionContext::from(Box::new(TractContext {
                plan: self.plan.clone(),
                input_names: self.inputs.iter().map(|t| t.name.clone()).collect(),
                output_names: self.outputs.iter().map(|t| t.name.clone()).collect(),
                inputs: vec![None; self.inputs.len()],
                outputs: Vec::new(),
            })
                as Box<dyn BackendExecutionContext>))
        }
    }

    struct TractContext {
        plan: Arc<tract_onnx::prelude::TypedRunnableModel>,
        input_names: Vec<String>,
        output_names: Vec<String>,
        inputs: Vec<Option<Tensor>>,
        outputs: Vec<Arc<Tensor>>,
    }

    fn backend_err(message: String) -> BackendError {
        BackendError::BackendAccess(wasmtime::format_err!("{message}"))
    }

    impl TractContext {
        fn index(&self, id: &Id, names: &[String], what: &str) -> Result<usize, BackendError> {
            let found = match id {
                Id::Index(i) => Some(*i as usize).filter(|i| *i < names.len()),
                Id::Name(n) => names.iter().position(|x| x == n),
            };
            found.ok_or_else(|| {
                backend_err(format!(
                    "no {what} {id:?}; the graph's {what}s are: {}",
                    names.join(", ")
                ))
            })
        }

        fn run(&mut self) -> Result<(), BackendError> {
            let mut values = TVec::new();
            for (i, t) in self.inputs.iter_mut().enumerate() {
                let t = t.take().ok_or_else(|| {
                    backend_err(format!("input `{}` was not set", self.input_names[i]))
                })?;
                values.push(TValue::from(t));
            }
            let out = self
                .plan
                .run(values)
                .map_err(|e| backend_err(format!("{e:#}")))?;
            self.outputs = out.into_iter().map(|v| v.into_arc_tensor()).collect();
            Ok(())
        }
    }

    impl BackendExecutionContext for TractContext {
        fn set_input(
            &mut self,
            id: Id,
            tensor: &wasmtime_wasi_nn::Tensor,
        ) -> Result<(), BackendError> {
            let i = self.index(&id, &self.input_names, "input")?;
            self.inputs[i] = Some(to_tract(tensor).map_err(backend_err)?);
            Ok(())
        }

        fn get_output(&mut self, id: Id) -> Result<wasmtime_wasi_nn::Tensor, BackendError> {
            let i = self.index(&id, &self.output_names, "output")?;
            let t = self
                .outputs
                .get(i)
                .ok_or_else(|| backend_err("get-output before compute".into()))?;
            from_tract(t).map_err(backend_err)
        }

        fn compute(
            &mut self,
            inputs: Option<Vec<NamedTensor>>,
        ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
            let Some(inputs) = inputs else {
                self.run()?;
                return Ok(None);
            };
            for n in inputs {
                let i = self.index(&Id::Name(n.name.clone()), &self.input_names, "input")?;
                self.inputs[i] = Some(to_tract(&n.tensor).map_err(backend_err)?);
            }
            self.run()?;
            let mut named = Vec::with_capacity(self.outputs.len());
            for (name, t) in self.output_names.iter().zip(&self.outputs) {
                named.push(NamedTensor {
                    name: name.clone(),
                    tensor: from_tract(t).map_err(backend_err)?,
                });
            }
            Ok(Some(named))
        }
    }

    fn tensor_type_of(dt: DatumType) -> Option<TensorType> {
        Some(match dt {
            DatumType::F16 => TensorType::Fp16,
            DatumType::F32 => TensorType::Fp32,
            DatumType::F64 => TensorType::Fp64,
            DatumType::U8 => TensorType::U8,
            DatumType::I32 => TensorType::I32,
            DatumType::I64 => TensorType::I64,
            _ => return None,
        })
    }

    /// wasi:nn's spelling of a tensor type.
    pub fn type_name(t: TensorType) -> String {
        match t {
            TensorType::Fp16 => "FP16",
            TensorType::Fp32 => "FP32",
            TensorType::Fp64 => "FP64",
            TensorType::Bf16 => "BF16",
            TensorType::U8 => "U8",
            TensorType::I32 => "I32",
            TensorType::I64 => "I64",
        }
        .to_string()
    }

    fn decode<T: Datum + Copy, const W: usize>(
        shape: &[usize],
        data: &[u8],
        f: fn([u8; W]) -> T,
    ) -> Result<Tensor, String> {
        let values: Vec<T> = data
            .chunks_exact(W)
            .map(|c| {
                let mut b = [0u8; W];
                b.copy_from_slice(c);
                f(b)
            })
            .collect();
        Tensor::from_shape(shape, &values).map_err(|e| format!("{e:#}"))
    }

    /// A guest tensor (little-endian bytes) as a tract tensor; checks the byte
    /// count against the dimensions so a short buffer is an error, not garbage.
    fn to_tract(t: &wasmtime_wasi_nn::Tensor) -> Result<Tensor, String> {
        let shape: Vec<usize> = t.dimensions.iter().map(|d| *d as usize).collect();
        let count = shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or("tensor dimensions overflow")?;
        let width = match t.ty {
            TensorType::Fp16 | TensorType::Bf16 => 2,
            TensorType::Fp32 | TensorType::I32 => 4,
            TensorType::Fp64 | TensorType::I64 => 8,
            TensorType::U8 => 1,
        };
        if count.checked_mul(width) != Some(t.data.len()) {
            return Err(format!(
                "tensor {:?} of {} needs {} bytes, got {}",
                t.dimensions,
                type_name(t.ty),
                count.saturating_mul(width),
                t.data.len()
            ));
        }
        match t.ty {
            TensorType::Fp32 => decode(&shape, &t.data, f32::from_le_bytes),
            TensorType::Fp64 => decode(&shape, &t.data, f64::from_le_bytes),
            TensorType::I32 => decode(&shape, &t.data, i32::from_le_bytes),
            TensorType::I64 => decode(&shape, &t.data, i64::from_le_bytes),
            TensorType::U8 => decode(&shape, &t.data, u8::from_le_bytes),
            TensorType::Fp16 => decode(&shape, &t.data, tract_onnx::prelude::f16::from_le_bytes),
            TensorType::Bf16 => Err("BF16 tensors are not supported by the tract backend".into()),
        }
    }

    fn encode<T: Datum + Copy, const W: usize>(
        t: &Tensor,
        f: fn(T) -> [u8; W],
    ) -> Result<Vec<u8>, String> {
        let view = t.try_as_plain_ram().map_err(|e| format!("{e:#}"))?;
        let values = view.as_slice::<T>().map_err(|e| format!("{e:#}"))?;
        let mut out = Vec::with_capacity(values.len() * W);
        for v in values {
            out.extend_from_slice(&f(*v));
        }
        Ok(out)
    }

    /// A tract tensor as a guest tensor.
    fn from_tract(t: &Tensor) -> Result<wasmtime_wasi_nn::Tensor, String> {
        let ty = tensor_type_of(t.datum_type()).ok_or_else(|| {
            format!(
                "output of type {:?} has no wasi:nn tensor type",
                t.datum_type()
            )
        })?;
        let data = match ty {
            TensorType::Fp32 => encode(t, f32::to_le_bytes)?,
            TensorType::Fp64 => encode(t, f64::to_le_bytes)?,
            TensorType::I32 => encode(t, i32::to_le_bytes)?,
            TensorType::I64 => encode(t, i64::to_le_bytes)?,
            TensorType::U8 => encode(t, u8::to_le_bytes)?,
            TensorType::Fp16 => encode(t, tract_onnx::prelude::f16::to_le_bytes)?,
            TensorType::Bf16 => return Err("BF16 output".into()),
        };
        let dimensions = t
            .shape()
            .iter()
            .map(|d| u32::try_from(*d).map_err(|_| format!("dimension {d} does not fit a u32")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(wasmtime_wasi_nn::Tensor::new(dimensions, ty, data))
    }
}
