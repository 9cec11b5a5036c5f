//! The drift report page: one self-contained HTML file (inline CSS, inline
//! SVG, no script, no external resource) that opens offline and prints.
//!
//! The "drifted only" filter is a checkbox and a CSS `:has()` rule rather
//! than script, so the page behaves the same with JavaScript off.

use crate::model::{ColumnDrift, DriftReport};
use crate::svg::{CUR_COLOUR, REF_COLOUR, histogram_svg};
use crate::text::{count, escape, percent, stat};
use std::fmt::Write;

/// Full names of the methods the drift command uses, for tooltips.
fn method_name(method: &str) -> Option<&'static str> {
    Some(match method {
        "psi" => "Population stability index",
        "ks" => "Kolmogorov–Smirnov test",
        "chisquare" => "Chi-square test",
        "z" => "Z-test for proportions",
        "jensenshannon" => "Jensen–Shannon distance",
        "wasserstein" => "Wasserstein distance (normed)",
        "hellinger" => "Hellinger distance",
        "linf" => "L∞ distance between category shares",
        _ => return None,
    })
}

const STYLE: &str = r#"
:root { --ref: REF; --cur: CUR; --drift: #c62828; --drift-bg: #fdecea; --ok: #2e7d32; --ok-bg: #e8f5e9;
  --na: #6b7280; --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --card: #fff; --page: #f5f7fa; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
h2 { font-size: 17px; margin: 32px 0 12px; font-weight: 650; }
h3 { font-size: 15px; margin: 0; font-weight: 650; overflow-wrap: anywhere; }
.sub { color: var(--muted); margin: 0 0 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; }
.verdict { display: flex; flex-wrap: wrap; gap: 16px 40px; align-items: center; border-left: 6px solid var(--ok); }
.verdict.drift { border-left-color: var(--drift); }
.verdict .headline { font-size: 24px; font-weight: 700; color: var(--ok); }
.verdict.drift .headline { color: var(--drift); }
.verdict .detail { color: var(--muted); }
.meter { position: relative; width: 260px; height: 10px; border-radius: 5px; background: var(--line); margin-top: 6px; }
.meter .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 5px; background: var(--ok); }
.verdict.drift .meter .fill { background: var(--drift); }
.meter .mark { position: absolute; top: -4px; bottom: -4px; width: 2px; background: var(--ink); }
.sources { display: grid; grid-template-columns: auto 1fr auto; gap: 2px 14px; margin: 0; }
.sources dt { font-weight: 600; }
.sources dd { margin: 0; overflow-wrap: anywhere; }
.sources .rows { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; opacity: .75; }
.swatch.ref { background: var(--ref); } .swatch.cur { background: var(--cur); }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { padding: 7px 10px; text-align: left; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.drift td:first-child { box-shadow: inset 3px 0 0 var(--drift); }
tr:last-child td { border-bottom: 0; }
td a { color: inherit; text-decoration: none; border-bottom: 1px dotted var(--muted); overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.badge.drift { color: var(--drift); background: var(--drift-bg); }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.na { color: var(--na); background: #eef0f2; }
.method { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.filter { float: right; font-size: 13px; color: var(--muted); font-weight: 400; user-select: none; }
.columns { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
.column header { display: flex; justify-content: space-between; gap: 12px; align-items: baseline; }
.column .facts { color: var(--muted); font-size: 13px; margin: 4px 0 8px; }
.column .facts b { color: var(--ink); font-weight: 600; }
.column.drift { border-top: 3px solid var(--drift); }
.nochart { color: var(--muted); font-style: italic; padding: 24px 0; text-align: center; border: 1px dashed var(--line); border-radius: 6px; }
.keel-hist { display: block; font-size: 12px; }
.keel-hist text { fill: var(--muted); }
.keel-hist .legend text { fill: var(--ink); font-size: 12.5px; }
.keel-hist rect.bar:hover { fill-opacity: .85; }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
body:has(#drifted-only:checked) [data-drift="false"] { display: none; }
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  .filter { display: none; }
  .card, table { border-color: #ccc; }
  .columns { grid-template-columns: 1fr; }
  .keel-hist { max-width: 640px; }
  .column, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
  td a { border-bottom: 0; }
}
"#;

/// Renders the page.
pub fn render(report: &DriftReport) -> String {
    let mut s = String::with_capacity(16 * 1024 + report.columns.len() * 8 * 1024);
    let drifted = report.drifted();
    let total = report.columns.len();
    let (verdict_class, headline) = if report.dataset_drift {
        ("drift", "Dataset drift detected")
    } else {
        ("ok", "No dataset drift")
    };
    let title = format!(
        "Drift report: {} vs {}",
        report.current.source, report.reference.source
    );
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="keel-report {version}">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<h1>Data drift report</h1>
<p class="sub">current data compared with the reference it is expected to resemble</p>
"#,
        version = env!("CARGO_PKG_VERSION"),
        title = escape(&title),
        style = STYLE.replace("REF", REF_COLOUR).replace("CUR", CUR_COLOUR),
    );
    // The headline verdict, then how it was reached.
    let fill = (report.share_drifted * 100.0).clamp(0.0, 100.0);
    let mark = (report.drift_share * 100.0).clamp(0.0, 100.0);
    let cmp = if report.dataset_drift { "≥" } else { "&lt;" };
    let _ = write!(
        s,
        r#"<section class="card verdict {verdict_class}" id="verdict">
<div><div class="headline" id="dataset-verdict">{headline}</div>
<div class="detail">{drifted} of {total} columns drifted: share {share} {cmp} threshold {threshold}</div>
<div class="meter" title="share of drifted columns {share}; the dataset drifts at {threshold}"><div class="fill" style="width:{fill:.1}%"></div><div class="mark" style="left:calc({mark:.1}% - 1px)"></div></div></div>
<dl class="sources">
<dt><span class="swatch ref"></span>reference</dt><dd>{rs}</dd><dd class="rows">{rr} rows</dd>
<dt><span class="swatch cur"></span>current</dt><dd>{cs}</dd><dd class="rows">{cr} rows</dd>
</dl>
</section>
"#,
        share = percent(report.share_drifted),
        threshold = percent(report.drift_share),
        rs = escape(&report.reference.source),
        rr = count(report.reference.rows),
        cs = escape(&report.current.source),
        cr = count(report.current.rows),
    );

    // Drifted columns first, then the rest, each group in report order.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&i| !report.columns[i].drift);

    let _ = write!(
        s,
        r#"<h2>Columns <label class="filter"><input type="checkbox" id="drifted-only"> drifted only</label></h2>
<table id="summary">
<thead><tr><th>column</th><th>kind</th><th>method</th><th class="num">statistic</th><th class="num">p-value</th><th class="num">threshold</th><th>verdict</th><th class="num">missing (ref)</th><th class="num">missing (cur)</th></tr></thead>
<tbody>
"#
    );
    for &i in &order {
        summary_row(&mut s, i, &report.columns[i]);
    }
    s.push_str("</tbody>\n</table>\n<h2>Distributions</h2>\n<div class=\"columns\">\n");
    for &i in &order {
        column_card(&mut s, i, &report.columns[i]);
    }
    let _ = write!(
        s,
        r#"</div>
<footer>Bars show each side's share of its own non-missing values, so data sets of different sizes compare; values outside the histogram's edges are counted in the dashed “&lt; min” and “&gt; max” bars. Hover a bar for exact counts. Generated by keel-report {version}.</footer>
</main>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    s
}

fn verdict_badge(c: &ColumnDrift) -> &'static str {
    match (c.statistic, c.drift) {
        (_, true) => r#"<span class="badge drift">drift</span>"#,
        (None, false) => {
            r#"<span class="badge na" title="no values to compare">not evaluated</span>"#
        }
        (Some(_), false) => r#"<span class="badge ok">no drift</span>"#,
    }
}

fn method_cell(method: &str) -> String {
    match method_name(method) {
        Some(full) => format!(
            r#"<span class="method" title="{full}">{}</span>"#,
            escape(method)
        ),
        None => format!(r#"<span class="method">{}</span>"#, escape(method)),
    }
}

fn summary_row(s: &mut String, i: usize, c: &ColumnDrift) {
    let dash = "—".to_string();
    let _ = writeln!(
        s,
        r##"<tr class="{class}" data-drift="{drift}"><td><a href="#col-{i}">{name}</a></td><td>{kind}</td><td>{method}</td><td class="num">{stat}</td><td class="num">{p}</td><td class="num">{threshold}</td><td>{badge}</td><td class="num">{rm}</td><td class="num">{cm}</td></tr>"##,
        class = if c.drift { "drift" } else { "ok" },
        drift = c.drift,
        name = escape(&c.column),
        kind = c.kind.as_str(),
        method = method_cell(&c.method),
        stat = c.statistic.map(stat).unwrap_or_else(|| dash.clone()),
        p = c.p_value.map(stat).unwrap_or(dash),
        threshold = stat(c.threshold),
        badge = verdict_badge(c),
        rm = percent(c.reference_missing_share),
        cm = percent(c.current_missing_share),
    );
}

fn column_card(s: &mut String, i: usize, c: &ColumnDrift) {
    let statistic = c.statistic.map(stat).unwrap_or_else(|| "—".into());
    let p = c
        .p_value
        .map(|p| format!(", p-value <b>{}</b>", stat(p)))
        .unwrap_or_default();
    let _ = write!(
        s,
        r#"<section class="card column {class}" id="col-{i}" data-drift="{drift}">
<header><h3>{name}</h3>{badge}</header>
<div class="facts">{kind} · {method} <b>{statistic}</b>{p} vs threshold <b>{threshold}</b> · missing {rm} → {cm}</div>
"#,
        class = if c.drift { "drift" } else { "ok" },
        drift = c.drift,
        name = escape(&c.column),
        badge = verdict_badge(c),
        kind = c.kind.as_str(),
        method = method_cell(&c.method),
        threshold = stat(c.threshold),
        rm = percent(c.reference_missing_share),
        cm = percent(c.current_missing_share),
    );
    match &c.histogram {
        Some(h) => s.push_str(&histogram_svg(&c.column, h)),
        None => {
            s.push_str(r#"<div class="nochart">no histogram in the report for this column</div>"#)
        }
    }
    s.push_str("\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;
    use serde_json::json;

    fn page(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v = sample();
        edit(&mut v);
        render(&DriftReport::from_value(&v).unwrap())
    }

    #[test]
    fn every_string_from_the_data_is_escaped() {
        let evil = r#"<script>alert("x")</script>&'"#;
        let html = page(|v| {
            v["reference"]["source"] = json!(evil);
            v["current"]["source"] = json!(evil);
            v["columns"][0]["column"] = json!(evil);
            v["columns"][1]["method"] = json!(evil);
            v["columns"][1]["histogram"]["categories"][0] = json!(evil);
        });
        assert!(!html.contains("<script"), "no script tag at all");
        assert!(!html.contains(evil));
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;";
        // Title, two sources, table cell, card heading, chart attribute x2
        // (data-column, aria-label), method x2, category label, its tooltip x2.
        assert!(html.matches(escaped).count() >= 10, "{html}");
    }

    #[test]
    fn page_is_self_contained() {
        let html = page(|_| {});
        for needle in ["http://", "https://", "<link", "<script", "@import", "url("] {
            let hits: Vec<_> = html.match_indices(needle).collect();
            // The only URL allowed is the SVG namespace, which is a name, not a fetch.
            let ok = needle == "http://"
                && hits.len() == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
            assert!(hits.is_empty() || ok, "{needle} found in the page");
        }
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn header_gives_the_verdict_share_and_sources() {
        let html = page(|_| {});
        assert!(html.contains(
            r#"<div class="headline" id="dataset-verdict">Dataset drift detected</div>"#
        ));
        assert!(html.contains("1 of 2 columns drifted: share 50.0% ≥ threshold 50.0%"));
        assert!(html.contains("<dd>ref.csv</dd><dd class=\"rows\">1,000 rows</dd>"));
        let html = page(|v| {
            v["dataset_drift"] = json!(false);
            v["share_drifted"] = json!(0.25);
        });
        assert!(html.contains(">No dataset drift</div>"));
        assert!(html.contains("1 of 2 columns drifted: share 25.0% &lt; threshold 50.0%"));
    }

    #[test]
    fn drifted_columns_come_first_and_dashes_stand_for_missing_values() {
        let html = page(|v| {
            v["columns"][0]["drift"] = json!(false);
            v["columns"][1]["drift"] = json!(true);
            v["columns"][0].as_object_mut().unwrap().remove("histogram");
        });
        let island = html.find(r##"href="#col-1">island"##).unwrap();
        let age = html.find(r##"href="#col-0">age"##).unwrap();
        assert!(island < age, "the drifted column leads the table");
        // island is a distance: no p-value.
        let row = &html[island..html[island..].find("</tr>").unwrap() + island];
        assert!(row.contains(r#"<td class="num">—</td>"#), "{row}");
        assert!(row.contains(r#"title="Jensen–Shannon distance""#), "{row}");
        assert_eq!(html.matches(r#"<svg class="keel-hist""#).count(), 1);
        assert!(html.contains("no histogram in the report for this column"));
    }
}
