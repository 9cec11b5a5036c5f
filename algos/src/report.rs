//! What a monitor reports (the WIT `report` and `metric`), the same for
//! every monitor here: the drift and bias modules say what their metrics are.

/// One statistic (the WIT `metric`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The column (drift) or `<group column>=<value>` (bias) it is about, or
    /// `None` for dataset-level metrics.
    pub column: Option<String>,
    /// What it measures: a drift method (`ks`, `psi`, …), `missing-share`,
    /// `share-drifted`; a bias metric (`share`, `disparate-impact`, …).
    pub name: String,
    /// The value (for tests, the test statistic).
    pub value: f64,
    /// The threshold it was judged against; `None` when not judged.
    pub threshold: Option<f64>,
    /// The p-value, for tests (`None` for distances, ratios and differences).
    pub p_value: Option<f64>,
    /// Whether the value is beyond its threshold (the column, group or
    /// dataset alerts).
    pub alert: bool,
}

/// A report on everything observed (the WIT `report`).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Rows observed.
    pub rows: u64,
    /// Whether the dataset alerts (drifted, or a group is treated unfairly).
    pub alert: bool,
    /// Per column or group, then the dataset metrics (see each monitor).
    pub metrics: Vec<Metric>,
    /// One line for humans.
    pub summary: String,
}
