//! Which task the files describe, and their columns as the typed slices
//! `keel_algos::performance` takes: labels, predictions and scores checked
//! row by row, every bad cell an error naming file, line and column.
//!
//! Binary labels are bools or two values, one of them positive (`true`,
//! else `1`, else `--positive-label`); a binary score is the probability of
//! the positive class and the prediction, when no column gives it, is
//! `score >= 0.5`. A multiclass model gives one probability column per
//! class, named `--score-column` + class (`p_` finds `p_cat`, `p_dog`, …,
//! classes in column order); its prediction defaults to the most probable
//! class. Regression needs numeric labels and a prediction column.

use super::Error;
use super::input::{Cells, Key, Table};
pub use keel_algos::performance::Owned;
use keel_algos::performance::Task;
use keel_data::Column;

/// The columns that give the model's output and the truth.
pub struct Roles<'a> {
    /// Regression: the model's feature columns, for DLE.
    pub features: &'a [String],
    pub score: Option<&'a str>,
    pub prediction: Option<&'a str>,
    pub positive: Option<&'a str>,
}

/// How labels and predictions become classes.
pub enum Plan {
    Binary { positive: String },
    Multiclass { classes: Vec<String> },
    Regression,
}

/// The class probability columns of a multiclass model: those whose name
/// starts with `prefix`, with the class as the rest of the name.
pub fn class_columns<'t>(table: &'t Table, prefix: &str) -> Vec<(&'t Column, String)> {
    table
        .batch
        .columns()
        .iter()
        .filter_map(|c| {
            let class = c.name.strip_prefix(prefix)?;
            (!class.is_empty()).then(|| (c, class.to_owned()))
        })
        .collect()
}

/// The task: `--task` if given, else inferred from the columns (see the
/// module docs); ambiguous files are a usage error asking for `--task`.
pub fn infer(
    task: Option<Task>,
    analysis: &Table,
    labels: Cells,
    roles: &Roles,
) -> Result<Task, Error> {
    if let Some(t) = task {
        return Ok(t);
    }
    let score = roles.score;
    let exact = score.is_some_and(|s| analysis.batch.column(s).is_some());
    let classes = score.map_or(0, |s| class_columns(analysis, s).len());
    let values = labels.distinct(3).len();
    let float = matches!(
        labels.column.data,
        keel_data::ColumnData::F64(_) | keel_data::ColumnData::F32(_)
    );
    let bool = matches!(labels.column.data, keel_data::ColumnData::Bool(_));
    Ok(match () {
        _ if exact && values <= 2 => Task::Binary,
        _ if !exact && classes >= 2 => Task::Multiclass,
        _ if score.is_none() && float => Task::Regression,
        _ if score.is_none() && (bool || values <= 2) => Task::Binary,
        _ => {
            return Err(Error::Usage(anyhow::anyhow!(
                "cannot tell the task from the columns ({values} or more label values, {}): \
                 pass --task binary|multiclass|regression",
                match (exact, classes) {
                    (true, _) => "one score column".to_owned(),
                    (false, 0) => "no score column".to_owned(),
                    (false, n) => format!("{n} class probability columns"),
                }
            )));
        }
    })
}

/// The plan of `task`: the positive class, or the classes.
pub fn plan(task: Task, analysis: &Table, cells: &[Cells], roles: &Roles) -> Result<Plan, Error> {
    match task {
        Task::Regression => Ok(Plan::Regression),
        Task::Multiclass => {
            let prefix = roles.score.ok_or_else(|| {
                Error::Usage(anyhow::anyhow!(
                    "a multiclass model needs its probability columns: --score-column PREFIX \
                     (one column PREFIX<class> per class)"
                ))
            })?;
            let classes: Vec<String> = class_columns(analysis, prefix)
                .into_iter()
                .map(|(_, class)| class)
                .collect();
            if classes.len() < 2 {
                return Err(Error::Data(anyhow::anyhow!(
                    "{}: a multiclass model needs a probability column per class, named \
                     `{prefix}<class>`; found {}",
                    analysis.path.display(),
                    classes.len()
                )));
            }
            Ok(Plan::Multiclass { classes })
        }
        Task::Binary => positive(cells, roles.positive).map(|positive| Plan::Binary { positive }),
    }
}

