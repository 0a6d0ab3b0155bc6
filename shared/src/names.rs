//! The names AWS gives things, each rule once, as Lambda's and SQS's API models state
//! them (botocore `lambda/2015-03-31` and `sqs/2012-11-05` `service-2.json`), and the one
//! ARN splitter. Everything that takes a function, alias, version, account or queue from
//! outside (events, tags, requests, AppSpecs) checks it here before any AWS call.

/// The parts of an ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// `None` unless the text has all six parts, a partition and a service.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut it = text.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: it.next()?,
            service: it.next()?,
            region: it.next()?,
            account: it.next()?,
            resource: it.next()?,
        };
        (!arn.partition.is_empty() && !arn.service.is_empty()).then_some(arn)
    }
}

/// Longest function name (`CreateFunction`'s `FunctionName`; the name part of an ARN).
pub const FUNCTION_NAME_MAX_CHARS: usize = 64;
/// Longest alias name (shape `Alias`) and qualifier (shape `Qualifier`).
pub const ALIAS_MAX_CHARS: usize = 128;
/// Longest published version (shape `Version`).
pub const VERSION_MAX_CHARS: usize = 1024;
/// Longest SQS queue name, `.fifo` included.
pub const QUEUE_NAME_MAX_CHARS: usize = 80;

