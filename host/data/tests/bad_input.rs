//! Bad input, table-driven: every malformed CSV or JSON Lines input gets an
//! error naming the file, line and column; no panic; and every row before the
//! bad one is delivered first, whatever the batch size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_data::DataType;
use keel_data::io::{Field, Format, Schema, open_reader};
use std::path::Path;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    Schema {
        fields: fields
            .iter()
            .map(|(n, t)| Field {
                name: n.to_string(),
                data_type: *t,
            })
            .collect(),
    }
}

/// Reads `bytes` in batches of `batch_size`: the rows delivered (with the
/// line of each) and the error that ended the read, if any.
fn read(
    format: Format,
    bytes: &[u8],
    schema: Option<&Schema>,
    batch_size: usize,
) -> (Vec<u64>, Option<String>) {
    let name = match format {
        Format::Csv => "in.csv",
        _ => "in.jsonl",
    };
    let reader = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let mut source = match open_reader(Path::new(name), format, reader, schema, batch_size) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut lines = Vec::new();
    loop {
        match source.next_batch() {
            Ok(Some(b)) => {
                assert_eq!(b.lines.len(), b.batch.rows());
                lines.extend(b.lines);
            }
            Ok(None) => return (lines, None),
            Err(e) => return (lines, Some(e.to_string())),
        }
    }
}

struct Case {
    what: &'static str,
    format: Format,
    input: Vec<u8>,
    schema: Option<Schema>,
    /// The error must start with this (file, line, column, what).
    error: &'static str,
    /// Rows delivered before the error.
    good_rows: usize,
}

fn case(
    what: &'static str,
    format: Format,
    input: impl Into<Vec<u8>>,
    schema: Option<Schema>,
    error: &'static str,
    good_rows: usize,
) -> Case {
    Case {
        what,
        format,
        input: input.into(),
        schema,
        error,
        good_rows,
    }
}

