//! A monitor's history as a line chart over its closed windows: one value
//! per window (a drift statistic or p-value, a group rate, a performance
//! metric), the threshold it is judged against as a dashed line, alerted
//! windows shaded and ringed. The same drawing code as the performance
//! report's charts (`performance::Plot`), so the console and the CLI's pages
//! look alike.

use crate::performance::{Plot, Point};
use crate::text::escape;

/// One metric of one monitor over its windows, oldest first.
#[derive(Debug, Clone, Default)]
pub struct WindowSeries {
    /// What is plotted (`p-value of ks`, `psi`, `share-drifted`).
    pub metric: String,
    /// The column it is about, if any.
    pub column: Option<String>,
    /// Each window's label for its tooltip (`window 3 · 2026-12-07T22:10:00Z`).
    pub windows: Vec<String>,
    /// Each window's value (`None`: not measured in that window).
    pub values: Vec<Option<f64>>,
    /// Whether each window alerted on this metric.
    pub alerts: Vec<bool>,
    /// The threshold, drawn as a dashed line labelled `threshold`.
    pub threshold: Option<f64>,
}

/// The chart as inline SVG: `<svg class="keel-window" data-metric=… data-column=…>`
/// with a `<line class="threshold">` when a threshold is set.
pub fn window_chart_svg(series: &WindowSeries) -> String {
    let points: Vec<Point> = series
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            value: v.filter(|v| v.is_finite()),
            alert: series.alerts.get(i).copied().unwrap_or(false),
            ..Point::default()
        })
        .collect();
    let values = series
        .values
        .iter()
        .flatten()
        .copied()
        .chain(series.threshold);
    let min = if series.values.iter().flatten().all(|v| *v >= 0.0) {
        0.0
    } else {
        f64::NEG_INFINITY
    };
    let mut labels = series.windows.clone();
    labels.resize(points.len(), String::new());
    let plot = Plot::new(labels, "window", values, (min, f64::INFINITY));
    let column = series.column.as_deref().unwrap_or("");
    let attrs = format!(
        "class=\"keel-window\" data-metric=\"{}\" data-column=\"{}\"",
        escape(&series.metric),
        escape(column)
    );
    let label = match &series.column {
        Some(c) => format!("{} of {c} per window", series.metric),
        None => format!("{} per window", series.metric),
    };
    let lines: Vec<(f64, &str, &str)> = series
        .threshold
        .map(|t| (t, "threshold", "threshold"))
        .into_iter()
        .collect();
    plot.chart(&attrs, &label, &points, &lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn threshold_line_alert_rings_and_escaped_names() {
        let s = WindowSeries {
            metric: "psi".into(),
            column: Some("a<b".into()),
            windows: vec!["w0".into(), "w1".into(), "w2".into()],
            values: vec![Some(0.05), None, Some(0.4)],
            alerts: vec![false, false, true],
            threshold: Some(0.2),
        };
        let svg = window_chart_svg(&s);
        assert!(
            svg.starts_with(
                "<svg class=\"keel-window\" data-metric=\"psi\" data-column=\"a&lt;b\""
            )
        );
        assert!(
            svg.contains("<line class=\"threshold\" data-value=\"0.2\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<circle class=\"alert\"").count(), 1);
        // Two measured windows, one each side of the gap: dots but no line through the gap.
        assert_eq!(svg.matches("<circle class=\"realized\"").count(), 2);
        assert!(!svg.contains("<polyline"));
        assert!(svg.ends_with("</svg>"));
    }
}
