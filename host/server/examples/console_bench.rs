//! The console benchmark (`cargo xtask bench-console`): each console page's
//! server time with a big audit log. Fills a store once (the penguins
//! pipeline deployed, its input-drift monitor windowed at 30 rows, a clean
//! and a drifted window served through the daemon, then audit records
//! cloned from a served one up to `--records`, one in a thousand an error),
//! then starts the daemon's `App` on it and times each page through the
//! router in process: rendering and store reads, without the network.
//!
//! ```text
//! cargo run --release -p keel-server --example console_bench -- \
//!     --dir target/bench-console --records 1000000 \
//!     --spec examples/penguins/pipeline.toml --plugin-dir target/plugins
//! ```

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use keel_runtime::{Runtime, RuntimeOptions};
use keel_server::{App, ServerConfig, router};
use keel_store::{Outcome, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    dir: PathBuf,
    records: u64,
    spec: PathBuf,
    plugin_dir: PathBuf,
}

fn args() -> Res<Args> {
    let mut a = std::env::args().skip(1);
    let (mut dir, mut records, mut spec, mut plugin_dir) = (None, 1_000_000, None, None);
    while let Some(k) = a.next() {
        let v = a.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--dir" => dir = Some(PathBuf::from(v)),
            "--records" => records = v.parse()?,
            "--spec" => spec = Some(PathBuf::from(v)),
            "--plugin-dir" => plugin_dir = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(Args {
        dir: dir.ok_or("--dir")?,
        records,
        spec: spec.ok_or("--spec")?,
        plugin_dir: plugin_dir.ok_or("--plugin-dir")?,
    })
}

/// One OIP request of `rows` rows of a penguins CSV (every `step`-th), the
/// measurements moved by `shift` times (15, 5, 40, 1500).
fn request(csv: &Path, id: &str, rows: usize, step: usize, shift: f64) -> Res<String> {
    let text = std::fs::read_to_string(csv)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty csv")?.split(',').collect();
    let all: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let picked: Vec<&Vec<&str>> = (0..rows).map(|i| &all[(i * step) % all.len()]).collect();
    let shifts = [
        ("bill_length_mm", 15.0),
        ("bill_depth_mm", 5.0),
        ("flipper_length_mm", 40.0),
        ("body_mass_g", 1500.0),
    ];
    let mut inputs = Vec::new();
    for (c, name) in header.iter().enumerate() {
        if let Some((_, s)) = shifts.iter().find(|(n, _)| n == name) {
            let data: Vec<serde_json::Value> = picked
                .iter()
                .map(|r| {
                    r[c].parse::<f64>()
                        .map_or(serde_json::Value::Null, |x| (x + s * shift).into())
                })
                .collect();
            inputs.push(serde_json::json!({"name": name, "datatype": "FP64", "shape": [rows], "data": data}));
        } else if ["island", "sex"].contains(name) {
            let data: Vec<serde_json::Value> = picked
                .iter()
                .map(|r| {
                    if r[c].is_empty() {
                        serde_json::Value::Null
                    } else {
                        r[c].into()
                    }
                })
                .collect();
            inputs.push(serde_json::json!({"name": name, "datatype": "BYTES", "shape": [rows], "data": data}));
        }
    }
    Ok(serde_json::json!({"id": id, "inputs": inputs}).to_string())
}

async fn call(app: &Arc<App>, method: &str, uri: &str, body: String) -> Res<(u16, usize)> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))?;
    let resp = router(app.clone()).oneshot(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes.len()))
}

