//! `{{name}}`: the share of null cells per reference column, alerting above `max_null_share`.

use keel_sdk::{Batch, Config, Error, Info, Metric, Monitor, Report, Result};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cfg {
    #[serde(default = "tenth")]
    max_null_share: f64,
}

fn tenth() -> f64 {
    0.1
}

struct Plugin {
    max: f64,
    columns: Vec<String>,
    rows: u64,
    nulls: Vec<u64>,
}

impl Monitor for Plugin {
    fn info() -> Info {
        Info::new("{{name}}", env!("CARGO_PKG_VERSION"), "Share of nulls per column.").schema(SCHEMA)
    }
    fn create(config: Config, reference: Batch) -> Result<Self> {
        let cfg: Cfg = config.parse()?;
        let columns: Vec<String> = reference.columns().iter().map(|c| c.name.clone()).collect();
        Ok(Plugin { max: cfg.max_null_share, nulls: vec![0; columns.len()], columns, rows: 0 })
    }
    fn observe(&mut self, input: &Batch) -> Result<()> {
        for (name, n) in self.columns.iter().zip(&mut self.nulls) {
            *n += input.require(name)?.null_count() as u64;
        }
        self.rows += input.rows() as u64;
        Ok(())
    }
    fn report(&self) -> Result<Report> {
        let metrics: Vec<Metric> = self
            .columns
            .iter()
            .zip(&self.nulls)
            .map(|(name, n)| {
                let share = if self.rows == 0 { 0.0 } else { *n as f64 / self.rows as f64 };
                Metric {
                    column: Some(name.clone()),
                    name: "null-share".into(),
                    value: share,
                    threshold: Some(self.max),
                    p_value: None,
                    alert: share > self.max,
                }
            })
            .collect();
        let alerts = metrics.iter().filter(|m| m.alert).count();
        Ok(Report {
            rows: self.rows,
            alert: alerts > 0,
            summary: format!("{alerts} of {} columns above {} nulls", metrics.len(), self.max),
            metrics,
        })
    }
    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = self.rows.to_le_bytes().to_vec();
        for n in &self.nulls {
            out.extend_from_slice(&n.to_le_bytes());
        }
        Ok(out)
    }
    fn restore(&mut self, state: &[u8]) -> Result<()> {
        if state.len() != 8 * (1 + self.nulls.len()) {
            return Err(Error::state("not a snapshot of this monitor"));
        }
        let mut words = state.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        });
        self.rows = words.next().unwrap_or(0);
        for (n, w) in self.nulls.iter_mut().zip(words) {
            *n = w;
        }
        Ok(())
    }
}

const SCHEMA: &str = r#"{"type":"object","properties":{"max_null_share":{"type":"number"}},"additionalProperties":false}"#;

keel_sdk::export_monitor!(Plugin);