#[test]
fn every_bad_input_is_named_and_nothing_before_it_is_lost() {
    use DataType::*;
    use Format::*;
    let xy = || Some(schema(&[("x", F64), ("y", F64)]));
    let n = || Some(schema(&[("n", S64)]));
    let cases = vec![
        case(
            "ragged row",
            Csv,
            "a,b,c\n1,2,3\n4,5,6\n7,8\n9,9,9\n",
            None,
            "in.csv:4: row has 2 fields but the header has 3",
            2,
        ),
        case(
            "too many fields",
            Csv,
            "a,b\n1,2\n1,2,3\n",
            None,
            "in.csv:3: row has 3 fields but the header has 2",
            1,
        ),
        case(
            "wrong type",
            Csv,
            "x,y\n1,2\n3,4\n5,forty\n",
            xy(),
            "in.csv:4: column `y`: expected f64, found `forty`",
            2,
        ),
        case(
            "s64 out of range",
            Csv,
            "n\n1\n2\n99999999999999999999\n",
            n(),
            "in.csv:4: column `n`: `99999999999999999999` is out of range for s64",
            2,
        ),
        case(
            "f64 out of range",
            Csv,
            "x,y\n1,2\n1e400,3\n",
            xy(),
            "in.csv:3: column `x`: `1e400` is out of range for f64",
            1,
        ),
        case(
            "f32 out of range",
            Csv,
            "f\n1.5\n1e39\n",
            Some(schema(&[("f", F32)])),
            "in.csv:3: column `f`: `1e39` is out of range for f32",
            1,
        ),
        case(
            "bool expected",
            Csv,
            "b\ntrue\nyes\n",
            Some(schema(&[("b", Bool)])),
            "in.csv:3: column `b`: expected bool, found `yes`",
            1,
        ),
        case(
            "invalid UTF-8",
            Csv,
            &b"a,b\n1,x\n2,\xff\xfe\n"[..],
            None,
            "in.csv:3: field 2 is not valid UTF-8",
            1,
        ),
        case(
            "empty input",
            Csv,
            "",
            None,
            "in.csv: the input is empty",
            0,
        ),
        case(
            "duplicate header",
            Csv,
            "a,a\n1,2\n",
            None,
            "in.csv:1: column `a` appears twice in the header",
            0,
        ),
        case(
            "missing column",
            Csv,
            "x\n1\n",
            xy(),
            "in.csv: column `y` is missing",
            0,
        ),
        case(
            "unterminated quote",
            Csv,
            "a,b\n1,2\n\"open,3\n4,5\n",
            None,
            "in.csv:3: row has 1 fields but the header has 2",
            1,
        ),
        case(
            "invalid JSON",
            JsonLines,
            "{\"a\":1}\n{\"a\":2}\n{\"a\":\n",
            None,
            "in.jsonl:3: invalid JSON at column",
            2,
        ),
        case(
            "not an object",
            JsonLines,
            "{\"a\":1}\n[1,2]\n",
            None,
            "in.jsonl:2: expected a JSON object per line",
            1,
        ),
        case(
            "wrong type",
            JsonLines,
            "{\"x\":1,\"y\":2}\n{\"x\":\"one\",\"y\":2}\n",
            xy(),
            "in.jsonl:2: column `x`: expected f64, found `\"one\"`",
            1,
        ),
        case(
            "s64 out of range",
            JsonLines,
            "{\"n\":1}\n{\"n\":18446744073709551616}\n",
            n(),
            "in.jsonl:2: column `n`: `1.8446744073709552e+19` is out of range for s64",
            1,
        ),
        case(
            "u64 beyond s64",
            JsonLines,
            "{\"n\":9223372036854775808}\n",
            n(),
            "in.jsonl:1: column `n`: `9223372036854775808` is out of range for s64",
            0,
        ),
        case(
            "not an integer",
            JsonLines,
            "{\"n\":1}\n{\"n\":2.5}\n",
            n(),
            "in.jsonl:2: column `n`: expected s64, found the non-integer 2.5",
            1,
        ),
        case(
            "f64 out of range",
            JsonLines,
            "{\"x\":1,\"y\":1}\n{\"x\":1e400,\"y\":1}\n",
            xy(),
            "in.jsonl:2: invalid JSON at column",
            1,
        ),
        case(
            "invalid UTF-8",
            JsonLines,
            &b"{\"a\":\"ok\"}\n{\"a\":\"caf\xe9\"}\n"[..],
            None,
            "in.jsonl:2: invalid UTF-8 at byte 10",
            1,
        ),
        case(
            "empty input",
            JsonLines,
            "",
            None,
            "in.jsonl: the input is empty",
            0,
        ),
        case(
            "blank lines only",
            JsonLines,
            "\n  \n\n",
            None,
            "in.jsonl: the input is empty",
            0,
        ),
        case(
            "late key",
            JsonLines,
            "{\"a\":1}\n{\"a\":2,\"b\":3}\n",
            None,
            "in.jsonl:2: column `b`: key not seen in the first batch",
            1,
        ),
        case(
            "deep nesting",
            JsonLines,
            format!(
                "{{\"a\":1}}\n{{\"a\":{}{}}}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            None,
            "in.jsonl:2: invalid JSON at column",
            1,
        ),
    ];
    for c in &cases {
        for batch_size in [1, 2, 1024] {
            let (lines, error) = read(c.format, &c.input, c.schema.as_ref(), batch_size);
            // "late key" is only late when the first batch ends before it.
            if c.what == "late key" && batch_size > 1 {
                continue;
            }
            let error =
                error.unwrap_or_else(|| panic!("{}: no error (batch {batch_size})", c.what));
            assert!(
                error.starts_with(c.error),
                "{} (batch {batch_size}): got `{error}`, want `{}…`",
                c.what,
                c.error
            );
            assert_eq!(
                lines.len(),
                c.good_rows,
                "{} (batch {batch_size}): rows before the error, lines {lines:?}",
                c.what
            );
        }
    }
}

#[test]
fn one_enormous_line_is_read_whole() {
    let cell = "x".repeat(16 << 20);
    for (format, input) in [
        (Format::Csv, format!("a,b\n{cell},1\n")),
        (Format::JsonLines, format!("{{\"a\":\"{cell}\",\"b\":1}}\n")),
    ] {
        let (lines, error) = read(format, input.as_bytes(), None, 1024);
        assert_eq!((lines.len(), error), (1, None), "{format:?}");
    }
    // An enormous line that is also bad is named like any other.
    let (_, error) = read(
        Format::Csv,
        format!("a,b\n1,2\n{cell}\n").as_bytes(),
        None,
        1024,
    );
    assert!(error.unwrap().starts_with("in.csv:3: row has 1 fields"));
}

#[test]
fn explicit_infinities_and_nan_are_values_not_errors() {
    let (lines, error) = read(
        Format::Csv,
        b"x,y\ninf,-inf\nNaN,1e308\n",
        Some(&schema(&[("x", DataType::F64), ("y", DataType::F64)])),
        10,
    );
    assert_eq!((lines, error), (vec![2, 3], None));
}

/// A `.parquet` file in a build without the `parquet` feature is a format
/// this build leaves out (the CLI's usage error, exit 2, for an input and an
/// output alike), told apart from a damaged Parquet file (bad data).
/// `cargo test -p keel-data --no-default-features --features io` runs the
/// refusing side.
#[test]
fn parquet_is_supported_only_with_its_feature() {
    let path = Path::new("scores.parquet");
    let supported = Format::supported(path);
    if cfg!(feature = "parquet") {
        assert_eq!(supported.unwrap(), Format::Parquet);
    } else {
        let e = supported.unwrap_err();
        assert!(
            matches!(e, keel_data::io::ReadError::Unsupported { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("built without parquet"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.parquet");
        std::fs::write(&file, b"PAR1").unwrap();
        let e = keel_data::io::open(&file, None, 10).err().unwrap();
        assert!(
            matches!(e, keel_data::io::ReadError::Unsupported { .. }),
            "{e:?}"
        );
    }
    assert!(matches!(
        Format::supported(Path::new("scores.xlsx")),
        Err(keel_data::io::ReadError::UnknownFormat { .. })
    ));
}
