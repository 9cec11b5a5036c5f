//! Open Inference Protocol v2 (KServe v2 / Triton HTTP) request decoding and
//! response encoding, including Triton's binary tensor data extension, to and
//! from Keel batches. Every decoding error names the JSON path it is about.

use keel_data::{Batch, Column, ColumnData, DataType};
use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;

/// Triton's binary extension: length of the JSON part of a body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// A 400-class error that says what is wrong and where (`inputs[1].data[3]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct OipError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> OipError {
    OipError {
        path: path.into(),
        message: message.into(),
    }
}

/// An output the request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    pub name: String,
    /// `parameters.binary_data`, if given.
    pub binary: Option<bool>,
}

/// A decoded request.
#[derive(Debug)]
pub struct Decoded {
    /// The request's `id`, if given and not empty.
    pub id: Option<String>,
    pub batch: Batch,
    pub outputs: Option<Vec<RequestedOutput>>,
    /// `parameters.binary_data_output`.
    pub binary_output: bool,
    pub parameters: Map<String, Value>,
}

/// An encoded response: `header_len` is set when a binary section follows
/// the JSON (the `Inference-Header-Content-Length` header).
#[derive(Debug)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub header_len: Option<usize>,
}

/// The OIP datatype of a Keel type.
pub fn datatype_name(t: DataType) -> &'static str {
    match t {
        DataType::F64 => "FP64",
        DataType::F32 => "FP32",
        DataType::S64 => "INT64",
        DataType::Bool => "BOOL",
        DataType::String => "BYTES",
    }
}

/// Model-metadata tensors: one per column, shape `[-1]`.
pub fn tensor_metadata(cols: &[(String, DataType)]) -> Vec<Value> {
    cols.iter()
        .map(|(name, t)| serde_json::json!({"name": name, "datatype": datatype_name(*t), "shape": [-1]}))
        .collect()
}

/// One element of a JSON `data` array, flattened.
#[derive(Debug, Clone, PartialEq)]
enum Elem {
    Null,
    Bool(bool),
    I(i64),
    U(u64),
    F(f64),
    S(String),
}

/// `data`, flattened row-major however deeply it is nested; decoded without
/// building a `serde_json::Value` tree (a big tensor is one Vec).
#[derive(Debug, Default)]
struct Flat(Vec<Elem>);

struct FlatSeed<'a>(&'a mut Vec<Elem>);

