//! Prometheus metrics of the daemon: requests and latency per pipeline
//! version and stage, outcomes, refusals, instance-pool use, the audit
//! queue, monitor statistics as gauges and alerts raised; the realized and
//! estimated metrics of performance monitors with their bounds.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;

/// Label pairs; a `Vec` keeps the families generic over label names.
pub type Labels = Vec<(&'static str, String)>;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Latency buckets from 25 µs to ~13 s (doubling): one-row inference sits
/// in the first few, plugin deadlines in the last.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(25e-6, 2.0, 20)
}

/// Registers `metric` under `name` and hands it back (the registry keeps a
/// clone; both count into the same cells).
fn registered<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help, metric.clone());
    metric
}

/// A histogram family over [`latency_buckets`].
fn latency_family() -> Family<Labels, Histogram> {
    Family::new_with_constructor(|| Histogram::new(latency_buckets()))
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// Requests that reached a pipeline, by outcome (ok, error, trap, timeout, rejected).
    pub requests: Family<Labels, Counter>,
    /// Requests answered without running a pipeline, by reason.
    pub refused: Family<Labels, Counter>,
    /// Arrival to answer, per pipeline version.
    pub latency: Family<Labels, Histogram>,
    /// Time in each stage's plugin call.
    pub stage_latency: Family<Labels, Histogram>,
    /// Requests executing per version (each holds one instance set).
    pub busy: Family<Labels, Gauge>,
    /// Requests waiting for an instance set per version.
    pub queued: Family<Labels, Gauge>,
    /// Instance sets created per version (busy + idle).
    pub instance_sets: Family<Labels, Gauge>,
    /// Audit records handed to the store and not yet durable.
    pub audit_pending: Gauge,
    /// Audit records made durable.
    pub audit_records: Counter,
    /// Monitor metric values of the last closed window.
    pub monitor_value: Family<Labels, FloatGauge>,
    /// 1 while a monitor's last closed window alerted.
    pub monitor_alert: Family<Labels, Gauge>,
    /// Windows closed per monitor.
    pub monitor_windows: Family<Labels, Counter>,
    /// Batches monitors skipped because their queue was full.
    pub monitor_dropped: Family<Labels, Counter>,
    /// Alerts raised.
    pub alerts: Family<Labels, Counter>,
    /// Performance monitors' realized and estimated metrics and bounds.
    pub performance: PerformanceGauges,
    /// Shadow requests by result (identical, different, error, dropped).
    pub shadow: Family<Labels, Counter>,
    /// Pipeline versions loaded and serving.
    pub versions_loaded: Gauge,
    /// Admin actions by action and outcome.
    pub admin_actions: Family<Labels, Counter>,
    /// Audit records pushed by nodes (`keel sync push`), by node and result
    /// (accepted, duplicate, lost: pruned on the node before it shipped them).
    pub sync_records: Family<Labels, Counter>,
    /// Recent alerts, newest last (not exported; the admin API lists them).
    pub recent_alerts: std::sync::Mutex<std::collections::VecDeque<serde_json::Value>>,
    /// The last hour per version, per minute (not exported; the console's overview).
    pub recent: crate::recent::Recent,
}

