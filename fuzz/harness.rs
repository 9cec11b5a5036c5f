//! The bodies of the fuzz targets, shared by `fuzz_targets/*.rs` (cargo fuzz,
//! nightly) and the stable regression test `host/cli/tests/all/fuzz_regressions.rs`,
//! which runs every committed corpus and regression input through them.
//!
//! Each decoder must return, never panic, abort or hang; and what it returns
//! must hold together: batches whose columns all have the batch's rows, one
//! source line per row in increasing order, and errors that name the input.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_data::DataType;
use keel_data::io::{Format, open_reader};
use std::path::Path;

fn decode(data: &[u8], format: Format, name: &str) {
    for batch_size in [1, 3, 1 << 20] {
        let reader = Box::new(std::io::Cursor::new(data.to_vec()));
        let mut source = match open_reader(Path::new(name), format, reader, None, batch_size) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.to_string().starts_with(name), "{e}");
                continue;
            }
        };
        let mut last_line = 0;
        let mut rows = 0u64;
        loop {
            match source.next_batch() {
                Ok(Some(b)) => {
                    assert!(b.batch.rows() <= batch_size && b.batch.rows() > 0);
                    assert_eq!(b.lines.len(), b.batch.rows());
                    assert_eq!(b.first_row, rows);
                    for c in b.batch.columns() {
                        assert_eq!(c.len(), b.batch.rows(), "column {}", c.name);
                    }
                    for l in &b.lines {
                        assert!(*l > last_line, "lines {:?} after {last_line}", b.lines);
                        last_line = *l;
                    }
                    rows += b.batch.rows() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.starts_with(name), "{text}");
                    if let Some(line) = e.line() {
                        // An error is never on a line already accepted.
                        assert!(
                            line == 0 || line > last_line || last_line == 0,
                            "{text} after line {last_line}"
                        );
                    }
                    break;
                }
            }
        }
    }
}

/// CSV: `keel_data::io` as `keel run` reads a `.csv` file.
pub fn csv(data: &[u8]) {
    decode(data, Format::Csv, "fuzz.csv");
}

/// JSON Lines: `keel_data::io` as `keel run` reads a `.jsonl` file.
pub fn jsonl(data: &[u8]) {
    decode(data, Format::JsonLines, "fuzz.jsonl");
}

/// A pipeline spec: parse and check, as `keel run` and `keel pipeline deploy` do.
pub fn spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: relative `config_file`s read nothing.
    let file = Path::new("/nonexistent-keel-fuzz/pipeline.toml");
    if let Err(e) = keel_runtime::spec::PipelineSpec::parse(text, file) {
        assert!(
            e.to_string()
                .starts_with("/nonexistent-keel-fuzz/pipeline.toml"),
            "{e}"
        );
    }
}

/// An Open Inference Protocol request body, as `keel serve` decodes it.
/// Input layout: a mode byte (bit 0: the body has a binary section whose JSON
/// header length is the next two bytes, little-endian; bit 7: the model
/// declares its inputs), then the body.
pub fn oip(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (header_len, body) = match (mode & 1, rest) {
        (1, [lo, hi, body @ ..]) => (Some(usize::from(u16::from_le_bytes([*lo, *hi]))), body),
        (1, _) => return,
        _ => (None, rest),
    };
    let declared = [
        ("x".to_string(), DataType::F64),
        ("n".to_string(), DataType::S64),
        ("s".to_string(), DataType::String),
        ("b".to_string(), DataType::Bool),
    ];
    let inputs: &[(String, DataType)] = if mode & 0x80 != 0 { &declared } else { &[] };
    match keel_server::oip::decode_request(body, header_len, inputs) {
        Ok(d) => {
            for c in d.batch.columns() {
                assert_eq!(c.len(), d.batch.rows(), "column {}", c.name);
                if !inputs.is_empty() {
                    let (_, t) = inputs.iter().find(|(n, _)| *n == c.name).unwrap();
                    assert_eq!(c.data_type(), *t, "column {}", c.name);
                }
            }
            // Every tensor is at least one column, and its rows are bounded
            // by what the body can carry.
            assert!(!d.batch.columns().is_empty());
            assert!(
                d.batch.rows() <= body.len(),
                "{} rows from {} bytes",
                d.batch.rows(),
                body.len()
            );
        }
        Err(e) => {
            assert!(!e.message.is_empty());
        }
    }
}
