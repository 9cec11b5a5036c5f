//! The one error type of the algorithms, classified the way the plugin
//! contract classifies errors so plugins can map it without inspecting text.

use core::fmt;
use keel_data::DataError;

/// Which party is at fault; plugins map this onto the WIT `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration (`invalid-config`).
    Config,
    /// The batch being processed (`invalid-input`).
    Input,
    /// The reference batch used for fitting (`invalid-reference`).
    Reference,
    /// A snapshot given to `restore` (`invalid-state`).
    State,
}

/// Why an algorithm could not be built or run.
#[derive(Debug, Clone, PartialEq)]
pub enum AlgoError {
    /// The configuration is wrong; `key` is the config key at fault.
    Config { key: String, message: String },
    /// Fitting from the reference is impossible (no reference, a missing
    /// column, no values to fit). `message` names the column itself.
    Reference {
        column: Option<String>,
        message: String,
    },
    /// A value or column of the input cannot be processed.
    Input {
        column: String,
        row: Option<usize>,
        message: String,
    },
    /// A snapshot cannot be restored.
    State { message: String },
    /// A batch-level problem of the input (missing column, wrong type, …).
    Data(DataError),
}

impl AlgoError {
    /// A config error about `key`.
    pub fn config(key: &str, message: impl Into<String>) -> AlgoError {
        AlgoError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A reference error about `column`.
    pub fn reference(column: &str, message: impl Into<String>) -> AlgoError {
        AlgoError::Reference {
            column: Some(column.into()),
            message: message.into(),
        }
    }

    /// A data error met while reading the reference rather than the input.
    pub fn in_reference(e: DataError) -> AlgoError {
        AlgoError::Reference {
            column: data_error_column(&e).map(str::to_owned),
            message: e.to_string(),
        }
    }

    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AlgoError::Config { .. } => ErrorKind::Config,
            AlgoError::Reference { .. } => ErrorKind::Reference,
            AlgoError::Input { .. } | AlgoError::Data(_) => ErrorKind::Input,
            AlgoError::State { .. } => ErrorKind::State,
        }
    }

    /// The column concerned, when there is one.
    pub fn column(&self) -> Option<&str> {
        match self {
            AlgoError::Reference { column, .. } => column.as_deref(),
            AlgoError::Input { column, .. } => Some(column),
            AlgoError::Data(e) => data_error_column(e),
            AlgoError::Config { .. } | AlgoError::State { .. } => None,
        }
    }

    /// The row concerned, when there is one.
    pub fn row(&self) -> Option<usize> {
        match self {
            AlgoError::Input { row, .. } => *row,
            _ => None,
        }
    }
}

fn data_error_column(e: &DataError) -> Option<&str> {
    match e {
        DataError::Ragged { column, .. }
        | DataError::RaggedValidity { column, .. }
        | DataError::DuplicateColumn { column }
        | DataError::MissingColumn { column }
        | DataError::TypeMismatch { column, .. }
        | DataError::NotNumeric { column, .. } => Some(column),
    }
}

impl fmt::Display for AlgoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlgoError::Config { key, message } => write!(f, "invalid config `{key}`: {message}"),
            AlgoError::Reference { message, .. } => write!(f, "reference: {message}"),
            AlgoError::Input {
                column,
                row: Some(row),
                message,
            } => write!(f, "column `{column}`, row {row}: {message}"),
            AlgoError::Input {
                column,
                row: None,
                message,
            } => write!(f, "column `{column}`: {message}"),
            AlgoError::State { message } => write!(f, "invalid state: {message}"),
            AlgoError::Data(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AlgoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AlgoError::Data(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DataError> for AlgoError {
    fn from(e: DataError) -> AlgoError {
        AlgoError::Data(e)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use keel_data::DataType;

    #[test]
    fn messages_name_key_column_and_row() {
        let e = AlgoError::config("coefficients", "3 coefficients for 4 features");
        assert_eq!(
            e.to_string(),
            "invalid config `coefficients`: 3 coefficients for 4 features"
        );
        assert_eq!((e.kind(), e.column()), (ErrorKind::Config, None));

        let e = AlgoError::Input {
            column: "x".into(),
            row: Some(7),
            message: "value is NaN".into(),
        };
        assert_eq!(e.to_string(), "column `x`, row 7: value is NaN");
        assert_eq!(
            (e.kind(), e.column(), e.row()),
            (ErrorKind::Input, Some("x"), Some(7))
        );

        let e = AlgoError::from(DataError::MissingColumn { column: "y".into() });
        assert_eq!(e.to_string(), "column `y` is missing");
        assert_eq!((e.kind(), e.column()), (ErrorKind::Input, Some("y")));

        let e = AlgoError::in_reference(DataError::NotNumeric {
            column: "s".into(),
            found: DataType::String,
        });
        assert_eq!(
            e.to_string(),
            "reference: column `s` is string, expected a numeric column"
        );
        assert_eq!((e.kind(), e.column()), (ErrorKind::Reference, Some("s")));

        let e = AlgoError::State {
            message: "version 9".into(),
        };
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::State, "invalid state: version 9")
        );
    }
}
