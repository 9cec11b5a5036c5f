//! Monitor windows: the host cuts the stream a monitor sees into tumbling
//! windows (by row count, by event time from a column, or by processing
//! time) or sliding windows (the last N rows, every M rows), and asks the
//! monitor for one report per window.
//!
//! Windowing lives in the host, not in each plugin, so every monitor in any
//! language gets it from the four calls of the contract: the host snapshots
//! a freshly created watcher once, and restoring that snapshot empties it
//! when a window closes. The open window's state (the watcher's snapshot and
//! the host's position) can be saved and resumed, so a restarted host
//! carries on the window it was in.

use crate::instance::{Instance, Report, call_seed};
use keel_data::{Batch, Column, ColumnData};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How a monitor's stream is cut into windows (the spec's `[monitors.window]`).
///
/// - `rows = N`: tumbling, a report every N rows.
/// - `rows = N, step = M`: sliding, a report on the last N rows every M rows.
/// - `seconds = S, time_column = "ts"`: tumbling by event time, windows
///   aligned to multiples of S since the Unix epoch.
/// - `seconds = S` alone: tumbling by processing (wall-clock) time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Column holding each row's event time: integer or float epoch time in
    /// `time_unit`, or RFC 3339 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<TimeUnit>,
}

/// Unit of numeric event times.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[default]
    S,
    Ms,
    Us,
    Ns,
}

/// A checked [`WindowSpec`].
#[derive(Debug, Clone, PartialEq)]
pub enum WindowKind {
    Tumbling {
        rows: u64,
    },
    Sliding {
        rows: u64,
        step: u64,
    },
    Time {
        millis: i64,
        column: Option<String>,
        unit: TimeUnit,
    },
}

impl WindowSpec {
    /// Checks the combination of keys; the error names the key at fault.
    pub fn kind(&self) -> Result<WindowKind, (&'static str, String)> {
        match (self.rows, self.seconds) {
            (Some(_), Some(_)) => Err((
                "seconds",
                "a window is cut by `rows` or by `seconds`, not both".into(),
            )),
            (None, None) => Err(("rows", "set `rows` or `seconds`".into())),
            (Some(0), None) => Err(("rows", "must be at least 1".into())),
            (Some(rows), None) => {
                if self.time_column.is_some() || self.time_unit.is_some() {
                    return Err((
                        "time_column",
                        "only time windows (`seconds`) read a time column".into(),
                    ));
                }
                match self.step {
                    None => Ok(WindowKind::Tumbling { rows }),
                    Some(0) => Err(("step", "must be at least 1".into())),
                    Some(step) if step > rows => Err((
                        "step",
                        format!("{step} is larger than the window ({rows} rows)"),
                    )),
                    Some(step) if step == rows => Ok(WindowKind::Tumbling { rows }),
                    Some(step) => Ok(WindowKind::Sliding { rows, step }),
                }
            }
            (None, Some(seconds)) => {
                if self.step.is_some() {
                    return Err(("step", "sliding windows are by row count only".into()));
                }
                if seconds == 0 {
                    return Err(("seconds", "must be at least 1".into()));
                }
                if self.time_unit.is_some() && self.time_column.is_none() {
                    return Err(("time_unit", "needs `time_column`".into()));
                }
                let millis = i64::try_from(seconds.saturating_mul(1000))
                    .map_err(|_| ("seconds", format!("{seconds} is too large")))?;
                Ok(WindowKind::Time {
                    millis,
                    column: self.time_column.clone(),
                    unit: self.time_unit.unwrap_or_default(),
                })
            }
        }
    }
}

/// Where a window lies in the monitor's stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowInfo {
    /// 0 for the first window the monitor ever closed (counting across restarts).
    pub index: u64,
    /// Rows the monitor had seen before the window (rows at its attachment point).
    pub start_row: u64,
    /// Rows in the window.
    pub rows: u64,
    /// Time windows: start and end (exclusive), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The window was still open (reported at the end of a run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// One window's report.
#[derive(Debug, Clone)]
pub struct WindowReport {
    pub window: WindowInfo,
    pub report: Report,
}

