//! The console (`keel serve`'s `/ui`) against a real daemon on loopback with
//! the penguins pipeline deployed (its input-drift monitor windowed at 30
//! rows), served traffic, a drifted window and its alert: every page in
//! headless Chromium (the DOM it built, no console message, a screenshot
//! under target/console-screenshots/), an admin action through the
//! confirmation form that changes the traffic and lands in the admin log,
//! and, with tokens, login, logout, CSRF and roles over plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::serve::{oip_request, read_csv};

use common::chromium::{Tag, chromium, screenshot, start_tags};
use common::daemon::*;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Rows per input-drift window.
const WINDOW: usize = 30;
/// Single-row requests after the two windows.
const SINGLES: usize = 20;

/// The penguins example as `version`, its input-drift monitor closing a
/// window every [`WINDOW`] rows.
fn windowed_penguins(dir: &Path, version: &str) -> PathBuf {
    let text = std::fs::read_to_string(example("pipeline.toml")).unwrap();
    let at =
        "at = \"input\"          # observe raw input; its reference is the pipeline reference\n";
    assert!(text.contains(at) && text.contains("version = \"1.0.0\""));
    let text = text
        .replacen(at, &format!("{at}window = {{ rows = {WINDOW} }}\n"), 1)
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""));
    std::fs::copy(example("reference.csv"), dir.join("reference.csv")).unwrap();
    let p = dir.join(format!("penguins-{version}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A store with penguins 1.0.0 and 1.1.0 (the one serving) deployed.
fn deployed(dir: &Path) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    for v in ["1.0.0", "1.1.0"] {
        let spec = windowed_penguins(dir, v);
        let o = keel_in(
            store.path(),
            &["pipeline", "deploy", spec.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    store
}

/// The four measurements, each with how far a drifted window moves it.
const SHIFTS: [(&str, f64); 4] = [
    ("bill_length_mm", 15.0),
    ("bill_depth_mm", 5.0),
    ("flipper_length_mm", 40.0),
    ("body_mass_g", 1500.0),
];

/// `n` rows of `file` (every `step`-th, round), as a CSV file in `dir`; with
/// `drift`, every measurement moved by its [`SHIFTS`] (four of the six
/// columns the monitor watches: over its `drift_share` of 0.5).
fn sample(dir: &Path, file: &str, n: usize, step: usize, drift: bool) -> PathBuf {
    let text = std::fs::read_to_string(example(file)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let cols: Vec<&str> = header.split(',').collect();
    let mut out = vec![header.to_string()];
    for i in 0..n {
        let mut f: Vec<String> = rows[(i * step) % rows.len()]
            .split(',')
            .map(str::to_string)
            .collect();
        for (name, shift) in SHIFTS.iter().filter(|_| drift) {
            let c = cols.iter().position(|c| c == name).unwrap();
            if let Ok(x) = f[c].parse::<f64>() {
                f[c] = format!("{:.1}", x + shift);
            }
        }
        out.push(f.join(","));
    }
    let p = dir.join(format!("{file}-{n}-{drift}.csv"));
    std::fs::write(&p, out.join("\n") + "\n").unwrap();
    p
}

/// Sends each row of `csv` as its own request with id `prefix-i`.
fn send_rows(d: &Daemon, csv: &Path, prefix: &str, token: Option<&str>) -> Vec<Value> {
    let batch = read_csv(csv);
    (0..batch.rows())
        .map(|i| {
            let req = oip_request(&batch.slice(i, 1), Some(&format!("{prefix}-{i}")));
            let r = post_json(&d.url("/v2/models/penguins/infer"), token, &req);
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        })
        .collect()
}

/// Sends all of `csv` as one request with id `id`.
fn send_batch(d: &Daemon, csv: &Path, id: &str) -> Value {
    let req = oip_request(&read_csv(csv), Some(id));
    let r = post_json(&d.url("/v2/models/penguins/infer"), None, &req);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Waits for the monitor thread to raise an alert.
fn wait_for_alert(d: &Daemon, token: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = get(&d.url("/admin/alerts"), token).json();
        if a["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert was raised; metrics: {}\nhistory: {}\nlog:\n{}",
            get(&d.url("/metrics"), token)
                .body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.contains("bucket"))
                .collect::<Vec<_>>()
                .join("\n"),
            get(&d.url("/admin/monitors"), token).body,
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn screenshots_dir() -> PathBuf {
    let d = workspace().join("target").join("console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The page's DOM as Chromium built it, after checking Chromium logged no
/// console message (script errors and Content-Security-Policy refusals
/// both land there); and its screenshot under target/console-screenshots/.
fn dom_and_shot(dir: &Path, name: &str, url: &str) -> String {
    let dom = chromium(
        dir,
        name,
        &["--dump-dom".into(), "--enable-logging=stderr".into()],
        url,
    );
    let log = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap();
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{name}: console messages:\n{}",
        console.join("\n")
    );
    let png = screenshot(dir, url, (1400, 1100), 20_000);
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
    String::from_utf8(dom).unwrap()
}

fn with_class<'a>(tags: &'a [Tag], name: &str, classes: &[&str]) -> Vec<&'a Tag> {
    tags.iter()
        .filter(|t| t.name == name && t.has_class(classes))
        .collect()
}

/// The text between a start tag and the next `<`.
fn text_after<'a>(html: &'a str, t: &Tag) -> &'a str {
    let rest = &html[t.end..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

/// The `value` of the hidden `csrf` input in a page.
fn csrf_of(html: &str) -> String {
    start_tags(html)
        .into_iter()
        .find(|t| t.name == "input" && t.attr("name") == Some("csrf"))
        .and_then(|t| t.attr("value").map(str::to_string))
        .expect("no csrf field in the page")
}

#[test]
fn every_page_in_chromium_and_an_admin_action_through_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let store = deployed(dir.path());
    let d = Daemon::start(store.path(), &[]);
    // A window of reference rows (every 7th, so the species mix), then a
    // window of heavier, longer-flippered birds with longer, deeper bills:
    // that one drifts. Each window is one request; then single rows.
    send_batch(
        &d,
        &sample(dir.path(), "reference.csv", WINDOW, 7, false),
        "clean",
    );
    let answer = send_batch(
        &d,
        &sample(dir.path(), "current.csv", WINDOW, 1, true),
        "drift",
    );
    assert_eq!(answer["model_version"], "1.1.0");
    let alerts = wait_for_alert(&d, None);
    assert_eq!(alerts["alerts"][0]["monitor"], "input-drift");
    send_rows(
        &d,
        &sample(dir.path(), "current.csv", SINGLES, 1, false),
        "row",
        None,
    );
    let records = 2 + SINGLES as u64;

    // Overview: the pipeline, its versions, the last hour and the open alert.
    let html = dom_and_shot(dir.path(), "overview", &d.url("/ui"));
    let tags = start_tags(&html);
    assert!(
        tags.iter()
            .any(|t| t.name == "section" && t.attr("data-pipeline") == Some("penguins"))
    );
    let rows = with_class(&tags, "tr", &["version"]);
    assert_eq!(
        rows.iter()
            .map(|t| t.attr("data-version").unwrap())
            .collect::<Vec<_>>(),
        ["1.0.0", "1.1.0"]
    );
    let requests: Vec<&str> = with_class(&tags, "td", &["requests"])
        .iter()
        .map(|t| text_after(&html, t))
        .collect();
    assert_eq!(requests, ["0", &records.to_string()]);
    let p50 = with_class(&tags, "td", &["p50"]);
    assert!(
        text_after(&html, p50[1]).ends_with(" ms") || text_after(&html, p50[1]).ends_with(" µs")
    );
    assert!(with_class(&tags, "span", &["badge", "stable"]).len() == 1);
    let open: Vec<&str> = with_class(&tags, "span", &["badge", "alert"])
        .iter()
        .map(|t| text_after(&html, t))
        .collect();
    assert!(
        open.iter().any(|a| a.starts_with("input-drift: ")),
        "{open:?}"
    );

    // The version page: plugins with digests, a chart per column with the
    // threshold line, the drifted window ringed.
    let html = dom_and_shot(
        dir.path(),
        "version",
        &d.url("/ui/pipelines/penguins/1.1.0"),
    );
    let tags = start_tags(&html);
    let kinds: Vec<&str> = tags.iter().filter_map(|t| t.attr("data-kind")).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "stage").count(), 4);
    assert_eq!(kinds.iter().filter(|k| **k == "monitor").count(), 3);
    let charts: Vec<&Tag> = tags
        .iter()
        .filter(|t| t.name == "svg" && t.has_class(&["keel-window"]))
        .collect();
    let mass = charts
        .iter()
        .find(|t| t.attr("data-column") == Some("body_mass_g"))
        .expect("no body_mass_g chart");
    assert_eq!(mass.attr("data-metric"), Some("p-value (ks)"));
    let thresholds: Vec<&Tag> = with_class(&tags, "line", &["threshold"]);
    assert!(thresholds.len() >= charts.len() - 1 && !thresholds.is_empty());
    assert!(
        thresholds
            .iter()
            .any(|t| t.attr("data-value") == Some("0.05"))
    );
    assert!(
        !with_class(&tags, "circle", &["alert"]).is_empty(),
        "no alerted window ringed"
    );

    // Alerts: the drift alert, open, no sink configured.
    let html = dom_and_shot(dir.path(), "alerts", &d.url("/ui/alerts?pipeline=penguins"));
    let tags = start_tags(&html);
    let rows = with_class(&tags, "tr", &["alert"]);
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|t| t.attr("data-pipeline") == Some("penguins"))
    );
    assert!(
        rows.iter()
            .any(|t| t.attr("data-monitor") == Some("input-drift"))
    );
    assert!(html.contains("no sink configured"));
    let none = get(&d.url("/ui/alerts?pipeline=nope"), None).body;
    assert!(!none.contains("<tr class=\"alert\""));

    // Audit: newest first, paged; a record's lineage carries the digests the
    // admin API reports.
    let html = dom_and_shot(dir.path(), "audit", &d.url("/ui/audit"));
    let tags = start_tags(&html);
    let seqs: Vec<u64> = with_class(&tags, "tr", &["record"])
        .iter()
        .map(|t| t.attr("data-seq").unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (0..records).rev().collect::<Vec<_>>());
    let older = get(&d.url("/ui/audit?before=10"), None).body;
    assert_eq!(
        start_tags(&older)
            .iter()
            .filter(|t| t.has_class(&["record"]))
            .count(),
        10
    );
    let lineage = get(&d.url("/admin/audit/drift"), None).json();
    let html = dom_and_shot(dir.path(), "record", &d.url("/ui/audit/drift"));
    let tags = start_tags(&html);
    let shown: Vec<&str> = tags.iter().filter_map(|t| t.attr("data-digest")).collect();
    for p in lineage["lineage"]["plugins"].as_array().unwrap() {
        for key in ["digest", "config_digest"] {
            let dg = p[key].as_str().unwrap();
            assert!(
                shown.contains(&dg),
                "{key} {dg} of {} not on the page",
                p["stage"]
            );
        }
    }
    let r = &lineage["record"];
    assert!(shown.contains(&r["input_digest"].as_str().unwrap()));
    assert!(shown.contains(&r["output_digest"].as_str().unwrap()));

    // Registry, then promote 1.0.0 through the confirmation form.
    let html = dom_and_shot(dir.path(), "registry", &d.url("/ui/registry"));
    let confirm = start_tags(&html)
        .into_iter()
        .filter_map(|t| t.attr("href").map(str::to_string))
        .find(|h| h.contains("action=promote") && h.contains("version=1.0.0"))
        .expect("no promote link for 1.0.0");
    let page = get(&d.url(&confirm), None);
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&page.body);
    let before = get(&d.url("/admin/log"), None).json()["entries"]
        .as_array()
        .unwrap()
        .len();
    let form = |csrf: &str| format!("csrf={csrf}&pipeline=penguins&version=1.0.0");
    let forged = post_form(&d.url("/ui/registry/promote"), None, &form("forged"));
    assert_eq!(forged.status, 403, "{}", forged.body);
    let done = post_form(&d.url("/ui/registry/promote"), None, &form(&csrf));
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.header("location")
            .unwrap()
            .starts_with("/ui/registry?done=")
    );
    let traffic = get(&d.url("/admin/pipelines/penguins/traffic"), None).json();
    assert_eq!(traffic["stable"], "1.0.0");
    let log = get(&d.url("/admin/log"), None).json();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        before + 1,
        "the forged post must not be logged"
    );
    assert_eq!(entries[0]["action"], "traffic.promote");
    assert_eq!(entries[0]["actor"], "anonymous");
    assert_eq!(entries[0]["outcome"], "ok");
    let next = send_rows(
        &d,
        &sample(dir.path(), "current.csv", 1, 1, false),
        "after",
        None,
    );
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["model_version"], "1.0.0");
}