impl<'de> DeserializeSeed<'de> for FlatSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, boolean, string, null or an array of them")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Elem::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Elem::I(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(match i64::try_from(v) {
            Ok(i) => Elem::I(i),
            Err(_) => Elem::U(v),
        });
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Elem::F(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(Elem::S(v.to_owned()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(Elem::S(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Elem::Null);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.push(Elem::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(FlatSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Flat, D::Error> {
        let mut v = Vec::new();
        d.deserialize_seq(FlatSeed(&mut v))?;
        Ok(Flat(v))
    }
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<RawInput>,
    #[serde(default)]
    outputs: Option<Vec<RawOutput>>,
}

#[derive(Deserialize)]
struct RawInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Flat>,
}

#[derive(Deserialize)]
struct RawOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// OIP datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dt {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    Bytes,
}

const DATATYPES: &str =
    "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES";

impl Dt {
    fn parse(s: &str) -> Option<Dt> {
        Some(match s {
            "BOOL" => Dt::Bool,
            "UINT8" => Dt::U8,
            "UINT16" => Dt::U16,
            "UINT32" => Dt::U32,
            "UINT64" => Dt::U64,
            "INT8" => Dt::I8,
            "INT16" => Dt::I16,
            "INT32" => Dt::I32,
            "INT64" => Dt::I64,
            "FP16" => Dt::F16,
            "FP32" => Dt::F32,
            "FP64" => Dt::F64,
            "BYTES" => Dt::Bytes,
            _ => return None,
        })
    }
    fn width(self) -> Option<usize> {
        Some(match self {
            Dt::Bool | Dt::U8 | Dt::I8 => 1,
            Dt::U16 | Dt::I16 | Dt::F16 => 2,
            Dt::U32 | Dt::I32 | Dt::F32 => 4,
            Dt::U64 | Dt::I64 | Dt::F64 => 8,
            Dt::Bytes => return None,
        })
    }
    fn is_float(self) -> bool {
        matches!(self, Dt::F16 | Dt::F32 | Dt::F64)
    }
    fn is_int(self) -> bool {
        matches!(
            self,
            Dt::U8 | Dt::U16 | Dt::U32 | Dt::U64 | Dt::I8 | Dt::I16 | Dt::I32 | Dt::I64
        )
    }
}

/// A tensor's values, typed by its OIP datatype, with nulls.
enum Vals {
    F(Vec<f64>),
    I(Vec<i64>),
    U(Vec<u64>),
    B(Vec<bool>),
    S(Vec<String>),
}

/// IEEE 754 half → f32 (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m × 2^-24, exact in f32.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            v.to_bits() | sign
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13) | 1,
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Reads a binary tensor of `count` elements from `bytes`.
fn from_binary(
    dt: Dt,
    bytes: &[u8],
    count: usize,
    path: &str,
) -> Result<(Vals, Vec<bool>), OipError> {
    let valid = vec![true; count];
    if let Some(w) = dt.width()
        && bytes.len() != w * count
    {
        return Err(err(
            format!("{path}.parameters.binary_data_size"),
            format!(
                "{} bytes for {count} {dt:?} elements of {w} bytes (expected {})",
                bytes.len(),
                w * count
            ),
        ));
    }
    macro_rules! le {
        ($t:ty, $n:expr) => {
            bytes.chunks_exact($n).map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                <$t>::from_le_bytes(a)
            })
        };
    }
    let vals = match dt {
        Dt::Bool => Vals::B(bytes.iter().map(|b| *b != 0).collect()),
        Dt::U8 => Vals::I(bytes.iter().map(|b| i64::from(*b)).collect()),
        Dt::I8 => Vals::I(bytes.iter().map(|b| i64::from(*b as i8)).collect()),
        Dt::U16 => Vals::I(le!(u16, 2).map(i64::from).collect()),
        Dt::I16 => Vals::I(le!(i16, 2).map(i64::from).collect()),
        Dt::U32 => Vals::I(le!(u32, 4).map(i64::from).collect()),
        Dt::I32 => Vals::I(le!(i32, 4).map(i64::from).collect()),
        Dt::I64 => Vals::I(le!(i64, 8).collect()),
        Dt::U64 => Vals::U(le!(u64, 8).collect()),
        Dt::F16 => Vals::F(le!(u16, 2).map(|h| f64::from(f16_to_f32(h))).collect()),
        Dt::F32 => Vals::F(le!(f32, 4).map(f64::from).collect()),
        Dt::F64 => Vals::F(le!(f64, 8).collect()),
        Dt::Bytes => {
            let mut out = Vec::with_capacity(count);
            let mut at = 0usize;
            for i in 0..count {
                let Some(len) = bytes.get(at..at + 4) else {
                    return Err(err(
                        path,
                        format!("binary BYTES end before element {i} of {count}"),
                    ));
                };
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                at += 4;
                let Some(b) = bytes.get(at..at + len) else {
                    return Err(err(
                        path,
                        format!("binary BYTES element {i} claims {len} bytes past the end"),
                    ));
                };
                let s = std::str::from_utf8(b).map_err(|e| {
                    err(
                        format!("{path}.data[{i}]"),
                        format!("BYTES element is not UTF-8: {e}"),
                    )
                })?;
                out.push(s.to_owned());
                at += len;
            }
            if at != bytes.len() {
                return Err(err(
                    format!("{path}.parameters.binary_data_size"),
                    format!(
                        "{} bytes left over after {count} BYTES elements",
                        bytes.len() - at
                    ),
                ));
            }
            Vals::S(out)
        }
    };
    Ok((vals, valid))
}

