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
    /// 1: failed (a refusal by IAM too); 2: bad usage (as clap's own); 3: handled,
    /// nothing changed.
    pub fn code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::NothingDone(_) => 3,
            _ => 1,
        }
    }

    /// For a call IAM refused: which of the stack's operators' managed policies allows it
    /// (docs/cli.md, "Who may do what"). The CLI invokes rollgate's functions and reads;
    /// the act policy grants the invocations, the read policy everything else it calls.
    pub fn hint(&self, stack: &str) -> Option<String> {
        let CliError::Aws(
            e @ rollgate::Error::Aws {
                service, operation, ..
            },
        ) = self
        else {
            return None;
        };
        // Lambda and DynamoDB answer AccessDeniedException, CloudWatch AccessDenied.
        if !matches!(e.code(), Some("AccessDeniedException" | "AccessDenied")) {
            return None;
        }
        let policy = if (*service, *operation) == ("lambda", "Invoke") {
            "OperatorsActPolicy"
        } else {
            "OperatorsReadPolicy"
        };
        Some(format!(
            "IAM refused {service}.{operation}: the managed policy {policy} of stack {stack} \
             allows it (its ARN is the stack's output {policy}Arn); ask for it to be attached \
             to your role (docs/cli.md, \"Who may do what\")"
        ))
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::CliError;

    fn refused(service: &'static str, operation: &'static str, code: &str) -> CliError {
        CliError::Aws(rollgate::Error::Aws {
            service,
            operation,
            code: Some(code.into()),
            message: format!("{code}: User: ... is not authorized to perform: ..."),
            retryable: false,
        })
    }

    #[test]
    fn a_refusal_by_iam_names_the_operators_policy_that_allows_the_call() {
        let act = refused("lambda", "Invoke", "AccessDeniedException").hint("prod");
        let act = act.expect("a hint");
        assert!(act.contains("OperatorsActPolicy of stack prod"), "{act}");
        assert!(act.contains("output OperatorsActPolicyArn"), "{act}");
        for (service, operation, code) in [
            ("lambda", "GetAlias", "AccessDeniedException"),
            ("dynamodb", "Scan", "AccessDeniedException"),
            ("cloudwatch", "GetMetricData", "AccessDenied"),
        ] {
            let read = refused(service, operation, code)
                .hint("prod")
                .expect("a hint");
            assert!(read.contains("OperatorsReadPolicy of stack prod"), "{read}");
        }
        assert_eq!(
            refused("lambda", "Invoke", "ResourceNotFoundException").hint("prod"),
            None
        );
        assert_eq!(CliError::Usage("x".into()).hint("prod"), None);
        assert_eq!(
            refused("lambda", "Invoke", "AccessDeniedException").code(),
            1
        );
    }
}
