//! Typed errors. A data error carries where it happened (file, 1-based line, field path) and
//! renders as `file:line: field: message`, the shape users grep for.
use std::fmt;

/// A problem with one input line. `field` is a path such as `responses[3].score`; empty when the
/// line as a whole is bad (invalid JSON, not an object, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    pub file: String,
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.field, self.message
            )
        }
    }
}

impl std::error::Error for DataError {}

/// Everything the core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub fn io(file: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            file: file.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A field-level problem before the file and line are known; `at` attaches them.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(self, file: &str, line: u64) -> DataError {
        DataError {
            file: file.to_string(),
            line,
            field: self.field,
            message: self.message,
        }
    }
}