/// Types JSON elements by the tensor's datatype.
fn from_json(dt: Dt, data: Vec<Elem>, path: &str) -> Result<(Vals, Vec<bool>), OipError> {
    let n = data.len();
    let mut valid = vec![true; n];
    let bad = |i: usize, e: &Elem| {
        err(
            format!("{path}.data[{i}]"),
            format!("{} is not a {dt:?} value", show(e)),
        )
    };
    let vals = if dt.is_float() {
        let mut v = Vec::with_capacity(n);
        for (i, e) in data.iter().enumerate() {
            v.push(match e {
                Elem::F(x) => *x,
                Elem::I(x) => *x as f64,
                Elem::U(x) => *x as f64,
                Elem::Null => {
                    valid[i] = false;
                    0.0
                }
                _ => return Err(bad(i, e)),
            });
        }
        Vals::F(v)
    } else if dt == Dt::U64 && data.iter().any(|e| matches!(e, Elem::U(_))) {
        let mut v = Vec::with_capacity(n);
        for (i, e) in data.iter().enumerate() {
            v.push(match e {
                Elem::I(x) if *x >= 0 => *x as u64,
                Elem::U(x) => *x,
                Elem::Null => {
                    valid[i] = false;
                    0
                }
                _ => return Err(bad(i, e)),
            });
        }
        Vals::U(v)
    } else if dt.is_int() {
        let mut v = Vec::with_capacity(n);
        for (i, e) in data.iter().enumerate() {
            v.push(match e {
                Elem::I(x) => *x,
                Elem::F(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => *x as i64,
                Elem::Null => {
                    valid[i] = false;
                    0
                }
                _ => return Err(bad(i, e)),
            });
        }
        Vals::I(v)
    } else if dt == Dt::Bool {
        let mut v = Vec::with_capacity(n);
        for (i, e) in data.iter().enumerate() {
            v.push(match e {
                Elem::Bool(b) => *b,
                Elem::I(0) => false,
                Elem::I(1) => true,
                Elem::Null => {
                    valid[i] = false;
                    false
                }
                _ => return Err(bad(i, e)),
            });
        }
        Vals::B(v)
    } else {
        let mut v = Vec::with_capacity(n);
        for (i, e) in data.into_iter().enumerate() {
            v.push(match e {
                Elem::S(s) => s,
                Elem::Null => {
                    valid[i] = false;
                    String::new()
                }
                e => return Err(bad(i, &e)),
            });
        }
        Vals::S(v)
    };
    Ok((vals, valid))
}

fn show(e: &Elem) -> String {
    match e {
        Elem::Null => "null".into(),
        Elem::Bool(b) => b.to_string(),
        Elem::I(x) => x.to_string(),
        Elem::U(x) => x.to_string(),
        Elem::F(x) => x.to_string(),
        Elem::S(s) => format!("{s:?}"),
    }
}

/// Converts one column's values to the Keel type it must have.
fn to_column(
    name: &str,
    vals: Vals,
    valid: Vec<bool>,
    want: Option<DataType>,
    path: &str,
    index_of: &dyn Fn(usize) -> usize,
) -> Result<Column, OipError> {
    let at = |i: usize| format!("{path}.data[{}]", index_of(i));
    let kind = |v: &Vals| match v {
        Vals::F(_) => "floating-point",
        Vals::I(_) | Vals::U(_) => "integer",
        Vals::B(_) => "BOOL",
        Vals::S(_) => "BYTES",
    };
    let want = want.unwrap_or(match &vals {
        Vals::F(_) => DataType::F64,
        Vals::I(_) | Vals::U(_) => DataType::S64,
        Vals::B(_) => DataType::Bool,
        Vals::S(_) => DataType::String,
    });
    let mismatch = |v: &Vals| {
        err(
            path,
            format!(
                "{} data for column `{name}`, which is {} (send {})",
                kind(v),
                want.as_str(),
                datatype_name(want)
            ),
        )
    };
    let data = match (want, vals) {
        (DataType::F64, Vals::F(v)) => ColumnData::F64(v),
        (DataType::F64, Vals::I(v)) => ColumnData::F64(v.into_iter().map(|x| x as f64).collect()),
        (DataType::F64, Vals::U(v)) => ColumnData::F64(v.into_iter().map(|x| x as f64).collect()),
        (DataType::F32, Vals::F(v)) => ColumnData::F32(v.into_iter().map(|x| x as f32).collect()),
        (DataType::F32, Vals::I(v)) => ColumnData::F32(v.into_iter().map(|x| x as f32).collect()),
        (DataType::F32, Vals::U(v)) => ColumnData::F32(v.into_iter().map(|x| x as f32).collect()),
        (DataType::S64, Vals::I(v)) => ColumnData::S64(v),
        (DataType::S64, Vals::U(v)) => {
            let mut out = Vec::with_capacity(v.len());
            for (i, x) in v.into_iter().enumerate() {
                out.push(i64::try_from(x).map_err(|_| {
                    err(
                        at(i),
                        format!("{x} is out of range for column `{name}` (s64)"),
                    )
                })?);
            }
            ColumnData::S64(out)
        }
        (DataType::S64, Vals::F(v)) => {
            let mut out = Vec::with_capacity(v.len());
            for (i, x) in v.into_iter().enumerate() {
                if !valid[i] {
                    out.push(0);
                } else if x.fract() == 0.0 && x.abs() < 9.2e18 {
                    out.push(x as i64);
                } else {
                    return Err(err(
                        at(i),
                        format!("{x} is not an integer (column `{name}` is s64)"),
                    ));
                }
            }
            ColumnData::S64(out)
        }
        (DataType::Bool, Vals::B(v)) => ColumnData::Bool(v),
        (DataType::Bool, Vals::I(v)) => {
            let mut out = Vec::with_capacity(v.len());
            for (i, x) in v.into_iter().enumerate() {
                out.push(match x {
                    0 => false,
                    1 => true,
                    _ if !valid[i] => false,
                    x => {
                        return Err(err(
                            at(i),
                            format!("{x} is not 0 or 1 (column `{name}` is bool)"),
                        ));
                    }
                });
            }
            ColumnData::Bool(out)
        }
        (DataType::String, Vals::S(v)) => ColumnData::String(v),
        (_, v) => return Err(mismatch(&v)),
    };
    Ok(Column::with_validity(name, data, valid))
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> OipError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let path = if path == "." { String::new() } else { path };
    err(path, inner.to_string())
}

/// Decodes a request. `inputs`: the columns the model takes, in order, with
/// their types (empty: unknown, type each column from its datatype).
/// Columns the request does not send are left out (a stage that needs one
/// says so); columns the model does not take are an error. `header_len`:
/// the `Inference-Header-Content-Length` header, when the body carries
/// binary tensors after its JSON.
pub fn decode_request(
    body: &[u8],
    header_len: Option<usize>,
    inputs: &[(String, DataType)],
) -> Result<Decoded, OipError> {
    let (json, mut binary) = split_body(body, header_len)?;
    let de = &mut serde_json::Deserializer::from_slice(json);
    let raw: RawRequest = serde_path_to_error::deserialize(de).map_err(json_error)?;
    if raw.inputs.is_empty() {
        return Err(err("inputs", "no input tensors"));
    }
    let mut columns: Vec<(usize, Column)> = Vec::new();
    let mut rows: Option<(usize, String)> = None;
    for (ti, t) in raw.inputs.into_iter().enumerate() {
        let path = format!("inputs[{ti}]");
        let tensor = decode_tensor(t, &path, body.len(), &mut binary)?;
        match &rows {
            Some((r, other)) if *r != tensor.n => {
                return Err(err(
                    format!("{path}.shape"),
                    format!("{} rows, but {other} has {r}", tensor.n),
                ));
            }
            None => rows = Some((tensor.n, format!("input `{}`", tensor.name))),
            _ => {}
        }
        place_columns(tensor, &path, inputs, &mut columns)?;
    }
    if !binary.is_empty() {
        return Err(err(
            "",
            format!(
                "{} bytes of the binary section are not claimed by any input",
                binary.len()
            ),
        ));
    }
    if !inputs.is_empty() {
        // The model's column order (stable: unknown-position ones cannot occur here).
        columns.sort_by_key(|(p, _)| *p);
    }
    let n = rows.map_or(0, |(n, _)| n);
    let batch = Batch::new(n, columns.into_iter().map(|(_, c)| c).collect())
        .map_err(|e| err("inputs", e.to_string()))?;
    let parameters = raw.parameters.unwrap_or_default();
    let binary_output = parameters
        .get("binary_data_output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Decoded {
        id: raw.id.filter(|s| !s.is_empty()),
        batch,
        outputs: raw.outputs.map(requested_outputs),
        binary_output,
        parameters,
    })
}