/// The host's side of an open window, saved with the watcher's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct WindowState {
    /// Windows closed so far.
    pub index: u64,
    /// Rows seen before the open window.
    pub start_row: u64,
    /// Rows in the open window.
    pub rows: u64,
    /// Time windows: the open window's start, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
    /// The watcher's snapshot of the open window, hex.
    #[serde(default, with = "hex_bytes")]
    pub snapshot: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// Drives one monitor instance through its windows.
pub struct Watch {
    name: String,
    kind: Option<WindowKind>,
    /// The freshly created watcher's snapshot: restoring it empties the window.
    empty: Vec<u8>,
    state: WindowState,
    /// Sliding windows: the last `rows` rows and the rows since the last report.
    ring: VecDeque<Batch>,
    ring_rows: u64,
    since_step: u64,
}

impl Watch {
    /// Starts watching with a freshly created instance.
    pub fn new(name: &str, kind: Option<WindowKind>, inst: &mut Instance) -> Result<Watch, String> {
        let empty = match kind {
            Some(_) => inst.snapshot().map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok(Watch {
            name: name.to_string(),
            kind,
            empty,
            state: WindowState::default(),
            ring: VecDeque::new(),
            ring_rows: 0,
            since_step: 0,
        })
    }

    /// Whether the stream is cut into windows.
    pub fn windowed(&self) -> bool {
        self.kind.is_some()
    }

    /// Carries on a saved window. A sliding window's rows are not saved: it
    /// refills from the next rows.
    pub fn resume(&mut self, inst: &mut Instance, saved: &WindowState) -> Result<(), String> {
        if self.kind.is_none() {
            return Ok(());
        }
        if !saved.snapshot.is_empty() && !matches!(self.kind, Some(WindowKind::Sliding { .. })) {
            inst.restore(&saved.snapshot).map_err(|e| e.to_string())?;
        }
        self.state = saved.clone();
        if matches!(self.kind, Some(WindowKind::Sliding { .. })) {
            self.state.start_row += self.state.rows;
            self.state.rows = 0;
        }
        self.state.snapshot.clear();
        Ok(())
    }

    /// The open window's state with the watcher's snapshot, to save.
    pub fn save(&self, inst: &mut Instance) -> Result<WindowState, String> {
        let mut s = self.state.clone();
        if matches!(
            self.kind,
            Some(WindowKind::Tumbling { .. } | WindowKind::Time { .. })
        ) {
            s.snapshot = inst.snapshot().map_err(|e| e.to_string())?;
        }
        Ok(s)
    }

    /// Feeds one batch; returns the windows it closed, in order.
    pub fn feed(
        &mut self,
        inst: &mut Instance,
        batch: &Batch,
        now_ms: i64,
    ) -> Result<Vec<WindowReport>, String> {
        let mut closed = Vec::new();
        match self.kind.clone() {
            None => self.observe(inst, batch.clone())?,
            Some(WindowKind::Tumbling { rows: size }) => {
                let mut off = 0;
                while off < batch.rows() {
                    let room = usize::try_from(size - self.state.rows).unwrap_or(usize::MAX);
                    let take = room.min(batch.rows() - off);
                    self.observe(inst, batch.slice(off, off + take))?;
                    self.state.rows += take as u64;
                    off += take;
                    if self.state.rows == size {
                        closed.push(self.close(inst, None)?);
                    }
                }
            }
            Some(WindowKind::Sliding { rows: size, step }) => {
                let mut off = 0;
                while off < batch.rows() {
                    let room = usize::try_from(step - self.since_step).unwrap_or(usize::MAX);
                    let take = room.min(batch.rows() - off);
                    self.ring.push_back(batch.slice(off, off + take));
                    self.ring_rows += take as u64;
                    self.since_step += take as u64;
                    off += take;
                    self.trim_ring(size);
                    if self.since_step == step {
                        self.since_step = 0;
                        if self.ring_rows == size {
                            closed.push(self.close_sliding(inst, step)?);
                        }
                    }
                }
                self.state.rows = self.ring_rows;
            }
            Some(WindowKind::Time {
                millis,
                column,
                unit,
            }) => {
                let times = match &column {
                    Some(c) => event_times(batch, c, unit)?,
                    None => vec![Some(now_ms); batch.rows()],
                };
                let mut start = 0;
                for (i, t) in times.iter().enumerate() {
                    let Some(t) = *t else { continue };
                    let aligned = t.div_euclid(millis) * millis;
                    match self.state.start_ms {
                        None => self.state.start_ms = Some(aligned),
                        Some(ws) if t >= ws.saturating_add(millis) => {
                            if i > start {
                                self.observe(inst, batch.slice(start, i))?;
                                self.state.rows += (i - start) as u64;
                            }
                            start = i;
                            if self.state.rows > 0 {
                                closed.push(self.close(inst, Some((ws, millis)))?);
                            }
                            self.state.start_ms = Some(aligned);
                        }
                        // Rows earlier than the open window (late data) stay in it.
                        Some(_) => {}
                    }
                }
                if start < batch.rows() {
                    self.observe(inst, batch.slice(start, batch.rows()))?;
                    self.state.rows += (batch.rows() - start) as u64;
                }
            }
        }
        Ok(closed)
    }

    /// The report on the open window (or, unwindowed, on everything seen).
    pub fn report_open(&mut self, inst: &mut Instance) -> Result<WindowReport, String> {
        if let Some(WindowKind::Sliding { .. }) = self.kind {
            self.refill(inst)?;
        }
        let report = inst.report().map_err(|e| e.to_string())?;
        let span = match (&self.kind, self.state.start_ms) {
            (Some(WindowKind::Time { millis, .. }), Some(ws)) => Some((ws, *millis)),
            _ => None,
        };
        let mut window = self.info(span);
        if self.kind.is_none() {
            window.rows = report.rows;
        }
        window.partial = self.kind.is_some();
        Ok(WindowReport { window, report })
    }

    fn info(&self, span: Option<(i64, i64)>) -> WindowInfo {
        WindowInfo {
            index: self.state.index,
            start_row: self.state.start_row,
            rows: self.state.rows,
            start_time: span.map(|(s, _)| rfc3339(s)),
            end_time: span.map(|(s, m)| rfc3339(s.saturating_add(m))),
            partial: false,
        }
    }

    fn observe(&mut self, inst: &mut Instance, b: Batch) -> Result<(), String> {
        if b.rows() == 0 {
            return Ok(());
        }
        let seed = call_seed(&self.name, self.state.start_row + self.state.rows);
        inst.observe(b, seed).map_err(|e| e.to_string())
    }

    fn close(
        &mut self,
        inst: &mut Instance,
        span: Option<(i64, i64)>,
    ) -> Result<WindowReport, String> {
        let report = inst.report().map_err(|e| e.to_string())?;
        let window = self.info(span);
        inst.restore(&self.empty).map_err(|e| e.to_string())?;
        self.state.index += 1;
        self.state.start_row += self.state.rows;
        self.state.rows = 0;
        Ok(WindowReport { window, report })
    }

    fn trim_ring(&mut self, size: u64) {
        while self.ring_rows > size {
            let Some(front) = self.ring.pop_front() else {
                break;
            };
            let excess = self.ring_rows - size;
            let n = front.rows() as u64;
            if n <= excess {
                self.ring_rows -= n;
                self.state.start_row += n;
            } else {
                let cut = excess as usize;
                self.ring.push_front(front.slice(cut, front.rows()));
                self.ring_rows -= excess;
                self.state.start_row += excess;
            }
        }
    }

    /// Empties the watcher and feeds it the ring's rows.
    fn refill(&mut self, inst: &mut Instance) -> Result<(), String> {
        inst.restore(&self.empty).map_err(|e| e.to_string())?;
        let start = self.state.start_row;
        let mut at = start;
        for b in self.ring.clone() {
            let n = b.rows() as u64;
            let seed = call_seed(&self.name, at);
            inst.observe(b, seed).map_err(|e| e.to_string())?;
            at += n;
        }
        self.state.rows = self.ring_rows;
        Ok(())
    }

    fn close_sliding(&mut self, inst: &mut Instance, _step: u64) -> Result<WindowReport, String> {
        self.refill(inst)?;
        let report = inst.report().map_err(|e| e.to_string())?;
        let window = self.info(None);
        self.state.index += 1;
        Ok(WindowReport { window, report })
    }
}

/// Each row's event time in Unix milliseconds; `None` for nulls.
fn event_times(batch: &Batch, column: &str, unit: TimeUnit) -> Result<Vec<Option<i64>>, String> {
    let col: &Column = batch
        .require(column)
        .map_err(|e| format!("time column: {e}"))?;
    let scale = match unit {
        TimeUnit::S => 1000.0,
        TimeUnit::Ms => 1.0,
        TimeUnit::Us => 1e-3,
        TimeUnit::Ns => 1e-6,
    };
    let valid = |i: usize| col.is_valid(i);
    let out = match &col.data {
        ColumnData::S64(v) => v
            .iter()
            .enumerate()
            .map(|(i, x)| valid(i).then_some((*x as f64 * scale) as i64))
            .collect(),
        ColumnData::F64(v) => v
            .iter()
            .enumerate()
            .map(|(i, x)| (valid(i) && x.is_finite()).then(|| (x * scale) as i64))
            .collect(),
        ColumnData::F32(v) => v
            .iter()
            .enumerate()
            .map(|(i, x)| (valid(i) && x.is_finite()).then(|| (f64::from(*x) * scale) as i64))
            .collect(),
        ColumnData::String(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if !valid(i) {
                    return Ok(None);
                }
                s.trim()
                    .parse::<jiff::Timestamp>()
                    .map(|t| Some(t.as_millisecond()))
                    .map_err(|e| {
                        format!(
                            "time column `{column}`: row {i}: `{s}` is not an RFC 3339 time: {e}"
                        )
                    })
            })
            .collect::<Result<_, String>>()?,
        ColumnData::Bool(_) => {
            return Err(format!(
                "time column `{column}` is bool; it must hold epoch times or RFC 3339 text"
            ));
        }
    };
    Ok(out)
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_kinds_and_errors_name_the_key() {
        let w = |t: &str| toml::from_str::<WindowSpec>(t).unwrap().kind();
        assert_eq!(w("rows = 10"), Ok(WindowKind::Tumbling { rows: 10 }));
        assert_eq!(
            w("rows = 10\nstep = 5"),
            Ok(WindowKind::Sliding { rows: 10, step: 5 })
        );
        assert_eq!(
            w("rows = 10\nstep = 10"),
            Ok(WindowKind::Tumbling { rows: 10 })
        );
        assert_eq!(
            w("seconds = 60\ntime_column = \"ts\"\ntime_unit = \"ms\""),
            Ok(WindowKind::Time {
                millis: 60_000,
                column: Some("ts".into()),
                unit: TimeUnit::Ms
            })
        );
        assert_eq!(w("rows = 10\nseconds = 5").unwrap_err().0, "seconds");
        assert_eq!(w("rows = 10\nstep = 11").unwrap_err().0, "step");
        assert_eq!(w("seconds = 10\nstep = 1").unwrap_err().0, "step");
        assert_eq!(w("rows = 0").unwrap_err().0, "rows");
        assert_eq!(w("step = 3").unwrap_err().0, "rows");
        assert_eq!(
            w("rows = 3\ntime_column = \"t\"").unwrap_err().0,
            "time_column"
        );
        assert!(toml::from_str::<WindowSpec>("size = 3").is_err());
    }

