//! `keel serve` end to end: the real daemon process on loopback, driven over
//! HTTP — Open Inference Protocol v2 answers equal to `keel run`, Triton's
//! own Python client, tokens and roles, limits, canary and shadow, metrics,
//! SIGHUP reload, SIGTERM drain, a bounded load test and SIGKILL under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::daemon::*;
use common::*;
use keel_data::Batch;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An OIP request with one tensor per column of `batch` (nulls as JSON null).
pub(crate) fn oip_request(batch: &Batch, id: Option<&str>) -> Value {
    let inputs: Vec<Value> = batch
        .columns()
        .iter()
        .map(|c| {
            let data: Vec<Value> = (0..c.len())
                .map(|i| match c.value(i) {
                    keel_data::Value::Null => Value::Null,
                    keel_data::Value::F64(x) => json!(x),
                    keel_data::Value::S64(x) => json!(x),
                    keel_data::Value::Bool(x) => json!(x),
                    keel_data::Value::Str(s) => json!(s),
                })
                .collect();
            json!({
                "name": c.name,
                "datatype": keel_server::oip::datatype_name(c.data_type()),
                "shape": [c.len()],
                "data": data,
            })
        })
        .collect();
    let mut r = json!({ "inputs": inputs });
    if let Some(id) = id {
        r["id"] = json!(id);
    }
    r
}

fn penguins() -> String {
    example("pipeline.toml")
}

pub(crate) fn read_csv(path: &Path) -> Batch {
    keel_data::io::read_all(path, None).unwrap()
}

/// A store with the penguins example deployed.
fn deployed_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    let o = keel_in(store.path(), &["pipeline", "deploy", &penguins()]);
    assert!(o.status.success(), "{}", stderr(&o));
    store
}