/// The JSON part of a body and the binary section after it.
fn split_body(body: &[u8], header_len: Option<usize>) -> Result<(&[u8], &[u8]), OipError> {
    match header_len {
        Some(n) if n > body.len() => Err(err(
            "",
            format!(
                "{HEADER_LENGTH} is {n} but the body has only {} bytes",
                body.len()
            ),
        )),
        Some(n) => Ok(body.split_at(n)),
        None => Ok((body, &[][..])),
    }
}

/// One input tensor decoded: `n` rows of `names.len()` columns, row-major.
struct Tensor {
    name: String,
    n: usize,
    c: usize,
    vals: Vals,
    valid: Vec<bool>,
    names: Vec<String>,
}

/// Decodes the tensor at `path`, taking its bytes off the front of `binary`
/// when it is sent in binary.
fn decode_tensor(
    t: RawInput,
    path: &str,
    body_len: usize,
    binary: &mut &[u8],
) -> Result<Tensor, OipError> {
    let dt = Dt::parse(&t.datatype).ok_or_else(|| {
        err(
            format!("{path}.datatype"),
            format!("unknown datatype `{}`; one of {DATATYPES}", t.datatype),
        )
    })?;
    let (n, c, count) = tensor_shape(&t.shape, path, body_len)?;
    let binary_size = t
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"))
        .map(|v| {
            v.as_u64().map(|x| x as usize).ok_or_else(|| {
                err(
                    format!("{path}.parameters.binary_data_size"),
                    "must be a byte count",
                )
            })
        })
        .transpose()?;
    let (vals, valid) = match (binary_size, t.data) {
        (Some(_), Some(_)) => {
            return Err(err(
                path,
                "has both `data` and `parameters.binary_data_size`",
            ));
        }
        (Some(size), None) => {
            if size > binary.len() {
                return Err(err(
                    format!("{path}.parameters.binary_data_size"),
                    format!(
                        "{size} bytes, but only {} remain in the binary section",
                        binary.len()
                    ),
                ));
            }
            let (mine, rest) = binary.split_at(size);
            *binary = rest;
            from_binary(dt, mine, count, path)?
        }
        (None, Some(data)) => {
            if data.0.len() != count {
                return Err(err(
                    format!("{path}.data"),
                    format!(
                        "{} elements, but shape {:?} holds {count}",
                        data.0.len(),
                        t.shape
                    ),
                ));
            }
            from_json(dt, data.0, path)?
        }
        (None, None) => {
            return Err(err(
                path,
                "has neither `data` nor `parameters.binary_data_size`",
            ));
        }
    };
    let names = column_names(&t.name, t.parameters.as_ref(), path, n, c)?;
    Ok(Tensor {
        name: t.name,
        n,
        c,
        vals,
        valid,
        names,
    })
}