/// Deploys, serves two windows, clones records up to `records`.
async fn fill(args: &Args, rt: &Arc<Runtime>) -> Res<()> {
    let store = Store::open(&args.dir.join("store"))?;
    if store.audit_len()? >= args.records {
        println!("store already holds {} records", store.audit_len()?);
        return Ok(());
    }
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.spec)?;
    let at =
        "at = \"input\"          # observe raw input; its reference is the pipeline reference\n";
    let spec_dir = args.spec.parent().ok_or("spec has no folder")?;
    let windowed = spec_dir.join(".console-bench.toml");
    std::fs::write(
        &windowed,
        text.replacen(at, &format!("{at}window = {{ rows = 30 }}\n"), 1),
    )?;
    let deployed = keel_ops::pipeline_deploy(
        &store,
        rt,
        &windowed,
        keel_runtime::pipeline::PluginDirs(vec![args.plugin_dir.clone()]),
    );
    std::fs::remove_file(&windowed)?;
    deployed.map_err(|e| format!("{e:#}"))?;
    let app = Arc::new(App::start(
        store.clone(),
        rt.clone(),
        ServerConfig::default(),
    )?);
    let infer = "/v2/models/penguins/infer";
    call(
        &app,
        "POST",
        infer,
        request(&spec_dir.join("reference.csv"), "clean", 30, 7, 0.0)?,
    )
    .await?;
    call(
        &app,
        "POST",
        infer,
        request(&spec_dir.join("current.csv"), "drift", 30, 1, 1.0)?,
    )
    .await?;
    for i in 0..3 {
        call(
            &app,
            "POST",
            infer,
            request(
                &spec_dir.join("current.csv"),
                &format!("one-{i}"),
                1,
                1,
                0.0,
            )?,
        )
        .await?;
    }
    app.shutdown();
    drop(app);
    let template = store.audit_get("one-0")?.ok_or("no served record")?;
    let mut n = store.audit_len()?;
    while n < args.records {
        let batch: Vec<_> = (n..(n + 10_000).min(args.records))
            .map(|i| {
                let mut r = template.clone();
                r.id = format!("bulk-{i}");
                r.time = keel_store::now_rfc3339();
                if i % 1000 == 999 {
                    r.outcome = Outcome::Error;
                    r.error = Some("stage `model`: a made-up failure".into());
                }
                r
            })
            .collect();
        n += batch.len() as u64;
        store.append_batch(batch)?;
    }
    store.flush()?;
    println!(
        "filled the store to {n} records in {:.1} s ({} MB on disk)",
        started.elapsed().as_secs_f64(),
        dir_bytes(&args.dir.join("store")) >> 20
    );
    Ok(())
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::main]
async fn main() -> Res<()> {
    let args = args()?;
    let rt = Arc::new(Runtime::new(RuntimeOptions {
        cache_dir: Some(args.dir.join("cache")),
        ..RuntimeOptions::default()
    })?);
    fill(&args, &rt).await?;
    let store = Store::open(&args.dir.join("store"))?;
    let len = store.audit_len()?;
    let app = Arc::new(App::start(store, rt, ServerConfig::default())?);
    let day = keel_store::now_rfc3339();
    let day = &day[..10];
    let pages = [
        ("overview", "/ui".to_string()),
        ("pipeline version", "/ui/pipelines/penguins/1.0.0".into()),
        ("alerts", "/ui/alerts".into()),
        ("audit, newest page", "/ui/audit".into()),
        (
            "audit, page at seq 500,000",
            "/ui/audit?before=500000".into(),
        ),
        (
            "audit, outcome=error (1 in 1000)",
            "/ui/audit?outcome=error".into(),
        ),
        (
            "audit, no match (scan cap)",
            "/ui/audit?pipeline=nope".into(),
        ),
        (
            "audit, time range",
            format!("/ui/audit?since={day}T00:00:00Z&until={day}T23:59:59Z"),
        ),
        ("audit record by id", "/ui/audit/bulk-500000".into()),
        ("registry", "/ui/registry".into()),
    ];
    println!(
        "{len} audit records; server time per page (in-process through the router, 20 runs after 2 warm-ups):"
    );
    println!(
        "{:<36} {:>6} {:>9} {:>9} {:>9}",
        "page", "status", "p50 ms", "max ms", "KB"
    );
    for (name, uri) in pages {
        let mut times = Vec::new();
        let mut last = (0, 0);
        for i in 0..22 {
            let t = Instant::now();
            last = call(&app, "GET", &uri, String::new()).await?;
            if i >= 2 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<36} {:>6} {:>9.2} {:>9.2} {:>9.1}",
            name,
            last.0,
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            last.1 as f64 / 1024.0
        );
    }
    app.shutdown();
    Ok(())
}