/// The penguins pipeline as version `version` with another intercept, so
/// its answers differ from 1.0.0's.
fn penguins_variant(dir: &Path, version: &str, intercept: f64) -> PathBuf {
    let text = std::fs::read_to_string(penguins()).unwrap();
    assert!(
        text.contains("version = \"1.0.0\"") && text.contains("intercept = -2.135254470658232")
    );
    let text = text
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""))
        .replace(
            "intercept = -2.135254470658232",
            &format!("intercept = {intercept}"),
        );
    std::fs::copy(example("reference.csv"), dir.join("reference.csv")).unwrap();
    let p = dir.join(format!("penguins-{version}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// `keel run` on `input`: the expected outputs, as JSON Lines rows.
fn expected_rows(spec: &str, input: &Path) -> Vec<Value> {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.jsonl");
    let o = keel(&[
        "run",
        spec,
        "-i",
        input.to_str().unwrap(),
        "-o",
        path.to_str().unwrap(),
        "--no-audit",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn output<'a>(resp: &'a Value, name: &str) -> &'a Vec<Value> {
    resp["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name} in {resp}"))["data"]
        .as_array()
        .unwrap()
}

#[test]
fn answers_equal_keel_run_and_each_request_is_an_audit_record() {
    let store = deployed_store();
    let mut d = Daemon::start(store.path(), &[]);
    assert!(d.log().contains("no tokens configured"), "{}", d.log());
    assert_eq!(get(&d.url("/v2/health/live"), None).json()["live"], true);
    assert_eq!(get(&d.url("/v2/health/ready"), None).json()["ready"], true);
    assert_eq!(get(&d.url("/v2"), None).json()["name"], "keel");
    let meta = get(&d.url("/v2/models/penguins"), None).json();
    assert_eq!(meta["versions"], json!(["1.0.0"]));
    let inputs: Vec<&str> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        inputs.contains(&"bill_length_mm") && inputs.contains(&"island"),
        "{meta}"
    );
    let outputs = meta["outputs"].to_string();
    assert!(
        outputs.contains("prob_gentoo") && outputs.contains("\"FP64\""),
        "{meta}"
    );
    assert_eq!(
        get(&d.url("/v2/models/penguins/versions/1.0.0/ready"), None).json()["ready"],
        true
    );

    // Many rows in one request, nulls included: the same answers as `keel run`.
    let input = PathBuf::from(example("current.csv"));
    let batch = read_csv(&input);
    let expected = expected_rows(&penguins(), &input);
    let resp = post_json(
        &d.url("/v2/models/penguins/infer"),
        None,
        &oip_request(&batch, Some("req-all-rows")),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["id"], "req-all-rows");
    assert_eq!(body["model_name"], "penguins");
    assert_eq!(body["model_version"], "1.0.0");
    let probs = output(&body, "prob_gentoo");
    let labels = output(&body, "is_gentoo");
    assert_eq!(probs.len(), expected.len());
    for (i, row) in expected.iter().enumerate() {
        let want = row["prob_gentoo"].as_f64().unwrap();
        let got = probs[i].as_f64().unwrap();
        assert!((want - got).abs() < 1e-12, "row {i}: {got} vs {want}");
        assert_eq!(labels[i], row["is_gentoo"], "row {i}");
    }
    assert!(resp.header("keel-audit-seq").is_some());

    // The same id again is refused: ids are audit keys.
    let again = post_json(
        &d.url("/v2/models/penguins/infer"),
        None,
        &oip_request(&batch.slice(0, 1), Some("req-all-rows")),
    );
    assert_eq!(again.status, 409, "{}", again.body);

    // One row, no id: the daemon makes one and returns it.
    let one = post_json(
        &d.url("/v2/models/penguins/versions/1.0.0/infer"),
        None,
        &oip_request(&batch.slice(0, 1), None),
    );
    assert_eq!(one.status, 200, "{}", one.body);
    let id = one.json()["id"].as_str().unwrap().to_string();
    assert!(!id.is_empty());

    // Lineage of the first request through the admin API.
    let shown = get(&d.url("/admin/audit/req-all-rows"), None).json();
    assert_eq!(shown["record"]["id"], "req-all-rows");
    assert_eq!(shown["record"]["rows_in"], batch.rows());
    assert_eq!(shown["record"]["pipeline"]["name"], "penguins");
    assert_eq!(shown["record"]["serving"]["route"], "stable");
    assert!(
        shown["lineage"]["plugins"]
            .to_string()
            .contains("logistic-regression@")
    );
    assert!(
        !shown["record"]["findings"].as_array().unwrap().is_empty(),
        "the rows with missing values are reported by the validator"
    );
    let log = get(&d.url("/admin/audit?pipeline=penguins&limit=10"), None).json();
    assert_eq!(log["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&d.url("/admin/audit/verify"), None).json()["audit"]["ok"],
        true
    );

    assert!(d.stop().success(), "{}", d.log());
    // Offline, the CLI sees the same records and a sound chain.
    let o = keel_in(store.path(), &["audit", "show", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keel_in(store.path(), &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // And replay, from the recorded payload, gives the same output digests.
    let o = keel_in(store.path(), &["pipeline", "retention", "penguins", "all"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_requests_get_400_naming_the_place() {
    let store = deployed_store();
    let d = Daemon::start(store.path(), &[]);
    let url = d.url("/v2/models/penguins/infer");
    let batch = read_csv(Path::new(&example("current.csv"))).slice(0, 2);
    let mut req = oip_request(&batch, None);
    // A string where a number belongs.
    let i = req["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["name"] == "bill_length_mm")
        .unwrap();
    req["inputs"][i]["datatype"] = json!("BYTES");
    req["inputs"][i]["data"] = json!(["long", "short"]);
    let r = post_json(&url, None, &req);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("bill_length_mm"),
        "{}",
        r.body
    );
    // Malformed JSON: line and column.
    let r = request(
        "POST",
        &url,
        None,
        Some(("application/json", b"{\"inputs\": [".to_vec())),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("line 1"),
        "{}",
        r.body
    );
    // Shape and data disagree.
    let mut req = oip_request(&batch, None);
    req["inputs"][0]["shape"] = json!([3]);
    let r = post_json(&url, None, &req);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["path"].as_str().unwrap().starts_with("inputs[0]"),
        "{}",
        r.body
    );
    // Unknown model, unknown version, unknown endpoint.
    let r = post_json(
        &d.url("/v2/models/nope/infer"),
        None,
        &oip_request(&batch, None),
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"].as_str().unwrap().contains("penguins"),
        "{}",
        r.body
    );
    let r = post_json(
        &d.url("/v2/models/penguins/versions/9.9.9/infer"),
        None,
        &oip_request(&batch, None),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(get(&d.url("/nowhere"), None).status, 404);
    // Nothing above reached the audit log; the server still answers.
    let log = get(&d.url("/admin/audit"), None).json();
    assert_eq!(log["records"].as_array().unwrap().len(), 0);
    let ok = post_json(&url, None, &oip_request(&batch, None));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics
            .contains(r#"keel_requests_refused_total{pipeline="penguins",reason="bad_request"} 3"#),
        "{metrics}"
    );
}

const OPS: &str = "ops-token-0123456789abcdef";
const APP: &str = "app-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789ab";

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("serve.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[[tokens]]
name = "ops"
token = "{OPS}"
roles = ["admin", "infer"]
[[tokens]]
name = "app"
token = "{APP}"
roles = ["infer"]
[[tokens]]
name = "viewer"
token = "{VIEWER}"
roles = ["read"]
[limits]
body_bytes = 10000
{extra}
"#
        ),
    )
    .unwrap();
    p
}

#[test]
fn tokens_roles_and_limits() {
    let store = deployed_store();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(cfg_dir.path(), "");
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    assert!(!d.log().contains("no tokens configured"));
    let url = d.url("/v2/models/penguins/infer");
    let batch = read_csv(Path::new(&example("current.csv"))).slice(0, 3);
    let req = oip_request(&batch, None);
    // 401 without or with an unknown token, 403 with the wrong role.
    let r = post_json(&url, None, &req);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        post_json(&url, Some("not-a-token-at-all-000"), &req).status,
        401
    );
    assert_eq!(post_json(&url, Some(VIEWER), &req).status, 403);
    assert_eq!(post_json(&url, Some(APP), &req).status, 200);
    assert_eq!(get(&d.url("/admin/audit"), Some(APP)).status, 403);
    assert_eq!(get(&d.url("/admin/audit"), Some(VIEWER)).status, 200);
    assert_eq!(get(&d.url("/metrics"), None).status, 401);
    assert_eq!(get(&d.url("/metrics"), Some(VIEWER)).status, 200);
    assert_eq!(
        put_json(
            &d.url("/admin/pipelines/penguins/traffic"),
            Some(VIEWER),
            &json!({"shadow": null})
        )
        .status,
        403
    );
    // Liveness stays open for orchestrators.
    assert_eq!(get(&d.url("/v2/health/live"), None).status, 200);
    // 413 over the body limit.
    let big = oip_request(&read_csv(Path::new(&example("reference.csv"))), None);
    let r = post_json(&url, Some(APP), &big);
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    assert!(r.json()["error"].as_str().unwrap().contains("10000"));
    // An admin action is recorded with its actor.
    let r = put_json(
        &d.url("/admin/pipelines/penguins/traffic"),
        Some(OPS),
        &json!({"shadow": null}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let log = get(&d.url("/admin/log"), Some(VIEWER)).json();
    let e = &log["entries"][0];
    assert_eq!(e["actor"], "ops");
    assert_eq!(e["action"], "traffic.set");
    assert_eq!(e["target"], "penguins");
    assert_eq!(e["outcome"], "ok");
}

#[test]
fn no_tokens_means_loopback_only() {
    let store = tempfile::tempdir().unwrap();
    let o = keel_cmd(store.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("without tokens") && err.contains("0.0.0.0"),
        "{err}"
    );
}

#[test]
fn canary_shadow_promote_rollback_retire() {
    let store = deployed_store();
    let dir = tempfile::tempdir().unwrap();
    let v11 = penguins_variant(dir.path(), "1.1.0", -1.0);
    let o = keel_in(store.path(), &["pipeline", "deploy", v11.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut d = Daemon::start(store.path(), &[]);
    let url = d.url("/v2/models/penguins/infer");
    let row = read_csv(Path::new(&example("current.csv"))).slice(0, 1);
    // The latest version serves until traffic says otherwise; pin 1.0.0 stable.
    let r = put_json(
        &d.url("/admin/pipelines/penguins/traffic"),
        None,
        &json!({"stable": "1.0.0", "canary": {"version": "1.1.0", "share": 0.25}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let n = 200;
    let mut canary = 0;
    for _ in 0..n {
        let r = post_json(&url, None, &oip_request(&row, None));
        assert_eq!(r.status, 200, "{}", r.body);
        if r.json()["model_version"] == "1.1.0" {
            canary += 1;
        }
    }
    let share = f64::from(canary) / f64::from(n);
    assert!((share - 0.25).abs() <= 0.05, "canary share {share}");

    // Shadow: every answer from 1.0.0; 1.1.0's answers recorded and compared.
    let r = put_json(
        &d.url("/admin/pipelines/penguins/traffic"),
        None,
        &json!({"canary": null, "shadow": "1.1.0"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<String> = (0..20).map(|i| format!("shadowed-{i}")).collect();
    for id in &ids {
        let r = post_json(&url, None, &oip_request(&row, Some(id)));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["model_version"], "1.0.0");
    }
    // Shadow records are written off the request path: wait for them.
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        let shadow_id = format!("{id}~shadow");
        let rec = loop {
            let r = get(&d.url(&format!("/admin/audit/{shadow_id}")), None);
            if r.status == 200 {
                break r.json();
            }
            assert!(Instant::now() < deadline, "no shadow record {shadow_id}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let rec = &rec["record"];
        assert_eq!(rec["pipeline"]["version"], "1.1.0");
        assert_eq!(rec["serving"]["route"], "shadow");
        assert_eq!(rec["serving"]["shadow_of"], id.as_str());
        assert_eq!(rec["serving"]["compare"]["identical"], false, "{rec}");
        let diff = rec["serving"]["compare"]["columns"]["prob_gentoo"]["max_abs_diff"]
            .as_f64()
            .unwrap();
        assert!(diff > 0.0);
    }
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics.contains(r#"keel_shadow_requests_total{pipeline="penguins",version="1.1.0",result="different"} 20"#),
        "{metrics}"
    );

    // Promote 1.1.0, roll back to 1.0.0, retire 1.1.0.
    let r = post_json(
        &d.url("/admin/pipelines/penguins/promote"),
        None,
        &json!({"version": "1.1.0"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(&url, None, &oip_request(&row, None));
    assert_eq!(r.json()["model_version"], "1.1.0");
    let r = request(
        "POST",
        &d.url("/admin/pipelines/penguins/rollback"),
        None,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(&url, None, &oip_request(&row, None));
    assert_eq!(r.json()["model_version"], "1.0.0");
    let r = request(
        "POST",
        &d.url("/admin/pipelines/penguins/versions/1.0.0/retire"),
        None,
        None,
    );
    assert_eq!(
        r.status, 409,
        "the stable version cannot be retired: {}",
        r.body
    );
    let r = request(
        "POST",
        &d.url("/admin/pipelines/penguins/versions/1.1.0/retire"),
        None,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(
        &d.url("/v2/models/penguins/versions/1.1.0/infer"),
        None,
        &oip_request(&row, None),
    );
    assert_eq!(r.status, 404, "a retired version is not served: {}", r.body);
    let actions: Vec<String> = get(&d.url("/admin/log"), None).json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "pipeline.retire",
            "pipeline.retire",
            "traffic.rollback",
            "traffic.promote",
            "traffic.set",
            "traffic.set"
        ]
    );
    assert!(d.stop().success());
    // Traffic survives a restart.
    let d = Daemon::start(store.path(), &[]);
    let r = post_json(
        &d.url("/v2/models/penguins/infer"),
        None,
        &oip_request(&row, None),
    );
    assert_eq!(r.json()["model_version"], "1.0.0");
}

#[test]
fn deploy_through_the_api_and_monitors_publish_metrics() {
    let store = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfg_dir.path(),
        "[pipelines.penguins]\ndefault_window_rows = 40\n",
    );
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    // Plugins by upload, then the spec with its reference file.
    for p in [
        "rule-validator",
        "imputer",
        "one-hot-encoder",
        "standard-scaler",
        "logistic-regression",
        "drift-monitor",
        "bias-monitor",
    ] {
        let bytes =
            std::fs::read(guest_dir("KEEL_PLUGIN_DIR", "plugins").join(format!("{p}.wasm")))
                .unwrap();
        let r = request(
            "POST",
            &d.url(&format!("/admin/plugins?name={p}&version=1.0.0")),
            Some(OPS),
            Some(("application/wasm", bytes)),
        );
        assert_eq!(r.status, 200, "{p}: {}", r.body);
    }
    let spec = std::fs::read_to_string(penguins()).unwrap();
    let spec = [
        "rule-validator",
        "imputer",
        "one-hot-encoder",
        "standard-scaler",
        "logistic-regression",
        "drift-monitor",
        "bias-monitor",
    ]
    .iter()
    .fold(spec, |s, p| {
        s.replace(
            &format!("plugin = \"{p}\""),
            &format!("plugin = \"{p}@1.0.0\""),
        )
    });
    use base64::Engine;
    let reference = std::fs::read(example("reference.csv")).unwrap();
    let body = json!({
        "spec": spec,
        "files": {"reference.csv": base64::engine::general_purpose::STANDARD.encode(&reference)},
    });
    let r = post_json(&d.url("/admin/pipelines"), Some(VIEWER), &body);
    assert_eq!(r.status, 403);
    let r = post_json(&d.url("/admin/pipelines"), Some(OPS), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"]["deployed"]["name"], "penguins");
    // Drifted traffic: current.csv (2009) is the drifted season; 2 x 75 rows
    // close 3 windows of 40 rows.
    let current = read_csv(Path::new(&example("current.csv")));
    for _ in 0..2 {
        let r = post_json(
            &d.url("/v2/models/penguins/infer"),
            Some(APP),
            &oip_request(&current, None),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = get(&d.url("/metrics"), Some(VIEWER)).body;
        if m.contains("keel_monitor_windows_total{pipeline=\"penguins\",version=\"1.0.0\",monitor=\"input-drift\"} 3") {
            break m;
        }
        assert!(Instant::now() < deadline, "windows did not close: {m}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metrics.contains("keel_monitor_metric{"), "{metrics}");
    assert!(
        metrics.contains("monitor=\"prediction-drift\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("keel_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(metrics.contains("keel_stage_duration_seconds_count{pipeline=\"penguins\",version=\"1.0.0\",stage=\"model\"} 2"), "{metrics}");
    assert!(metrics.contains("keel_audit_records_total 2"), "{metrics}");
    let status = get(&d.url("/admin/monitors"), Some(VIEWER)).json();
    assert!(status.to_string().contains("input-drift"), "{status}");
    let history = get(
        &d.url("/admin/monitors/penguins/input-drift/history"),
        Some(VIEWER),
    )
    .json();
    assert_eq!(history["windows"].as_array().unwrap().len(), 3, "{history}");
    // The bias monitor alerts on this season (see the example's README).
    let alerts = get(&d.url("/admin/alerts"), Some(VIEWER)).json();
    let alerts = alerts["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty());
    assert!(
        alerts.iter().any(|a| a["monitor"] == "prediction-bias"),
        "{alerts:?}"
    );
    assert!(metrics.contains("keel_alerts_total{"), "{metrics}");
}

#[test]
fn saturation_is_503_with_retry_after_and_timeouts_are_contained() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let guests = guest_dir("KEEL_TEST_GUESTS", "test-guests");
    let spec = dir.path().join("slow.toml");
    std::fs::write(
        &spec,
        format!(
            r#"
name = "slow"
version = "1"
[[stages]]
name = "work"
plugin = "{}"
[stages.config]
mode = "work"
iterations = 400000000
[stages.limits]
timeout_ms = 20000
"#,
            guests.join("hostile.wasm").display()
        ),
    )
    .unwrap();
    let spin = dir.path().join("spin.toml");
    std::fs::write(
        &spin,
        format!(
            r#"
name = "spin"
version = "1"
[[stages]]
name = "loop"
plugin = "{}"
[stages.config]
mode = "loop"
[stages.limits]
timeout_ms = 200
"#,
            guests.join("hostile.wasm").display()
        ),
    )
    .unwrap();
    for s in [&spec, &spin] {
        let o = keel_in(store.path(), &["pipeline", "deploy", s.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let cfg = dir.path().join("serve.toml");
    std::fs::write(&cfg, "[pipelines.slow]\nconcurrency = 1\nqueue = 0\n").unwrap();
    let mut d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    let req = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]});
    let slow_url = d.url("/v2/models/slow/infer");
    let first = {
        let (u, r) = (slow_url.clone(), req.clone());
        std::thread::spawn(move || post_json(&u, None, &r))
    };
    // Wait until the first request holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = get(&d.url("/metrics"), None).body;
        if m.contains(r#"keel_instances_busy{pipeline="slow",version="1"} 1"#) {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = post_json(&slow_url, None, &req);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    // Meanwhile another pipeline is unaffected: an endless loop there is
    // stopped at its deadline and recorded; the daemon carries on.
    let r = post_json(&d.url("/v2/models/spin/infer"), None, &req);
    assert_eq!(r.status, 504, "{}", r.body);
    let e = r.json();
    assert_eq!(e["outcome"], "timeout");
    assert_eq!(e["stage"], "loop");
    let id = e["id"].as_str().unwrap().to_string();
    let rec = get(&d.url(&format!("/admin/audit/{id}")), None).json();
    assert_eq!(rec["record"]["outcome"], "timeout");
    assert_eq!(first.join().unwrap().status, 200);
    // SIGTERM while a slow request is in flight: it completes, then the daemon exits.
    let inflight = {
        let (u, r) = (slow_url.clone(), req.clone());
        std::thread::spawn(move || post_json(&u, None, &r))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = get(&d.url("/metrics"), None).body;
        if m.contains(r#"keel_instances_busy{pipeline="slow",version="1"} 1"#) {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = d.stop();
    assert!(status.success(), "{}", d.log());
    assert_eq!(
        inflight.join().unwrap().status,
        200,
        "in-flight request finished"
    );
    assert!(d.log().contains("draining"), "{}", d.log());
}

#[test]
fn sighup_reloads_tokens_without_dropping_requests() {
    let store = deployed_store();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(cfg_dir.path(), "");
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    let url = d.url("/v2/models/penguins/infer");
    let row = oip_request(
        &read_csv(Path::new(&example("current.csv"))).slice(0, 1),
        None,
    );
    let new_token = "rotated-token-0123456789abcd";
    assert_eq!(post_json(&url, Some(new_token), &row).status, 401);
    // Requests keep flowing while the config is swapped.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (u, r, stop) = (url.clone(), row.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(post_json(&u, Some(APP), &r).status);
            }
            statuses
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap()
            + &format!(
                "\n[[tokens]]\nname = \"rotated\"\ntoken = \"{new_token}\"\nroles = [\"infer\"]\n"
            ),
    )
    .unwrap();
    d.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while post_json(&url, Some(new_token), &row).status != 200 {
        assert!(
            Instant::now() < deadline,
            "reload did not take: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = client.join().unwrap();
    assert!(statuses.len() > 5);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let log = get(&d.url("/admin/log"), Some(VIEWER)).json();
    assert_eq!(log["entries"][0]["actor"], "signal:SIGHUP");
    assert_eq!(log["entries"][0]["outcome"], "ok");
}

fn one_row_body() -> std::sync::Arc<dyn Fn(u64) -> bytes::Bytes + Send + Sync> {
    let row = read_csv(Path::new(&example("current.csv"))).slice(0, 1);
    let template = oip_request(&row, Some("ID"));
    let text = serde_json::to_string(&template).unwrap();
    let prefix = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::sync::Arc::new(move |i| {
        bytes::Bytes::from(text.replacen("\"ID\"", &format!("\"{prefix}-{i}\""), 1))
    })
}

#[test]
fn bounded_load_test_reports_throughput_and_percentiles() {
    let store = deployed_store();
    let d = Daemon::start(store.path(), &[]);
    let report = keel_server::loadgen::run_blocking(keel_server::loadgen::LoadSpec {
        addr: d.addr,
        path: "/v2/models/penguins/infer".into(),
        headers: Vec::new(),
        body: one_row_body(),
        rate: None,
        connections: 4,
        duration: Duration::from_secs(3),
        max_requests: Some(3000),
        warmup: Duration::from_millis(300),
        collect_ok_bodies: false,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    eprintln!("load: {}", report.to_json());
    assert!(report.ok() > 0);
    assert_eq!(report.errors, 0, "{}", report.to_json());
    assert_eq!(report.ok(), report.completed, "{}", report.to_json());
    assert!(report.p50_us > 0.0 && report.p50_us <= report.p99_us);
    // Every acknowledged request is in the audit log.
    let m = get(&d.url("/metrics"), None).body;
    let line = m
        .lines()
        .find(|l| l.starts_with("keel_audit_records_total "))
        .unwrap();
    let recorded: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(recorded >= report.ok(), "{recorded} < {}", report.ok());
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_request() {
    let store = deployed_store();
    let d = Daemon::start(store.path(), &[]);
    let addr = d.addr;
    let load = std::thread::spawn(move || {
        keel_server::loadgen::run_blocking(keel_server::loadgen::LoadSpec {
            addr,
            path: "/v2/models/penguins/infer".into(),
            headers: Vec::new(),
            body: one_row_body(),
            rate: None,
            connections: 4,
            duration: Duration::from_secs(5),
            max_requests: None,
            warmup: Duration::ZERO,
            collect_ok_bodies: true,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut d = d;
    d.signal("-KILL");
    let _ = d.child.wait();
    drop(d);
    // Restart on the same port while the client keeps trying.
    let d = Daemon::start_on(store.path(), &addr.to_string(), &[]);
    let report = load.join().unwrap();
    eprintln!("load across the crash: {}", report.to_json());
    assert!(report.errors > 0 || report.ok() > 0);
    let ids: Vec<String> = report
        .ok_bodies
        .iter()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.len() > 10, "{}", report.to_json());
    for id in &ids {
        let r = get(&d.url(&format!("/admin/audit/{id}")), None);
        assert_eq!(
            r.status, 200,
            "acknowledged request {id} is not in the audit log"
        );
    }
    let mut d = d;
    assert!(d.stop().success());
    let o = keel_in(store.path(), &["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn tritonclient_gets_the_right_answers() {
    let python = std::env::var_os("KEEL_TRITON_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/venvs/tritonclient/bin/python"));
    assert!(
        python.exists(),
        "{} missing: `cargo xtask test` installs tritonclient",
        python.display()
    );
    let store = deployed_store();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = write_config(cfg_dir.path(), "");
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    // Expected answers for the rows the client sends (complete rows only).
    let input = PathBuf::from(example("current.csv"));
    let expected = expected_rows(&penguins(), &input);
    let batch = read_csv(&input);
    let complete: Vec<usize> = (0..batch.rows())
        .filter(|&i| batch.columns().iter().all(|c| c.is_valid(i)))
        .collect();
    let exp = cfg_dir.path().join("expected.jsonl");
    std::fs::write(
        &exp,
        complete
            .iter()
            .map(|&i| expected[i].to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let o = Command::new(&python)
        .arg(workspace().join("host/cli/tests/tritonclient/client.py"))
        .args(["--url", &d.addr.to_string(), "--model", "penguins"])
        .args(["--input", input.to_str().unwrap()])
        .args(["--expected", exp.to_str().unwrap()])
        .args(["--token", APP])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "client failed:\n{out}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["ok"], true);
    assert_eq!(last["rows"], complete.len());
    for id in last["ids"].as_array().unwrap() {
        let r = get(
            &d.url(&format!("/admin/audit/{}", id.as_str().unwrap())),
            Some(VIEWER),
        );
        assert_eq!(r.status, 200, "{id}: {}", r.body);
    }
}

#[test]
fn tls_with_rustls() {
    let store = deployed_store();
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let cfg = dir.path().join("serve.toml");
    std::fs::write(&cfg, "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n").unwrap();
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    let root = ureq::tls::Certificate::from_der(cert.cert.der()).to_owned();
    let tls_agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    root,
                ])))
                .build(),
        )
        .build()
        .into();
    let row = oip_request(
        &read_csv(Path::new(&example("current.csv"))).slice(0, 1),
        None,
    );
    let mut r = tls_agent
        .post(&format!("https://{}/v2/models/penguins/infer", d.addr))
        .header("content-type", "application/json")
        .send(&serde_json::to_vec(&row).unwrap()[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["model_name"], "penguins");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = agent()
        .get(&format!("http://{}/v2/health/live", d.addr))
        .call();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);
    // A bad key file is a clear start-up error.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let other = tempfile::tempdir().unwrap();
    let o = keel_cmd(other.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output();
    let o = o.unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("key.pem"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