/// Rows, columns and element count of a tensor's shape.
fn tensor_shape(
    shape: &[i64],
    path: &str,
    body_len: usize,
) -> Result<(usize, usize, usize), OipError> {
    if shape.iter().any(|d| *d < 0) {
        return Err(err(
            format!("{path}.shape"),
            format!("{shape:?}: dimensions must not be negative"),
        ));
    }
    let (n, c) = match shape {
        [n] => (*n as usize, 1),
        [n, c] => (*n as usize, *c as usize),
        s => {
            return Err(err(
                format!("{path}.shape"),
                format!("{s:?}: a tensor is one column [N] or [N, 1], or columns [N, C]"),
            ));
        }
    };
    if c == 0 {
        return Err(err(
            format!("{path}.shape"),
            format!("{shape:?}: a tensor needs at least one column"),
        ));
    }
    // Every element takes at least one byte of the body (JSON or binary),
    // so a shape holding more is refused before anything is allocated for it.
    match n.checked_mul(c) {
        Some(count) if count <= body_len => Ok((n, c, count)),
        _ => Err(err(
            format!("{path}.shape"),
            format!("{shape:?} holds more elements than a body of {body_len} bytes can carry"),
        )),
    }
}

/// Which columns a tensor holds: its own name, or `parameters.columns`
/// for a `[N, C]` tensor.
fn column_names(
    name: &str,
    parameters: Option<&Map<String, Value>>,
    path: &str,
    n: usize,
    c: usize,
) -> Result<Vec<String>, OipError> {
    if c == 1 {
        return Ok(vec![name.to_string()]);
    }
    let cols = parameters.and_then(|p| p.get("columns")).ok_or_else(|| {
        err(
            format!("{path}.parameters"),
            format!("a [{n}, {c}] tensor needs `columns`: the names of its {c} columns"),
        )
    })?;
    let cols: Vec<String> = cols
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if cols.len() != c {
        return Err(err(
            format!("{path}.parameters.columns"),
            format!("{} column names for {c} columns", cols.len()),
        ));
    }
    Ok(cols)
}

/// Splits a tensor into its columns and adds each to `columns` with its
/// position among the model's `inputs` (`usize::MAX` when they are unknown).
fn place_columns(
    tensor: Tensor,
    path: &str,
    inputs: &[(String, DataType)],
    columns: &mut Vec<(usize, Column)>,
) -> Result<(), OipError> {
    let Tensor {
        n,
        c,
        vals,
        valid,
        names,
        ..
    } = tensor;
    let split = split_columns(vals, valid, n, c);
    for (ci, (name, (v, ok))) in names.into_iter().zip(split).enumerate() {
        let want = if inputs.is_empty() {
            None
        } else {
            let pos = inputs.iter().position(|(n, _)| *n == name).ok_or_else(|| {
                let takes: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
                err(
                    if c == 1 {
                        format!("{path}.name")
                    } else {
                        format!("{path}.parameters.columns[{ci}]")
                    },
                    format!(
                        "unknown input `{name}`; the model takes {}",
                        takes.join(", ")
                    ),
                )
            })?;
            Some(pos)
        };
        if columns.iter().any(|(_, col)| col.name == name) {
            return Err(err(
                format!("{path}.name"),
                format!("input `{name}` is given twice"),
            ));
        }
        let index_of = move |i: usize| i * c + ci;
        let col = to_column(&name, v, ok, want.map(|p| inputs[p].1), path, &index_of)?;
        columns.push((want.unwrap_or(usize::MAX), col));
    }
    Ok(())
}

/// The outputs a request names, each with its `binary_data` choice.
fn requested_outputs(outputs: Vec<RawOutput>) -> Vec<RequestedOutput> {
    outputs
        .into_iter()
        .map(|o| RequestedOutput {
            binary: o
                .parameters
                .as_ref()
                .and_then(|p| p.get("binary_data"))
                .and_then(Value::as_bool),
            name: o.name,
        })
        .collect()
}