    #[test]
    fn event_times_from_numbers_and_text() {
        let b = Batch::from_columns(vec![
            Column::new("s", ColumnData::S64(vec![1, 2])),
            Column::from_opt_str("t", &[Some("2026-11-22T10:00:00Z"), None]),
            Column::new("b", ColumnData::Bool(vec![true, false])),
            Column::from_opt_str("bad", &[Some("yesterday"), None]),
        ])
        .unwrap();
        assert_eq!(
            event_times(&b, "s", TimeUnit::S).unwrap(),
            vec![Some(1000), Some(2000)]
        );
        assert_eq!(
            event_times(&b, "s", TimeUnit::Ms).unwrap(),
            vec![Some(1), Some(2)]
        );
        assert_eq!(
            event_times(&b, "t", TimeUnit::S).unwrap(),
            vec![Some(1_795_341_600_000), None]
        );
        assert!(
            event_times(&b, "b", TimeUnit::S)
                .unwrap_err()
                .contains("bool")
        );
        let e = event_times(&b, "bad", TimeUnit::S).unwrap_err();
        assert!(e.contains("row 0") && e.contains("yesterday"), "{e}");
        assert!(event_times(&b, "nope", TimeUnit::S).is_err());
        assert_eq!(rfc3339(1_795_341_600_000), "2026-11-22T10:00:00Z");
    }
}