/// The positive class of binary labels and predictions (`cells`): at most two
/// values besides bools, one of them `positive` (default `true`, else `1`).
fn positive(cells: &[Cells], positive: Option<&str>) -> Result<String, Error> {
    let mut seen: Vec<Key> = Vec::new();
    for c in cells {
        for (k, i) in c.distinct(3) {
            if matches!(k, Key::Bool(_)) || seen.contains(&k) {
                continue;
            }
            if seen.len() == 2 {
                return Err(c.bad(
                    i,
                    format_args!(
                        "a third class `{k}` (binary classes seen: `{}`, `{}`); for more classes \
                         pass --task multiclass",
                        seen[0], seen[1]
                    ),
                ));
            }
            seen.push(k);
        }
    }
    if let Some(p) = positive {
        return Ok(p.to_owned());
    }
    for p in ["true", "1"] {
        if seen.is_empty() || seen.iter().any(|k| k.is(p)) {
            return Ok(p.to_owned());
        }
    }
    let names: Vec<String> = seen.iter().map(|k| format!("`{k}`")).collect();
    Err(Error::Usage(anyhow::anyhow!(
        "binary classes {}: say which is positive with --positive-label",
        names.join(" and ")
    )))
}

/// Builds the data of `table` (predictions and scores) with `labels`.
pub fn build(plan: &Plan, table: &Table, labels: Cells, roles: &Roles) -> Result<Owned, Error> {
    let prediction = roles
        .prediction
        .map(|p| table.column(p, "--prediction-column"))
        .transpose()?;
    match plan {
        Plan::Binary { positive } => {
            let is = |k: Key| match k {
                Key::Bool(b) => b,
                k => k.is(positive),
            };
            let labels = (0..labels.len()).map(|i| labels.get(i).map(is)).collect();
            let scores = match roles.score {
                Some(s) => Some(numbers(table, table.column(s, "--score-column")?, true)?),
                None => None,
            };
            let predictions = match (prediction, &scores) {
                (Some(p), _) => {
                    let cells = Cells::of(table, p);
                    (0..table.rows())
                        .map(|i| cells.get(i).map(is).ok_or_else(|| cells.bad(i, "empty")))
                        .collect::<Result<_, _>>()?
                }
                (None, Some(s)) => s.iter().map(|&s| s >= 0.5).collect(),
                (None, None) => return Err(no_output()),
            };
            Ok(Owned::Binary {
                labels,
                predictions,
                scores,
            })
        }
        Plan::Multiclass { classes } => multiclass(classes, table, labels, roles, prediction),
        Plan::Regression => {
            let Some(p) = prediction else {
                return Err(Error::Usage(anyhow::anyhow!(
                    "a regression model needs --prediction-column"
                )));
            };
            // A column with no truth yet reads as text; it holds no labels.
            let unlabelled = labels.column.null_count() == labels.column.len();
            if !labels.column.data_type().is_numeric() && !unlabelled {
                return Err(Error::Data(anyhow::anyhow!(
                    "{}: column `{}`: regression labels must be numbers, the column holds {}",
                    labels.table.path.display(),
                    labels.column.name,
                    labels.column.data_type()
                )));
            }
            let labels = if unlabelled {
                vec![None; labels.len()]
            } else {
                let values = labels.column.numeric().map_err(|e| Error::Data(e.into()))?;
                (0..labels.len())
                    .map(|i| {
                        labels
                            .get(i)
                            .map(|_| labels.source_row(i).map_or(0.0, |j| values[j]))
                    })
                    .collect()
            };
            let features = roles
                .features
                .iter()
                .map(|c| feature(table.column(c, "--feature-column")?, table))
                .collect::<Result<_, _>>()?;
            Ok(Owned::Regression {
                labels,
                predictions: numbers(table, p, false)?,
                features,
            })
        }
    }
}