/// An agent that hands back redirects instead of following them.
fn no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
    Answer {
        status: resp.status().as_u16(),
        headers: resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// `GET` with the session cookie, if any.
fn get_page(url: &str, cookie: Option<&str>) -> Answer {
    let mut r = no_redirects().get(url);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    answer(r.call().unwrap())
}

/// A form `POST` with the session cookie, if any.
fn post_form(url: &str, cookie: Option<&str>, body: &str) -> Answer {
    let mut r = no_redirects()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    answer(r.send(body.as_bytes()).unwrap())
}

const OPS: &str = "ops-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789ab";
const APP: &str = "app-token-0123456789abcdef";

/// Logs in with `token`: the session cookie (`keel_session=…`).
fn login(d: &Daemon, token: &str) -> String {
    let r = post_form(&d.url("/ui/login"), None, &format!("token={token}"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/ui"));
    let set = r.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[test]
fn login_logout_csrf_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let store = deployed(dir.path());
    let cfg = dir.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[tokens]]\nname = \"ops\"\ntoken = \"{OPS}\"\nroles = [\"admin\"]\n\
             [[tokens]]\nname = \"viewer\"\ntoken = \"{VIEWER}\"\nroles = [\"read\"]\n\
             [[tokens]]\nname = \"app\"\ntoken = \"{APP}\"\nroles = [\"infer\"]\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(store.path(), &["--config", cfg.to_str().unwrap()]);
    // No session: every page sends to the login page; a bad token or one
    // without `read` gets no session.
    for page in [
        "/ui",
        "/ui/audit",
        "/ui/registry",
        "/ui/pipelines/penguins/1.1.0",
    ] {
        let r = get_page(&d.url(page), None);
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/ui/login")),
            "{page}"
        );
    }
    assert_eq!(get_page(&d.url("/ui/login"), None).status, 200);
    let bad = post_form(&d.url("/ui/login"), None, "token=not-a-token-at-all");
    assert_eq!(bad.status, 401);
    assert!(bad.header("set-cookie").is_none() && bad.body.contains("unknown token"));
    let app = post_form(&d.url("/ui/login"), None, &format!("token={APP}"));
    assert_eq!(app.status, 403);
    assert!(app.header("set-cookie").is_none());
    // A made-up session id is no session.
    let fake = "keel_session=00000000000000000000000000000000";
    assert_eq!(get_page(&d.url("/ui"), Some(fake)).status, 303);

    // The read-only viewer sees the pages, no action buttons, and is refused
    // behind them even with its own valid CSRF token.
    let viewer = login(&d, VIEWER);
    let overview = get_page(&d.url("/ui"), Some(&viewer));
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("<span id=\"viewer\">viewer</span>"));
    let registry = get_page(&d.url("/ui/registry"), Some(&viewer)).body;
    assert!(!registry.contains("Promote…") && !registry.contains("/ui/registry/confirm"));
    let viewer_csrf = csrf_of(&registry);
    let confirm = "/ui/registry/confirm?action=promote&pipeline=penguins&version=1.0.0";
    assert_eq!(get_page(&d.url(confirm), Some(&viewer)).status, 403);
    let form = |csrf: &str| format!("csrf={csrf}&pipeline=penguins&version=1.0.0");
    let r = post_form(
        &d.url("/ui/registry/promote"),
        Some(&viewer),
        &form(&viewer_csrf),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("lacks the `admin` role"));

    // The admin: buttons, a confirmation, CSRF checked per session.
    let ops = login(&d, OPS);
    let registry = get_page(&d.url("/ui/registry"), Some(&ops)).body;
    assert!(registry.contains("Promote…"));
    let page = get_page(&d.url(confirm), Some(&ops));
    assert_eq!(page.status, 200);
    let ops_csrf = csrf_of(&page.body);
    assert_ne!(ops_csrf, viewer_csrf);
    for wrong in ["", "forged", viewer_csrf.as_str()] {
        let r = post_form(&d.url("/ui/registry/promote"), Some(&ops), &form(wrong));
        assert_eq!(r.status, 403, "csrf {wrong:?}: {}", r.body);
    }
    // Without the cookie the form is a login redirect, not an action.
    assert_eq!(
        post_form(&d.url("/ui/registry/promote"), None, &form(&ops_csrf)).status,
        303
    );
    assert_eq!(
        get(&d.url("/admin/pipelines/penguins/traffic"), Some(OPS)).json()["stable"],
        Value::Null
    );
    let r = post_form(&d.url("/ui/registry/promote"), Some(&ops), &form(&ops_csrf));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        get(&d.url("/admin/pipelines/penguins/traffic"), Some(OPS)).json()["stable"],
        "1.0.0"
    );
    let log = get(&d.url("/admin/log"), Some(OPS)).json();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["actor"], "ops");
    assert_eq!(entries[0]["action"], "traffic.promote");
    assert_eq!(entries[0]["detail"], json!({"version": "1.0.0"}));

    // Logout forgets the session (CSRF-checked too) and clears the cookie.
    assert_eq!(
        post_form(&d.url("/ui/logout"), Some(&ops), "csrf=forged").status,
        403
    );
    let out = post_form(
        &d.url("/ui/logout"),
        Some(&ops),
        &format!("csrf={ops_csrf}"),
    );
    assert_eq!(
        (out.status, out.header("location")),
        (303, Some("/ui/login"))
    );
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(get_page(&d.url("/ui"), Some(&ops)).status, 303);
    assert_eq!(get_page(&d.url("/ui"), Some(&viewer)).status, 200);
}

