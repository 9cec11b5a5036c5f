//! Keel's reports as self-contained HTML pages, drawn as inline SVG so they
//! render offline, with JavaScript off, and in print: the drift report (a
//! verdict header, a summary table, an overlaid reference-vs-current
//! histogram per column) and the performance report (a line chart per metric
//! over chunks, label coverage, segments), the explanation page (a
//! waterfall of Shapley values per row, global importance) and a monitor's
//! history as a line chart over windows with its threshold. One drawing code
//! for the CLI's files and the console's pages (`keel serve`'s `/ui`).
//!
//! ```
//! let json = serde_json::json!({
//!     "reference": {"source": "ref.csv", "rows": 4}, "current": {"source": "cur.csv", "rows": 2},
//!     "drift_share": 0.5, "share_drifted": 1.0, "dataset_drift": true,
//!     "columns": [{"column": "x", "kind": "numeric", "method": "psi", "statistic": 0.4,
//!                  "p_value": null, "threshold": 0.2, "drift": true,
//!                  "reference_missing_share": 0.0, "current_missing_share": 0.0,
//!                  "histogram": {"kind": "numeric", "edges": [0.0, 1.0, 2.0],
//!                                "reference": [2, 2], "current": [0, 2]}}]
//! });
//! let html = keel_report::render_drift_html(&json).unwrap();
//! assert!(html.contains(r#"<svg class="keel-hist" data-column="x""#));
//! ```

mod explain;
mod html;
mod model;
mod performance;
mod svg;
mod text;
mod windows;

pub use explain::render_explain_html;
pub use model::{
    CategoricalHistogram, ColumnDrift, ColumnKind, Dataset, DriftReport, Histogram,
    NumericHistogram,
};
pub use performance::{PerformancePage, render_performance_html};
pub use svg::{bar_count, histogram_svg, proportions};
pub use text::{count, escape};
pub use windows::{WindowSeries, window_chart_svg};

/// What is wrong with a drift report, naming where.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The text is not JSON at all.
    #[error("drift report is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A required field is absent.
    #[error("{parent}: missing `{field}`")]
    Missing {
        /// Where the field was expected (`drift report`, `columns[2]`).
        parent: String,
        /// The field.
        field: String,
    },
    /// A value has the wrong type or an impossible value.
    #[error("{path}: {message}")]
    Invalid {
        /// Path of the value (`columns[2].histogram.reference`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Renders a drift report (the JSON `keel drift --format json` prints) as a
/// self-contained HTML page.
pub fn render_drift_html(report_json: &serde_json::Value) -> Result<String, ReportError> {
    DriftReport::from_value(report_json)?.to_html()
}

impl DriftReport {
    /// Renders this report as a self-contained HTML page, after checking it.
    pub fn to_html(&self) -> Result<String, ReportError> {
        self.validate()?;
        Ok(html::render(self))
    }
}