fn no_output() -> Error {
    Error::Usage(anyhow::anyhow!(
        "name the model's output: --score-column and/or --prediction-column"
    ))
}

fn multiclass<'t>(
    classes: &[String],
    table: &'t Table,
    labels: Cells<'t>,
    roles: &Roles,
    prediction: Option<&'t Column>,
) -> Result<Owned, Error> {
    let prefix = roles.score.unwrap_or_default();
    let mut probabilities = Vec::with_capacity(classes.len());
    for class in classes {
        let name = format!("{prefix}{class}");
        probabilities.push(numbers(
            table,
            table.column(&name, "--score-column")?,
            true,
        )?);
    }
    // Classes are few: a short list maps a cell to its class faster than hashing.
    let mut known: Vec<(Key<'t>, u32)> = Vec::new();
    let mut class_of = |cells: &Cells<'t>, i: usize, k: Key<'t>| -> Result<u32, Error> {
        if let Some((_, c)) = known.iter().find(|(s, _)| *s == k) {
            return Ok(*c);
        }
        let name = k.to_string();
        match classes.iter().position(|c| *c == name) {
            Some(c) => {
                known.push((k, c as u32));
                Ok(c as u32)
            }
            None => Err(cells.bad(
                i,
                format_args!(
                    "class `{k}` has no probability column `{prefix}{k}` (classes: {})",
                    classes.join(", ")
                ),
            )),
        }
    };
    let mut out_labels = Vec::with_capacity(labels.len());
    for i in 0..labels.len() {
        out_labels.push(match labels.get(i) {
            Some(k) => Some(class_of(&labels, i, k)?),
            None => None,
        });
    }
    let predictions = match prediction {
        Some(p) => {
            let cells = Cells::of(table, p);
            (0..table.rows())
                .map(|i| match cells.get(i) {
                    Some(k) => class_of(&cells, i, k),
                    None => Err(cells.bad(i, "empty")),
                })
                .collect::<Result<_, _>>()?
        }
        None => (0..table.rows())
            .map(|i| {
                let mut best = 0;
                for (c, p) in probabilities.iter().enumerate() {
                    if p[i] > probabilities[best][i] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect(),
    };
    Ok(Owned::Multiclass {
        labels: out_labels,
        predictions,
        probabilities,
    })
}

/// A feature column as numbers, an empty cell as NaN (DLE's loss models
/// treat it as missing).
fn feature(c: &Column, table: &Table) -> Result<Vec<f64>, Error> {
    let values = c.numeric().map_err(|_| {
        Error::Data(anyhow::anyhow!(
            "{}: feature column `{}` holds {}; DLE needs numbers",
            table.path.display(),
            c.name,
            c.data_type()
        ))
    })?;
    Ok((0..values.len())
        .map(|i| if c.is_valid(i) { values[i] } else { f64::NAN })
        .collect())
}

/// The numbers of column `c` of `table`: every row a finite number, within
/// `[0, 1]` when `probability`.
fn numbers(table: &Table, c: &Column, probability: bool) -> Result<Vec<f64>, Error> {
    let values = c.numeric().map_err(|_| {
        Error::Data(anyhow::anyhow!(
            "{}: column `{}` holds {}; it must hold numbers",
            table.path.display(),
            c.name,
            c.data_type()
        ))
    })?;
    for (i, &x) in values.iter().enumerate() {
        if !c.is_valid(i) {
            return Err(table.bad(i, &c.name, "empty"));
        }
        if !x.is_finite() || (probability && !(0.0..=1.0).contains(&x)) {
            let want = if probability {
                "a probability in [0, 1]"
            } else {
                "a finite number"
            };
            return Err(table.bad(i, &c.name, format_args!("{x} is not {want}")));
        }
    }
    Ok(values.into_owned())
}