/// How many recent alerts are kept in memory (all are in the store's
/// monitor history and the logs).
pub const RECENT_ALERTS: usize = 256;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("keel");
        let r = &mut registry;
        // Registered in this order, so exported in it.
        Metrics {
            requests: registered(
                r,
                "requests",
                "Inference requests that reached a pipeline, by outcome",
                Family::<Labels, Counter>::default(),
            ),
            refused: registered(
                r,
                "requests_refused",
                "Requests answered without running a pipeline (bad_request, unauthorized, forbidden, too_large, overloaded, duplicate_id, not_found, deadline)",
                Family::<Labels, Counter>::default(),
            ),
            latency: registered(
                r,
                "request_duration_seconds",
                "Inference request latency, arrival to answer, audit record durable",
                latency_family(),
            ),
            stage_latency: registered(
                r,
                "stage_duration_seconds",
                "Time in each stage's plugin call",
                latency_family(),
            ),
            busy: registered(
                r,
                "instances_busy",
                "Instance sets executing a request",
                Family::<Labels, Gauge>::default(),
            ),
            queued: registered(
                r,
                "queue_depth",
                "Requests waiting for an instance set",
                Family::<Labels, Gauge>::default(),
            ),
            instance_sets: registered(
                r,
                "instance_sets",
                "Instance sets created (busy and idle)",
                Family::<Labels, Gauge>::default(),
            ),
            audit_pending: registered(
                r,
                "audit_queue_depth",
                "Audit records waiting to become durable",
                Gauge::default(),
            ),
            audit_records: registered(
                r,
                "audit_records",
                "Audit records made durable",
                Counter::default(),
            ),
            monitor_value: registered(
                r,
                "monitor_metric",
                "A monitor's metric over its last closed window",
                Family::<Labels, FloatGauge>::default(),
            ),
            monitor_alert: registered(
                r,
                "monitor_alert",
                "1 when the monitor's last closed window alerted",
                Family::<Labels, Gauge>::default(),
            ),
            monitor_windows: registered(
                r,
                "monitor_windows",
                "Monitor windows closed",
                Family::<Labels, Counter>::default(),
            ),
            monitor_dropped: registered(
                r,
                "monitor_dropped_batches",
                "Batches a monitor skipped because its queue was full",
                Family::<Labels, Counter>::default(),
            ),
            alerts: registered(
                r,
                "alerts",
                "Alerts raised by monitors",
                Family::<Labels, Counter>::default(),
            ),
            performance: PerformanceGauges::new(r),
            shadow: registered(
                r,
                "shadow_requests",
                "Shadow requests by result (identical, different, error, dropped)",
                Family::<Labels, Counter>::default(),
            ),
            versions_loaded: registered(
                r,
                "pipeline_versions_loaded",
                "Pipeline versions loaded and serving",
                Gauge::default(),
            ),
            admin_actions: registered(
                r,
                "admin_actions",
                "Admin API actions by action and outcome",
                Family::<Labels, Counter>::default(),
            ),
            sync_records: registered(
                r,
                "sync_records",
                "Audit records pushed by nodes, by node and result (accepted, duplicate, lost)",
                Family::<Labels, Counter>::default(),
            ),
            recent_alerts: Default::default(),
            recent: Default::default(),
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts a refusal.
    pub fn refuse(&self, pipeline: &str, reason: &'static str) {
        self.refused
            .get_or_create(&vec![
                ("pipeline", pipeline.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }
}

/// The gauges of performance monitors, per pipeline version, monitor and
/// metric.
pub struct PerformanceGauges {
    /// Performance monitors: the latest realized value of each metric (from
    /// the last closed window that had labelled rows).
    pub realized: Family<Labels, FloatGauge>,
    /// Performance monitors: the latest estimate of each metric (CBPE).
    pub estimated: Family<Labels, FloatGauge>,
    /// Performance monitors: each metric's alert bounds, `side` low or high.
    pub bound: Family<Labels, FloatGauge>,
    /// Performance monitors: the estimate's ±3σ band, `side` low or high.
    pub confidence: Family<Labels, FloatGauge>,
    /// Performance monitors: 1 while the metric's judged value in the last
    /// closed window is out of its bounds.
    pub alert: Family<Labels, Gauge>,
}

impl PerformanceGauges {
    fn new(r: &mut Registry) -> PerformanceGauges {
        PerformanceGauges {
            realized: registered(
                r,
                "performance_realized",
                "A performance monitor's latest realized metric (labelled rows of its last window with labels)",
                Family::<Labels, FloatGauge>::default(),
            ),
            estimated: registered(
                r,
                "performance_estimated",
                "A performance monitor's latest estimated metric (CBPE over its last closed window)",
                Family::<Labels, FloatGauge>::default(),
            ),
            bound: registered(
                r,
                "performance_bound",
                "A performance metric's alert bound (side low or high), from the labelled reference or the config",
                Family::<Labels, FloatGauge>::default(),
            ),
            confidence: registered(
                r,
                "performance_confidence",
                "The latest estimate's confidence band (side low or high): estimate -/+ 3 sampling errors",
                Family::<Labels, FloatGauge>::default(),
            ),
            alert: registered(
                r,
                "performance_alert",
                "1 while a performance metric's judged value in the last closed window is out of its bounds",
                Family::<Labels, Gauge>::default(),
            ),
        }
    }

    /// Sets the performance gauges of one closed window of a
    /// `performance-monitor` (`labels`: pipeline, version, monitor) from its
    /// report's metrics as `(column, name, value, judged-and-alerting)`; see
    /// `keel_algos::performance::monitor` for the layout. A metric the window
    /// has no value for keeps its previous value: the gauges are the latest
    /// known. (Label coverage, `keel_label_coverage`, comes from the label
    /// store, not from here.)
    pub fn record<'a>(
        &self,
        labels: &Labels,
        metrics: impl IntoIterator<Item = (Option<&'a str>, &'a str, f64, Option<bool>)>,
    ) {
        let with = |extra: &[(&'static str, &str)]| {
            let mut l = labels.clone();
            l.extend(extra.iter().map(|(k, v)| (*k, (*v).to_string())));
            l
        };
        for (column, name, value, judged) in metrics {
            let Some(column) = column else { continue };
            let metric = [("metric", name)];
            let family = match column {
                "realized" => &self.realized,
                "estimated" => &self.estimated,
                "bound-low" | "bound-high" => &self.bound,
                "confidence-low" | "confidence-high" => &self.confidence,
                _ => continue,
            };
            let l = match column.rsplit_once('-') {
                Some((_, side @ ("low" | "high"))) => with(&[("metric", name), ("side", side)]),
                _ => with(&metric),
            };
            family.get_or_create(&l).set(value);
            if let Some(alert) = judged {
                self.alert
                    .get_or_create(&with(&metric))
                    .set(i64::from(alert));
            }
        }
    }
}

/// Labels of a pipeline version.
pub fn version_labels(pipeline: &str, version: &str) -> Labels {
    vec![
        ("pipeline", pipeline.to_string()),
        ("version", version.to_string()),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_labels() {
        let m = Metrics::new();
        let mut l = version_labels("penguins", "1.0.0");
        l.push(("outcome", "ok".into()));
        m.requests.get_or_create(&l).inc();
        m.latency
            .get_or_create(&version_labels("penguins", "1.0.0"))
            .observe(0.0002);
        m.refuse("penguins", "overloaded");
        let text = m.render();
        assert!(
            text.contains(
                r#"keel_requests_total{pipeline="penguins",version="1.0.0",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("keel_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keel_requests_refused_total{pipeline="penguins",reason="overloaded"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn performance_gauges_keep_the_latest_value_of_each_kind() {
        let m = Metrics::new();
        let mut l = version_labels("loans", "2.0.0");
        l.push(("monitor", "perf".into()));
        // A labelled window: realized judged (out of bounds), estimate informational.
        m.performance.record(
            &l,
            [
                (Some("realized"), "f1", 0.5, Some(true)),
                (Some("estimated"), "f1", 0.7, None),
                (Some("bound-low"), "f1", 0.6, None),
                (Some("bound-high"), "f1", 0.9, None),
                (Some("region=east"), "f1", 0.1, None),
                (None, "coverage", 1.0, None),
            ],
        );
        // An unlabelled window: only an estimate, judged and fine.
        m.performance
            .record(&l, [(Some("estimated"), "f1", 0.8, Some(false))]);
        let text = m.render();
        let has = |line: &str| assert!(text.contains(line), "{line}\n{text}");
        let base = r#"pipeline="loans",version="2.0.0",monitor="perf",metric="f1""#;
        has(&format!("keel_performance_realized{{{base}}} 0.5"));
        has(&format!("keel_performance_estimated{{{base}}} 0.8"));
        has(&format!(
            r#"keel_performance_bound{{{base},side="low"}} 0.6"#
        ));
        has(&format!(
            r#"keel_performance_bound{{{base},side="high"}} 0.9"#
        ));
        has(&format!("keel_performance_alert{{{base}}} 0"));
        assert!(!text.contains("region=east"), "{text}");
        assert!(!text.contains("coverage"), "{text}");
    }
}
