//! What can go wrong, and the exit code each ends with.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Arguments clap could not check (a duration, a `FUNCTION:ALIAS`).
    #[error("{0}")]
    Usage(String),
    /// An AWS call failed (credentials, permissions, a missing table or function).
    #[error(transparent)]
    Aws(#[from] rollgate::Error),
    /// A rollgate function ran and failed: its `errorType` names the class.
    #[error("{function} failed ({error_type}): {message}")]
    Function {
        function: String,
        error_type: String,
        message: String,
    },
    /// The request was carried out and changed nothing (refused by the allow-list,
    /// nothing to roll back, already done): the reason is printed with the outcome.
    #[error("{0}")]
    NothingDone(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl CliError {
    /// 1: failed; 2: bad usage (as clap's own); 3: handled, nothing changed.
    pub fn code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::NothingDone(_) => 3,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;
