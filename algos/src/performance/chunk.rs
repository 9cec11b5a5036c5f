//! How rows are grouped before metrics are computed: chunks of a fixed size
//! in row order (as NannyML's `SizeBasedChunker(incomplete="keep")`: rows
//! `0..N-1`, `N..2N-1`, …, a last shorter chunk kept), and groups of rows
//! sharing a segment value.

use crate::{AlgoError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;

/// A chunk of consecutive rows, `start..=end` (both inclusive, as NannyML's
/// `start_index`/`end_index` and the report's `start`/`end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSpan {
    /// First row.
    pub start: usize,
    /// Last row (inclusive).
    pub end: usize,
}

impl ChunkSpan {
    /// The rows as a half-open range.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end + 1
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.end + 1 - self.start
    }

    /// Never true: a chunk has at least one row.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Chunks of `size` rows over `rows` rows, in order; the last one is
/// shorter when `size` does not divide `rows`. No chunk when `rows` is 0.
pub fn by_size(rows: usize, size: usize) -> Result<Vec<ChunkSpan>> {
    if size == 0 {
        return Err(AlgoError::config("chunk_size", "must be at least 1"));
    }
    Ok((0..rows)
        .step_by(size)
        .map(|start| ChunkSpan {
            start,
            end: (start + size).min(rows) - 1,
        })
        .collect())
}

/// Row indices by segment value, values in ascending order, rows in order.
/// Rows whose value is `None` belong to no segment (they still count
/// overall and in their chunk).
pub fn segments<S: AsRef<str>>(values: &[Option<S>]) -> BTreeMap<String, Vec<usize>> {
    let mut groups: rustc_hash::FxHashMap<&str, Vec<usize>> = Default::default();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            groups.entry(v.as_ref()).or_default().push(i);
        }
    }
    groups.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn last_short_chunk_is_kept() {
        let c = by_size(7, 3).unwrap();
        let spans: Vec<_> = c.iter().map(|c| (c.start, c.end, c.len())).collect();
        assert_eq!(spans, [(0, 2, 3), (3, 5, 3), (6, 6, 1)]);
        assert!(by_size(0, 3).unwrap().is_empty());
        assert!(by_size(3, 0).is_err());
        let s = segments(&[Some("b"), None, Some("a"), Some("b")]);
        assert_eq!(s["b"], [0, 3]);
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