/// Every metric docs/grafana/keel.json queries, as the family name
/// Prometheus sees (`keel_requests_total` → `keel_requests`).
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(workspace().join("docs/grafana/keel.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(at) = rest.find("keel_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(family.to_string());
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn grafana_dashboard_queries_only_exported_metrics() {
    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 15, "{wanted:?}");
    let dir = tempfile::tempdir().unwrap();
    let store = deployed(dir.path());
    let d = Daemon::start(store.path(), &[]);
    // Families without a sample are not exported: give each one. Two
    // windows (the second drifts: monitor gauges, windows, an alert), a
    // shadow copy (an admin action too), a refused request.
    send_batch(
        &d,
        &sample(dir.path(), "reference.csv", WINDOW, 7, false),
        "clean",
    );
    send_batch(
        &d,
        &sample(dir.path(), "current.csv", WINDOW, 1, true),
        "drift",
    );
    wait_for_alert(&d, None);
    let r = put_json(
        &d.url("/admin/pipelines/penguins/traffic"),
        None,
        &json!({"shadow": "1.0.0"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    send_batch(
        &d,
        &sample(dir.path(), "current.csv", 1, 1, false),
        "shadowed",
    );
    assert_eq!(
        post_json(
            &d.url("/v2/models/penguins/infer"),
            None,
            &json!({"inputs": 1})
        )
        .status,
        400
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let m = get(&d.url("/metrics"), None).body;
        if m.contains("keel_shadow_requests_total") || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let families: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|m| !families.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not export: {missing:?}\nexported: {families:?}"
    );
}
