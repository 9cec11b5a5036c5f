//! A transform whose config picks a way to misbehave, so the host's sandbox
//! can be tested against each: traps, endless loops, memory bombs, file and
//! network access, ragged output. `mode = "echo"` behaves.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use keel_sdk::{Batch, Column, ColumnData, Config, Error, Info, Result, Transform};

#[derive(serde::Deserialize)]
struct Cfg {
    mode: String,
    #[serde(default)]
    path: String,
    /// Misbehave only from this call on (0 = first call).
    #[serde(default)]
    after_calls: u64,
    /// `work`: loop iterations per call (a slow but well-behaved plugin).
    #[serde(default)]
    iterations: u64,
}

struct Hostile {
    cfg: Cfg,
    calls: u64,
    hoard: Vec<Vec<u8>>,
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        0
    } else {
        recurse(n + 1).wrapping_add(std::hint::black_box(1))
    }
}

impl Transform for Hostile {
    fn info() -> Info {
        Info::new("hostile", "0.1.0", "Misbehaves on request (sandbox tests).")
    }

    fn create(config: Config, _reference: Option<Batch>) -> Result<Self> {
        let cfg: Cfg = config.parse()?;
        if cfg.mode == "fail-create" {
            return Err(Error::config("asked to fail").in_column("mode"));
        }
        Ok(Hostile {
            cfg,
            calls: 0,
            hoard: Vec::new(),
        })
    }

    fn process(&mut self, input: Batch) -> Result<Batch> {
        self.calls += 1;
        if self.calls <= self.cfg.after_calls {
            return Ok(input);
        }
        match self.cfg.mode.as_str() {
            "echo" => Ok(input),
            "work" => {
                let mut x = 0u64;
                for i in 0..self.cfg.iterations {
                    x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
                }
                std::hint::black_box(x);
                Ok(input)
            }
            "error" => Err(Error::input("refused on purpose").in_column("x")),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "unreachable" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                std::process::abort()
            }
            "abort" => std::process::abort(),
            "loop" => loop {
                std::hint::black_box(&input);
            },
            "recurse" => Ok(Batch::from_columns(vec![Column::new(
                "n",
                ColumnData::F64(vec![recurse(0) as f64]),
            )])?),
            "grow" => {
                // Grows memory a megabyte at a time until the host says no.
                loop {
                    self.hoard.push(vec![1u8; 1 << 20]);
                }
            }
            "huge-alloc" => {
                let v = std::hint::black_box(vec![7u8; 1 << 30]);
                Ok(Batch::from_columns(vec![Column::new(
                    "n",
                    ColumnData::S64(vec![v[12] as i64]),
                )])?)
            }
            "leak" => {
                self.hoard.push(vec![1u8; 8 << 20]);
                Ok(input)
            }
            "huge-output" => {
                let rows = 5_000_000;
                Ok(Batch::from_columns(vec![Column::new(
                    "x",
                    ColumnData::F64(vec![1.0; rows]),
                )])?)
            }
            "nan" => {
                let rows = input.rows();
                let vals = (0..rows)
                    .map(|i| match i % 3 {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        _ => f64::NEG_INFINITY,
                    })
                    .collect();
                let mut out = input;
                out.set(Column::new("weird", ColumnData::F64(vals)))?;
                Ok(out)
            }
            "read-file" => {
                let text = std::fs::read_to_string(&self.cfg.path)
                    .map_err(|e| Error::input(format!("open {}: {e}", self.cfg.path)))?;
                Ok(Batch::from_columns(vec![Column::new(
                    "content",
                    ColumnData::String(vec![text]),
                )])?)
            }
            "write-file" => {
                std::fs::write(&self.cfg.path, b"pwned")
                    .map_err(|e| Error::input(format!("write {}: {e}", self.cfg.path)))?;
                Ok(input)
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                Ok(Batch::from_columns(vec![Column::new(
                    "env",
                    ColumnData::String(vec![vars.join(";"), args.join(";")]),
                )])?)
            }
            "socket" => {
                let r = std::net::TcpStream::connect("127.0.0.1:1");
                Err(Error::input(format!("connect: {r:?}")))
            }
            "clock" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(-1);
                let mut rnd = [0u8; 8];
                random_bytes(&mut rnd);
                Ok(Batch::from_columns(vec![
                    Column::new("now", ColumnData::S64(vec![now])),
                    Column::new("rand", ColumnData::S64(vec![i64::from_le_bytes(rnd)])),
                ])?)
            }
            "spin-clock" => {
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_secs(3600) {}
                Ok(input)
            }
            "print" => {
                println!("hello from the guest's stdout");
                eprintln!("and from its stderr");
                keel_sdk::log::warn("and through the log import");
                Ok(input)
            }
            other => Err(Error::config(format!("unknown mode `{other}`"))),
        }
    }
}

/// Reads `wasi:random/random`, the source the host reseeds per call.
fn random_bytes(out: &mut [u8; 8]) {
    let _ = getrandom::fill(out);
}

keel_sdk::export_transform!(Hostile);