/// Splits row-major `[n, c]` values into `c` columns.
fn split_columns(vals: Vals, valid: Vec<bool>, n: usize, c: usize) -> Vec<(Vals, Vec<bool>)> {
    if c == 1 {
        return vec![(vals, valid)];
    }
    fn pick<T: Clone>(v: &[T], n: usize, c: usize, j: usize) -> Vec<T> {
        (0..n).map(|r| v[r * c + j].clone()).collect()
    }
    (0..c)
        .map(|j| {
            let ok = pick(&valid, n, c, j);
            let v = match &vals {
                Vals::F(v) => Vals::F(pick(v, n, c, j)),
                Vals::I(v) => Vals::I(pick(v, n, c, j)),
                Vals::U(v) => Vals::U(pick(v, n, c, j)),
                Vals::B(v) => Vals::B(pick(v, n, c, j)),
                Vals::S(v) => Vals::S(pick(v, n, c, j)),
            };
            (v, ok)
        })
        .collect()
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// JSON numbers cannot be NaN or infinite: those are sent as null.
fn write_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let mut b = ryu_like(x);
        out.append(&mut b);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn ryu_like(x: f64) -> Vec<u8> {
    // serde_json formats floats with the shortest round-trip representation.
    serde_json::to_vec(&x).unwrap_or_else(|_| b"null".to_vec())
}

/// Encodes a response with `batch`'s columns (or the requested ones).
pub fn encode_response(
    model_name: &str,
    model_version: &str,
    id: &str,
    batch: &Batch,
    requested: Option<&[RequestedOutput]>,
    binary_default: bool,
) -> Result<Encoded, OipError> {
    let selected: Vec<(&Column, bool)> = match requested {
        None => batch
            .columns()
            .iter()
            .map(|c| (c, binary_default))
            .collect(),
        Some(req) => {
            let mut v = Vec::with_capacity(req.len());
            for (i, r) in req.iter().enumerate() {
                let c = batch.column(&r.name).ok_or_else(|| {
                    let names: Vec<&str> =
                        batch.columns().iter().map(|c| c.name.as_str()).collect();
                    err(
                        format!("outputs[{i}].name"),
                        format!(
                            "no output `{}`; the outputs are {}",
                            r.name,
                            names.join(", ")
                        ),
                    )
                })?;
                v.push((c, r.binary.unwrap_or(binary_default)));
            }
            v
        }
    };
    let n = batch.rows();
    let mut out = Vec::with_capacity(128 + n * 16 * selected.len());
    let mut bin: Vec<u8> = Vec::new();
    out.extend_from_slice(b"{\"model_name\":");
    write_str(&mut out, model_name);
    out.extend_from_slice(b",\"model_version\":");
    write_str(&mut out, model_version);
    out.extend_from_slice(b",\"id\":");
    write_str(&mut out, id);
    out.extend_from_slice(b",\"outputs\":[");
    for (k, (c, binary)) in selected.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_str(&mut out, &c.name);
        let _ = write!(
            out,
            ",\"datatype\":\"{}\",\"shape\":[{n}]",
            datatype_name(c.data_type())
        );
        if *binary {
            let before = bin.len();
            binary_values(c, &mut bin)?;
            let _ = write!(
                out,
                ",\"parameters\":{{\"binary_data_size\":{}}}}}",
                bin.len() - before
            );
            continue;
        }
        out.extend_from_slice(b",\"data\":[");
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            if !c.is_valid(i) {
                out.extend_from_slice(b"null");
                continue;
            }
            match &c.data {
                ColumnData::F64(v) => write_f64(&mut out, v[i]),
                ColumnData::F32(v) => write_f64(&mut out, f64::from(v[i])),
                ColumnData::S64(v) => {
                    let _ = write!(out, "{}", v[i]);
                }
                ColumnData::Bool(v) => out.extend_from_slice(if v[i] { b"true" } else { b"false" }),
                ColumnData::String(v) => write_str(&mut out, &v[i]),
            }
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    if bin.is_empty() && !selected.iter().any(|(_, b)| *b) {
        return Ok(Encoded {
            body: out,
            header_len: None,
        });
    }
    let header_len = out.len();
    out.extend_from_slice(&bin);
    Ok(Encoded {
        body: out,
        header_len: Some(header_len),
    })
}

/// Appends a column's values in the binary layout. Binary tensors have no
/// nulls: a null float is sent as NaN; a null elsewhere is an error.
fn binary_values(c: &Column, out: &mut Vec<u8>) -> Result<(), OipError> {
    let null_error = || {
        err(
            "outputs",
            format!(
                "output `{}` has missing values, which binary tensors cannot carry; request it as JSON (binary_data: false)",
                c.name
            ),
        )
    };
    match &c.data {
        ColumnData::F64(v) => {
            for (i, x) in v.iter().enumerate() {
                let x = if c.is_valid(i) { *x } else { f64::NAN };
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        ColumnData::F32(v) => {
            for (i, x) in v.iter().enumerate() {
                let x = if c.is_valid(i) { *x } else { f32::NAN };
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        ColumnData::S64(v) => {
            if c.null_count() > 0 {
                return Err(null_error());
            }
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        ColumnData::Bool(v) => {
            if c.null_count() > 0 {
                return Err(null_error());
            }
            out.extend(v.iter().map(|b| u8::from(*b)));
        }
        ColumnData::String(v) => {
            if c.null_count() > 0 {
                return Err(null_error());
            }
            for s in v {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<(String, DataType)> {
        vec![
            ("x".into(), DataType::F64),
            ("n".into(), DataType::S64),
            ("s".into(), DataType::String),
            ("b".into(), DataType::Bool),
        ]
    }

    fn decode(v: Value, inputs: &[(String, DataType)]) -> Result<Decoded, OipError> {
        decode_request(&serde_json::to_vec(&v).unwrap(), None, inputs)
    }

    #[test]
    fn flat_nested_and_typed_per_schema() {
        let d = decode(
            json!({"id": "r1", "inputs": [
                {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["é", null]},
                {"name": "x", "datatype": "INT32", "shape": [2, 1], "data": [[1], [2]]},
                {"name": "n", "datatype": "FP64", "shape": [2], "data": [3.0, -4]},
                {"name": "b", "datatype": "BOOL", "shape": [2], "data": [true, 0]},
            ]}),
            &schema(),
        )
        .unwrap();
        assert_eq!(d.id.as_deref(), Some("r1"));
        let b = &d.batch;
        assert_eq!(b.rows(), 2);
        let names: Vec<&str> = b.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["x", "n", "s", "b"], "schema order");
        assert_eq!(b.column("x").unwrap().data, ColumnData::F64(vec![1.0, 2.0]));
        assert_eq!(b.column("n").unwrap().data, ColumnData::S64(vec![3, -4]));
        assert_eq!(b.column("s").unwrap().value(0), keel_data::Value::Str("é"));
        assert!(!b.column("s").unwrap().is_valid(1));
        assert_eq!(
            b.column("b").unwrap().data,
            ColumnData::Bool(vec![true, false])
        );
    }

    #[test]
    fn errors_name_their_place() {
        let e = decode(
            json!({"inputs": [{"name": "n", "datatype": "FP64", "shape": [2], "data": [1.0, 2.5]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].data[1]");
        assert!(e.message.contains("2.5 is not an integer"), "{e}");
        let e = decode(
            json!({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0]");
        assert!(
            e.message.contains("column `x`") && e.message.contains("FP64"),
            "{e}"
        );
        let e = decode(
            json!({"inputs": [{"name": "q", "datatype": "FP64", "shape": [1], "data": [1]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].name");
        assert!(e.message.contains("unknown input `q`") && e.message.contains("x, n, s, b"));
        let e = decode(
            json!({"inputs": [{"name": "x", "datatype": "FP65", "shape": [1], "data": [1]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].datatype");
        let e = decode(
            json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [1, 2]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].data");
        assert!(
            e.message.contains("2 elements") && e.message.contains("3"),
            "{e}"
        );
        let e = decode(
            json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": ["2"], "data": [1, 2]}]}),
            &schema(),
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].shape[0]");
        let e = decode(
            json!({"inputs": [
                {"name": "x", "datatype": "FP64", "shape": [2], "data": [1, 2]},
                {"name": "n", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]}]}),
            &schema(),
        )
        .unwrap_err();
        assert!(e.message.contains("3 rows, but input `x` has 2"), "{e}");
        let e = decode_request(b"{\"inputs\": [", None, &schema()).unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
        let e = decode(json!({"inputs": []}), &schema()).unwrap_err();
        assert_eq!(e.path, "inputs");
        let e = decode(
            json!({"inputs": [{"name": "n", "datatype": "UINT64", "shape": [1], "data": [18446744073709551615u64]}]}),
            &schema(),
        )
        .unwrap_err();
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn two_d_tensors_need_column_names() {
        let d = decode(
            json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 2],
                "parameters": {"columns": ["x", "n"]}, "data": [[1.5, 2], [3.5, 4]]}]}),
            &schema(),
        )
        .unwrap();
        assert_eq!(
            d.batch.column("x").unwrap().data,
            ColumnData::F64(vec![1.5, 3.5])
        );
        assert_eq!(
            d.batch.column("n").unwrap().data,
            ColumnData::S64(vec![2, 4])
        );
        let e = decode(
            json!({"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}),
            &schema(),
        )
        .unwrap_err();
        assert!(e.message.contains("needs `columns`"), "{e}");
        let e = decode(
            json!({"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2, 1], "data": [1, 2]}]}),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "inputs[0].shape");
    }

    #[test]
    fn without_a_schema_types_come_from_datatypes_and_empty_batches_work() {
        let d = decode(
            json!({"inputs": [
                {"name": "a", "datatype": "FP32", "shape": [0], "data": []},
                {"name": "b", "datatype": "UINT8", "shape": [0], "data": []}]}),
            &[],
        )
        .unwrap();
        assert_eq!(d.batch.rows(), 0);
        assert_eq!(d.batch.column("a").unwrap().data_type(), DataType::F64);
        assert_eq!(d.batch.column("b").unwrap().data_type(), DataType::S64);
    }

    /// A body the way tritonclient builds it: JSON header, then the tensors.
    fn binary_body(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> (Vec<u8>, usize) {
        let inputs: Vec<Value> = tensors
            .iter()
            .map(|(n, dt, shape, bytes)| {
                json!({"name": n, "datatype": dt, "shape": shape,
                    "parameters": {"binary_data_size": bytes.len()}})
            })
            .collect();
        let mut body = serde_json::to_vec(&json!({"inputs": inputs,
            "parameters": {"binary_data_output": true}}))
        .unwrap();
        let n = body.len();
        for (_, _, _, b) in tensors {
            body.extend_from_slice(b);
        }
        (body, n)
    }

    #[test]
    fn binary_inputs_of_every_width() {
        let f64s: Vec<u8> = [1.25f64, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f32s: Vec<u8> = [0.5f32, 8.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let f16s: Vec<u8> = [0x3c00u16, 0xc000]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let i16s: Vec<u8> = [-3i16, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        let u32s: Vec<u8> = [4u32, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bools = vec![1u8, 0];
        let mut bytes = Vec::new();
        for s in ["ab", "ünï"] {
            bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
        let (body, n) = binary_body(&[
            ("a", "FP64", vec![2], f64s),
            ("b", "FP32", vec![2, 1], f32s),
            ("c", "FP16", vec![2], f16s),
            ("d", "INT16", vec![2], i16s),
            ("e", "UINT32", vec![2], u32s),
            ("f", "BOOL", vec![2], bools),
            ("g", "BYTES", vec![2], bytes),
        ]);
        let d = decode_request(&body, Some(n), &[]).unwrap();
        let b = &d.batch;
        assert!(d.binary_output);
        assert_eq!(
            b.column("a").unwrap().data,
            ColumnData::F64(vec![1.25, -2.0])
        );
        assert_eq!(b.column("b").unwrap().data, ColumnData::F64(vec![0.5, 8.0]));
        assert_eq!(
            b.column("c").unwrap().data,
            ColumnData::F64(vec![1.0, -2.0])
        );
        assert_eq!(b.column("d").unwrap().data, ColumnData::S64(vec![-3, 7]));
        assert_eq!(b.column("e").unwrap().data, ColumnData::S64(vec![4, 9]));
        assert_eq!(
            b.column("f").unwrap().data,
            ColumnData::Bool(vec![true, false])
        );
        assert_eq!(
            b.column("g").unwrap().data,
            ColumnData::String(vec!["ab".into(), "ünï".into()])
        );
        // Sizes that disagree with the shape, and bytes left over.
        let (body, n) = binary_body(&[("a", "FP64", vec![3], vec![0; 16])]);
        let e = decode_request(&body, Some(n), &[]).unwrap_err();
        assert_eq!(e.path, "inputs[0].parameters.binary_data_size");
        let (mut body, n) = binary_body(&[("a", "FP64", vec![1], vec![0; 8])]);
        body.push(1);
        assert!(decode_request(&body, Some(n), &[]).is_err());
        assert!(decode_request(&body, Some(body.len() + 1), &[]).is_err());
        let (body, n) = binary_body(&[("g", "BYTES", vec![1], vec![1, 0, 0, 0, 0xff])]);
        let e = decode_request(&body, Some(n), &[]).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn half_precision_edge_cases() {
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    fn out_batch() -> Batch {
        Batch::from_columns(vec![
            Column::with_validity(
                "p",
                ColumnData::F64(vec![0.25, f64::NAN, 1.0]),
                vec![true, true, false],
            ),
            Column::new("label", ColumnData::Bool(vec![true, false, true])),
            Column::new(
                "name",
                ColumnData::String(vec!["a".into(), "ß".into(), "".into()]),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn json_responses_with_nan_and_nulls_as_null() {
        let e = encode_response("m", "1", "id-1", &out_batch(), None, false).unwrap();
        assert_eq!(e.header_len, None);
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["model_name"], "m");
        assert_eq!(v["id"], "id-1");
        assert_eq!(v["outputs"][0]["data"], json!([0.25, null, null]));
        assert_eq!(v["outputs"][0]["datatype"], "FP64");
        assert_eq!(v["outputs"][0]["shape"], json!([3]));
        assert_eq!(v["outputs"][1]["data"], json!([true, false, true]));
        assert_eq!(v["outputs"][2]["data"], json!(["a", "ß", ""]));
        let req = [RequestedOutput {
            name: "nope".into(),
            binary: None,
        }];
        let e = encode_response("m", "1", "i", &out_batch(), Some(&req), false).unwrap_err();
        assert_eq!(e.path, "outputs[0].name");
        assert!(e.message.contains("p, label, name"));
    }

    #[test]
    fn binary_responses_follow_the_json() {
        let req = [
            RequestedOutput {
                name: "label".into(),
                binary: Some(true),
            },
            RequestedOutput {
                name: "p".into(),
                binary: None,
            },
            RequestedOutput {
                name: "name".into(),
                binary: Some(false),
            },
        ];
        let e = encode_response("m", "1", "i", &out_batch(), Some(&req), true).unwrap();
        let n = e.header_len.unwrap();
        let v: Value = serde_json::from_slice(&e.body[..n]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 3);
        assert_eq!(v["outputs"][1]["parameters"]["binary_data_size"], 24);
        assert_eq!(v["outputs"][2]["data"], json!(["a", "ß", ""]));
        let bin = &e.body[n..];
        assert_eq!(&bin[..3], &[1, 0, 1]);
        let p: Vec<f64> = bin[3..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(p[0], 0.25);
        assert!(p[1].is_nan() && p[2].is_nan());
        // A null in a binary bool/string output cannot be sent.
        let b = Batch::from_columns(vec![Column::from_opt_str("s", &[Some("a"), None])]).unwrap();
        assert!(encode_response("m", "1", "i", &b, None, true).is_err());
    }

    #[test]
    fn a_large_tensor_decodes() {
        let data: Vec<f64> = (0..100_000).map(|i| i as f64 * 0.5).collect();
        let d = decode(
            json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [100_000], "data": data}]}),
            &[],
        )
        .unwrap();
        assert_eq!(d.batch.rows(), 100_000);
    }
}
