//! `keel profile DATA`: infers a data-quality schema (types, ranges, null
//! rates, category domains) from a data file and prints it as TOML or JSON,
//! ready to be the `data-quality` validator's config.
//!
//! The file is read twice, batch by batch, so its size is not bounded by
//! memory: the first pass fixes each column's type exactly as `keel run` types
//! a reference file read whole (CSV: the narrowest of bool, s64, f64, string
//! that every cell fits; JSON Lines: the JSON types, widened), the second
//! pass reads with those types and feeds a [`Profiler`], which keeps counts,
//! extremes and bounded sets of distinct values only.

use crate::exit::{self, Failure, fail};
use anyhow::{Context, anyhow};
use keel_algos::quality::{InferOptions, Profiler, Schema};
use keel_data::io::{self, Field, Format, Schema as Fields, json_schema, json_type, widen};
use keel_data::{ColumnData, DataType};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Rows per batch while streaming; bounds memory, not results.
const BATCH_ROWS: usize = 8192;

/// Arguments of `keel profile`.
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// The data to profile, usually a pipeline's reference: .csv, .jsonl or .ndjson.
    data: std::path::PathBuf,
    /// String and bool columns with more distinct values than this get no domain.
    #[arg(long, default_value_t = 100)]
    max_domain: usize,
    /// Output format: TOML (with a header comment) or JSON.
    #[arg(long, value_enum, default_value_t = OutputFormat::Toml)]
    format: OutputFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Toml,
    Json,
}

impl ProfileArgs {
    /// Profiles the file and prints the schema on stdout.
    pub fn run(self) -> Result<(), Failure> {
        let path = self.data.as_path();
        let options = InferOptions {
            max_domain_size: self.max_domain,
            ..InferOptions::default()
        };
        let (schema, rows) = profile(path, options)?;
        let text = match self.format {
            OutputFormat::Json => serde_json::to_string_pretty(&schema)? + "\n",
            OutputFormat::Toml => {
                let body = toml::to_string(&schema).context("writing the schema as TOML")?;
                format!("{}\n{body}", header(path, rows, schema.columns.len()))
            }
        };
        out!("{text}");
        Ok(())
    }
}

/// Infers the schema of the file at `path`; also returns its row count.
fn profile(path: &Path, options: InferOptions) -> Result<(Schema, usize), Failure> {
    let bad = exit::read_failure;
    let format = Format::from_path(path).map_err(|e| fail(exit::USAGE, e))?;
    // Text formats are typed by a first pass; a format that stores its types
    // (Parquet, when the reader has it) is read as it is.
    let fields = if format == Format::Csv {
        Some(csv_types(path)?)
    } else if format == Format::JsonLines {
        Some(jsonl_types(path)?)
    } else {
        None
    };
    let mut source = io::open(path, fields.as_ref(), BATCH_ROWS).map_err(bad)?;
    let mut profiler = Profiler::new(options);
    while let Some(b) = source.next_batch().map_err(bad)? {
        profiler.observe(&b.batch).map_err(|e| {
            fail(
                exit::BAD_DATA,
                anyhow!("{}: line {}: {e}", path.display(), b.lines[0]),
            )
        })?;
    }
    let rows = profiler.rows();
    if rows == 0 {
        return Err(fail(
            exit::BAD_DATA,
            anyhow!("{}: no data rows to profile", path.display()),
        ));
    }
    Ok((profiler.finish(), rows))
}

fn header(path: &Path, rows: usize, columns: usize) -> String {
    format!(
        "# Data-quality schema of {} ({rows} rows, {columns} columns), written by `keel profile`.\n\
         # It is the config of the `data-quality` validator: point a validator at this file\n\
         # (config_file = \"schema.toml\"), or paste it under [validators.config] writing each\n\
         # [[columns]] as [[validators.config.columns]]. Review it: every bound is only what\n\
         # the data showed. Keys: name, type, required, null_rate, max_null_rate (0: no null\n\
         # allowed), min, max, range_slack, domain, min_domain_share.\n",
        path.display()
    )
}

/// CSV: the header's names, typed as `keel_data::io` types a file read whole:
/// every cell is read as text, and a column is the narrowest of bool, s64,
/// f64 and string that all its non-null cells parse as (string when all null).
fn csv_types(path: &Path) -> Result<Fields, Failure> {
    let bad = exit::read_failure;
    let mut first = io::open(path, None, 1).map_err(bad)?;
    first.next_batch().map_err(bad)?;
    let text = Fields {
        fields: first
            .schema()
            .fields
            .iter()
            .map(|f| Field {
                name: f.name.clone(),
                data_type: DataType::String,
            })
            .collect(),
    };
    let mut kinds = vec![TextKind::default(); text.fields.len()];
    let mut source = io::open(path, Some(&text), BATCH_ROWS).map_err(bad)?;
    while let Some(b) = source.next_batch().map_err(bad)? {
        for (kind, col) in kinds.iter_mut().zip(b.batch.columns()) {
            if let ColumnData::String(cells) = &col.data {
                for (i, cell) in cells.iter().enumerate() {
                    if col.is_valid(i) {
                        kind.see(cell);
                    }
                }
            }
        }
    }
    Ok(Fields {
        fields: text
            .fields
            .into_iter()
            .zip(kinds)
            .map(|(f, k)| Field {
                name: f.name,
                data_type: k.data_type(),
            })
            .collect(),
    })
}

/// What the non-null cells of a CSV column seen so far all parse as.
#[derive(Clone, Copy)]
struct TextKind {
    any: bool,
    all_bool: bool,
    all_int: bool,
    all_num: bool,
}

impl Default for TextKind {
    fn default() -> TextKind {
        TextKind {
            any: false,
            all_bool: true,
            all_int: true,
            all_num: true,
        }
    }
}

impl TextKind {
    // The same parses as the CSV reader's.
    fn see(&mut self, cell: &str) {
        let t = cell.trim();
        self.any = true;
        self.all_bool &= matches!(t, "true" | "True" | "TRUE" | "false" | "False" | "FALSE");
        self.all_int = self.all_int && t.parse::<i64>().is_ok();
        self.all_num = self.all_num && t.parse::<f64>().is_ok();
    }

    fn data_type(self) -> DataType {
        match () {
            _ if !self.any => DataType::String,
            _ if self.all_bool => DataType::Bool,
            _ if self.all_int => DataType::S64,
            _ if self.all_num => DataType::F64,
            _ => DataType::String,
        }
    }
}

/// JSON Lines: every key of every object, in order of first appearance, typed
/// by its JSON values (integers s64, other numbers f64, mixed numbers f64,
/// anything else mixed string; string when always null). A line that is not
/// a JSON object ends the scan: the reading pass then reports it with its line.
fn jsonl_types(path: &Path) -> Result<Fields, Failure> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read", path.display()))
        .map_err(|e| fail(exit::BAD_DATA, e))?;
    let mut fields: Vec<(String, Option<DataType>)> = Vec::new();
    for line in BufReader::with_capacity(1 << 16, file).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&line) else {
            break;
        };
        for (k, v) in &map {
            match fields.iter_mut().find(|(n, _)| n == k) {
                Some((_, t)) => *t = widen(*t, json_type(v)),
                None => fields.push((k.clone(), json_type(v))),
            }
        }
    }
    Ok(json_schema(fields))
}