fn word_chars(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A function's name: 1-64 letters, digits, `-` or `_` (`CreateFunction`'s rule; the
/// longer `FunctionName` patterns of other operations admit ARNs, not longer names).
pub fn is_function_name(s: &str) -> bool {
    word_chars(s, FUNCTION_NAME_MAX_CHARS)
}

/// An alias name (shape `Alias`): 1-128 of `[a-zA-Z0-9-_]`, not all digits (that would be
/// a version).
pub fn is_alias(s: &str) -> bool {
    word_chars(s, ALIAS_MAX_CHARS) && !s.bytes().all(|b| b.is_ascii_digit())
}

/// A published version (shape `Version`, `$LATEST` aside): digits.
pub fn is_version(s: &str) -> bool {
    (1..=VERSION_MAX_CHARS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A qualifier: `$LATEST`, a version or an alias.
pub fn is_qualifier(s: &str) -> bool {
    s == "$LATEST" || is_version(s) || is_alias(s)
}

/// An AWS account id: twelve digits.
pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An SQS queue name: 1-80 letters, digits, `-` or `_`, a FIFO queue's ending `.fifo`.
pub fn is_queue_name(s: &str) -> bool {
    let stem = s.strip_suffix(".fifo").unwrap_or(s);
    s.len() <= QUEUE_NAME_MAX_CHARS && word_chars(stem, QUEUE_NAME_MAX_CHARS)
}

/// Longest SNS topic name, `.fifo` included (`CreateTopic`).
pub const TOPIC_NAME_MAX_CHARS: usize = 256;

/// An SNS topic name: 1-256 letters, digits, `-` or `_`, a FIFO topic's ending `.fifo`.
pub fn is_topic_name(s: &str) -> bool {
    let stem = s.strip_suffix(".fifo").unwrap_or(s);
    s.len() <= TOPIC_NAME_MAX_CHARS && word_chars(stem, TOPIC_NAME_MAX_CHARS)
}

/// An SNS topic ARN: `arn:<partition>:sns:<region>:<account>:<topic name>`.
pub fn is_topic_arn(s: &str) -> bool {
    Arn::parse(s).is_some_and(|a| {
        a.service == "sns"
            && !a.region.is_empty()
            && is_account(a.account)
            && is_topic_name(a.resource)
    })
}

/// A function as Lambda's API takes it: a name, `name:qualifier`, a partial ARN
/// (`account:function:name[:qualifier]`) or a full ARN
/// (`arn:partition:lambda:region:account:function:name[:qualifier]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionRef<'a> {
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
    /// Present for an ARN (its partition and region) or a partial ARN (account only).
    pub partition: Option<&'a str>,
    pub region: Option<&'a str>,
    pub account: Option<&'a str>,
}

impl<'a> FunctionRef<'a> {
    /// The reference's parts, each held to its rule; the error says what is wrong.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let mut r = FunctionRef {
            name: "",
            qualifier: None,
            partition: None,
            region: None,
            account: None,
        };
        match parts.as_slice() {
            [name] => r.name = name,
            [name, q] => (r.name, r.qualifier) = (name, Some(*q)),
            [
                "arn",
                partition,
                "lambda",
                region,
                account,
                "function",
                name,
                rest @ ..,
            ] if rest.len() <= 1 => {
                (r.partition, r.region, r.account) =
                    (Some(*partition), Some(*region), Some(*account));
                (r.name, r.qualifier) = (name, rest.first().copied());
                if partition.is_empty() || region.is_empty() {
                    return Err(format!("{text:?} has an empty partition or region"));
                }
            }
            ["arn", ..] => {
                return Err(format!(
                    "{text:?} is not a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>])"
                ));
            }
            [account, "function", name, rest @ ..] if rest.len() <= 1 => {
                (r.account, r.name, r.qualifier) = (Some(*account), name, rest.first().copied());
            }
            _ => {
                return Err(format!(
                    "{text:?} is not a function name, name:qualifier, partial or full function ARN"
                ));
            }
        }
        r.check(text)
    }

    fn check(self, text: &str) -> Result<Self, String> {
        if !is_function_name(self.name) {
            return Err(format!(
                "function name {:?} must be 1-64 characters of letters, digits, '-' or '_'",
                self.name
            ));
        }
        if let Some(account) = self.account
            && !is_account(account)
        {
            return Err(format!(
                "{text:?}: account {account:?} is not twelve digits"
            ));
        }
        match self.qualifier {
            Some("") => Err(format!("{text:?} ends with an empty qualifier")),
            Some(q) if !is_qualifier(q) => Err(format!(
                "{text:?}: qualifier {q:?} is not $LATEST, a version or an alias (1-128 letters, digits, '-' or '_')"
            )),
            _ => Ok(self),
        }
    }

    /// Whether this is a full ARN.
    pub fn is_arn(&self) -> bool {
        self.partition.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_references_in_every_form_lambda_takes() {
        let r = FunctionRef::parse("orders").unwrap();
        assert_eq!((r.name, r.qualifier, r.is_arn()), ("orders", None, false));
        let r = FunctionRef::parse("orders:live").unwrap();
        assert_eq!((r.name, r.qualifier), ("orders", Some("live")));
        let r = FunctionRef::parse("123456789012:function:orders:7").unwrap();
        assert_eq!(
            (r.account, r.name, r.qualifier),
            (Some("123456789012"), "orders", Some("7"))
        );
        let r = FunctionRef::parse(
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:orders:$LATEST",
        )
        .unwrap();
        assert_eq!(
            (r.partition, r.region, r.name, r.qualifier),
            (
                Some("aws-us-gov"),
                Some("us-gov-west-1"),
                "orders",
                Some("$LATEST")
            )
        );
    }

    #[test]
    fn references_lambda_would_refuse_are_refused() {
        for bad in [
            "",
            "orders:",
            "orders*",
            "a/b",
            &"x".repeat(65),
            "orders:live:extra",
            "arn:aws:lambda:us-east-1:123456789012:layer:orders",
            "arn:aws:lambda::123456789012:function:orders",
            "arn:aws:lambda:us-east-1:12345:function:orders",
            "arn:aws:lambda:us-east-1:123456789012:function:orders:a b",
            "12345678901x:function:orders",
        ] {
            assert!(FunctionRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aliases_are_never_all_digits_and_versions_always_are() {
        assert!(is_alias("live") && is_alias("blue-2") && is_alias(&"a".repeat(128)));
        assert!(!is_alias("7") && !is_alias("") && !is_alias(&"a".repeat(129)));
        assert!(is_version("7") && !is_version("v7") && !is_version(""));
        assert!(is_qualifier("$LATEST") && is_qualifier("7") && is_qualifier("live"));
    }

    #[test]
    fn queue_names_and_accounts() {
        assert!(is_queue_name("dlq") && is_queue_name("orders.fifo"));
        assert!(
            !is_queue_name(".fifo") && !is_queue_name("a.b") && !is_queue_name(&"q".repeat(81))
        );
        assert!(is_account("123456789012") && !is_account("12345678901") && !is_account("abc"));
    }

    #[test]
    fn arns_split_into_their_six_parts() {
        let a = Arn::parse("arn:aws:sqs:eu-west-1:123456789012:dlq").unwrap();
        assert_eq!(
            (a.service, a.region, a.account, a.resource),
            ("sqs", "eu-west-1", "123456789012", "dlq")
        );
        // The resource keeps its own colons.
        assert_eq!(
            Arn::parse("arn:aws:lambda:r:1:function:f:7")
                .unwrap()
                .resource,
            "function:f:7"
        );
        assert!(Arn::parse("arn::sqs:r:1:q").is_none() && Arn::parse("sqs:r:1:q").is_none());
    }
}
