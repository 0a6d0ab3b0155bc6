//! Each function's configuration, typed, read once in its `main` from the environment.
//!
//! This is the only module that reads environment variables (the AWS SDK reads its own:
//! region, credentials, `AWS_ENDPOINT_URL`). A value that is set but wrong is an error
//! that names the variable; an unset or empty variable takes its default, the same in
//! every function.
//!
//! | variable | functions | default |
//! |---|---|---|
//! | `ROLLGATE_TOPIC_ARN` | all | none: decisions are only logged |
//! | `ROLLGATE_CHAT_TOPIC_ARN` | all | none: no chat cards (`shared/src/chat.rs`) |
//! | `ROLLGATE_METRICS_NAMESPACE` | all | `Rollgate` |
//! | `ROLLGATE_AWS_MAX_ATTEMPTS` | all | 3 (1 to 10) |
//! | `ROLLGATE_LOG_FORMAT` | all | `json` under Lambda, else `text` |
//! | `RUST_LOG`, `AWS_LAMBDA_LOG_LEVEL` | all | `info` |
//! | `ROLLGATE_POLICY_PREFIX` | hooks, alarm-rollback | `/rollgate/policies/` |
//! | `ROLLGATE_REPORT_MARGIN_MS` | hooks | 3000 |
//! | `ROLLGATE_MAX_RUN_SECONDS` | post-traffic-hook | none: until Lambda's deadline |
//! | `ROLLGATE_SELF_FUNCTION` | post-traffic-hook | the invoked ARN, else `AWS_LAMBDA_FUNCTION_NAME` |
//! | `ROLLGATE_LEDGER_TABLE` | alarm-rollback, rollout; hooks | required; hooks: none, decisions are not kept and the traffic shift's judgements are not reused |
//! | `ROLLGATE_BAKE_MINUTES` | alarm-rollback | 60 |
//! | `ROLLGATE_DRY_RUN` | alarm-rollback | false |
//! | `ROLLGATE_ROLLBACK_ALLOW` | alarm-rollback | `*`: every function of its account and region |
//! | `ROLLGATE_REDRIVE_ALLOW` | dlq-redrive | none: nothing may be redriven until listed |
//! | `ROLLGATE_ACCOUNT_ID`, `AWS_REGION` | alarm-rollback, dlq-redrive | home when the invoked ARN is not one (local runtimes) |
//! | `SSL_CERT_FILE` | all | the first CA bundle of [`CA_BUNDLES`] that exists; none: the system's roots |

use std::time::Duration;

/// alarm-rollback's bake window when neither `ROLLGATE_BAKE_MINUTES` nor the function's
/// policy sets one.
pub const DEFAULT_BAKE_MINUTES: u64 = 60;
/// The default SSM prefix of policy parameters.
pub const DEFAULT_POLICY_PREFIX: &str = "/rollgate/policies/";
/// The default time kept back from Lambda's deadline for reporting.
pub const DEFAULT_REPORT_MARGIN: Duration = Duration::from_secs(3);
/// The default CloudWatch namespace of rollgate's own metrics.
pub const DEFAULT_METRICS_NAMESPACE: &str = "Rollgate";
/// Where the trusted root certificates are looked for when `SSL_CERT_FILE` is not set: the
/// Red Hat family's bundle (Amazon Linux 2023, Lambda's `provided.al2023`, follows
/// Fedora's `ca-certificates`), then Debian's and Alpine's. One file, read once: scanning
/// the certificate directory instead cost 5-10 ms of every cold start here
/// (docs/benchmarks.md).
pub const CA_BUNDLES: [&str; 4] = [
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];
/// SDK attempts per call when `ROLLGATE_AWS_MAX_ATTEMPTS` is not set.
pub const DEFAULT_AWS_MAX_ATTEMPTS: u32 = 3;

/// A variable that is set but cannot be used; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}={value:?}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub message: String,
}

/// Where variables come from: the process environment in `main`, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

struct Reader<'a, S: Source>(&'a S);

impl<S: Source> Reader<'_, S> {
    /// The value, trimmed; `None` when unset or empty.
    fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        what: &str,
        ok: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ConfigError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(v) if ok(&v) => Ok(Some(v)),
            _ => Err(ConfigError {
                variable: name,
                value: text,
                message: format!("expected {what}"),
            }),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError {
                variable: name,
                value: other.to_owned(),
                message: "expected true or false".into(),
            }),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter (`RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`).
    pub filter: String,
    /// One JSON object a line (Lambda), or text.
    pub json: bool,
}

/// What every function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub topic_arn: Option<String>,
    /// `ROLLGATE_CHAT_TOPIC_ARN`: where each decision is also published as a chat card
    /// (the stack's `ChatNotifications` parameter); an SNS topic other than the decision
    /// topic, whose subscribers expect the decision's JSON.
    pub chat_topic_arn: Option<String>,
    pub metrics_namespace: String,
    pub aws_max_attempts: u32,
    pub log: LogConfig,
    /// `AWS_LAMBDA_FUNCTION_NAME`, set by Lambda.
    pub function_name: Option<String>,
    /// Home when the invoked ARN is not one: `ROLLGATE_ACCOUNT_ID`, `AWS_REGION`.
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// The CA bundle the AWS clients trust (`SSL_CERT_FILE`, else the first of
    /// [`CA_BUNDLES`] found by the adapter).
    pub ca_bundle: Option<String>,
}

impl Common {
    fn read<S: Source>(r: &Reader<'_, S>) -> Result<Self, ConfigError> {
        let function_name = r.text("AWS_LAMBDA_FUNCTION_NAME");
        let json = match r.text("ROLLGATE_LOG_FORMAT").as_deref() {
            None => function_name.is_some(),
            Some("json") => true,
            Some("text") => false,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ROLLGATE_LOG_FORMAT",
                    value: other.to_owned(),
                    message: "expected json or text".into(),
                });
            }
        };
        Ok(Common {
            chat_topic_arn: chat_topic(r)?,
            topic_arn: r.text("ROLLGATE_TOPIC_ARN"),
            metrics_namespace: r
                .text("ROLLGATE_METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned()),
            aws_max_attempts: r
                .parsed(
                    "ROLLGATE_AWS_MAX_ATTEMPTS",
                    "a whole number from 1 to 10",
                    |n| (1..=10).contains(n),
                )?
                .unwrap_or(DEFAULT_AWS_MAX_ATTEMPTS),
            log: LogConfig {
                filter: r
                    .text("RUST_LOG")
                    .or_else(|| r.text("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
                    .unwrap_or_else(|| "info".to_owned()),
                json,
            },
            function_name,
            account_id: r.text("ROLLGATE_ACCOUNT_ID"),
            region: r.text("AWS_REGION"),
            ca_bundle: r.text("SSL_CERT_FILE"),
        })
    }
}

/// `ROLLGATE_CHAT_TOPIC_ARN`: an SNS topic ARN, not the decision topic.
fn chat_topic<S: Source>(r: &Reader<'_, S>) -> Result<Option<String>, ConfigError> {
    let Some(arn) = r.text("ROLLGATE_CHAT_TOPIC_ARN") else {
        return Ok(None);
    };
    let error = |message: &str| ConfigError {
        variable: "ROLLGATE_CHAT_TOPIC_ARN",
        value: arn.clone(),
        message: message.to_owned(),
    };
    let topic = crate::names::Arn::parse(&arn).filter(|a| a.service == "sns");
    if !topic.is_some_and(|a| !a.resource.is_empty() && !a.resource.contains(':')) {
        return Err(error("not an SNS topic ARN"));
    }
    if r.text("ROLLGATE_TOPIC_ARN").as_deref() == Some(arn.as_str()) {
        return Err(error(
            "the same topic as ROLLGATE_TOPIC_ARN: chat cards need a topic of their own",
        ));
    }
    Ok(Some(arn))
}

fn policy_prefix<S: Source>(r: &Reader<'_, S>) -> String {
    r.text("ROLLGATE_POLICY_PREFIX")
        .unwrap_or_else(|| DEFAULT_POLICY_PREFIX.to_owned())
}

fn report_margin<S: Source>(r: &Reader<'_, S>) -> Result<Duration, ConfigError> {
    Ok(r.parsed::<u64>(
        "ROLLGATE_REPORT_MARGIN_MS",
        "milliseconds, a whole number",
        |_| true,
    )?
    .map(Duration::from_millis)
    .unwrap_or(DEFAULT_REPORT_MARGIN))
}

/// The pre-traffic hook's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTrafficConfig {
    pub common: Common,
    pub policy_prefix: String,
    pub report_margin: Duration,
    /// Where the decisions are kept (`ROLLGATE_LEDGER_TABLE`); without it they are
    /// logged and announced only.
    pub ledger_table: Option<String>,
}

impl PreTrafficConfig {
    pub fn read(source: &impl Source) -> Result<Self, ConfigError> {
        let r = Reader(source);
        Ok(PreTrafficConfig {
            common: Common::read(&r)?,
            policy_prefix: policy_prefix(&r),
            report_margin: report_margin(&r)?,
            ledger_table: r.text("ROLLGATE_LEDGER_TABLE"),
        })
    }
}

/// The post-traffic hook's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PostTrafficConfig {
    pub common: Common,
    pub policy_prefix: String,
    pub report_margin: Duration,
    /// Caps one run; the bake continues in a new invocation (`ROLLGATE_MAX_RUN_SECONDS`).
    pub max_run: Option<Duration>,
    /// The function a long bake continues in (`ROLLGATE_SELF_FUNCTION`).
    pub self_function: Option<String>,
    /// Where the judge's rounds during the traffic shift are read and the decisions kept
    /// (`ROLLGATE_LEDGER_TABLE`); without it the shift's judgements are not reused and
    /// the decisions are logged and announced only.
    pub ledger_table: Option<String>,
}

impl PostTrafficConfig {
    pub fn read(source: &impl Source) -> Result<Self, ConfigError> {
        let r = Reader(source);
        Ok(PostTrafficConfig {
            common: Common::read(&r)?,
            policy_prefix: policy_prefix(&r),
            report_margin: report_margin(&r)?,
            max_run: r
                .parsed::<f64>("ROLLGATE_MAX_RUN_SECONDS", "seconds above 0", |s| {
                    s.is_finite() && *s > 0.0
                })?
                .map(Duration::from_secs_f64),
            self_function: r.text("ROLLGATE_SELF_FUNCTION"),
            ledger_table: r.text("ROLLGATE_LEDGER_TABLE"),
        })
    }

    /// Where to continue: the setting, else the ARN this invocation came by (the same
    /// version or alias), else the function's name.
    pub fn continue_in(&self, invoked_function_arn: &str) -> String {
        self.self_function
            .clone()
            .or_else(|| Some(invoked_function_arn.to_owned()).filter(|a| a.starts_with("arn:")))
            .or_else(|| self.common.function_name.clone())
            .unwrap_or_default()
    }
}

/// alarm-rollback's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackConfig {
    pub common: Common,
    pub policy_prefix: String,
    pub ledger_table: String,
    pub bake_minutes: u64,
    pub dry_run: bool,
    /// `ROLLGATE_ROLLBACK_ALLOW`, as written (unset: `*`).
    pub allow: String,
    /// `ROLLGATE_OWN_ROLES`: the IAM role ARNs (or ARN patterns, `*` and `?`) of rollgate's
    /// own functions, comma separated. Alias changes CloudTrail records from them are not
    /// releases to record.
    pub own_roles: Vec<String>,
}

impl RollbackConfig {
    pub fn read(source: &impl Source) -> Result<Self, ConfigError> {
        let r = Reader(source);
        Ok(RollbackConfig {
            common: Common::read(&r)?,
            policy_prefix: policy_prefix(&r),
            ledger_table: r.text("ROLLGATE_LEDGER_TABLE").ok_or(ConfigError {
                variable: "ROLLGATE_LEDGER_TABLE",
                value: String::new(),
                message: "required: the DynamoDB table of the deployment ledger".into(),
            })?,
            bake_minutes: r
                .parsed("ROLLGATE_BAKE_MINUTES", "whole minutes", |_| true)?
                .unwrap_or(DEFAULT_BAKE_MINUTES),
            dry_run: r.flag("ROLLGATE_DRY_RUN")?,
            allow: r
                .text("ROLLGATE_ROLLBACK_ALLOW")
                .unwrap_or_else(|| "*".to_owned()),
            own_roles: own_roles(&r)?,
        })
    }
}

/// rollout's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutConfig {
    pub common: Common,
    pub policy_prefix: String,
    pub ledger_table: String,
    /// `ROLLGATE_SCHEDULE_GROUP`: the EventBridge Scheduler group of its schedules.
    pub schedule_group: String,
    /// `ROLLGATE_SCHEDULER_ROLE_ARN`: the role Scheduler assumes to invoke it.
    pub scheduler_role: String,
    /// `ROLLGATE_ROLLOUT_ALLOW`, as written (unset: `*`, every function of its home).
    pub allow: String,
    /// `ROLLGATE_SELF_ARN`: the ARN its schedules invoke (unset: the ARN it was invoked by).
    pub self_arn: Option<String>,
}

impl RolloutConfig {
    pub fn read(source: &impl Source) -> Result<Self, ConfigError> {
        let r = Reader(source);
        let required = |variable: &'static str, what: &str| {
            r.text(variable).ok_or(ConfigError {
                variable,
                value: String::new(),
                message: format!("required: {what}"),
            })
        };
        let scheduler_role = required(
            "ROLLGATE_SCHEDULER_ROLE_ARN",
            "the role EventBridge Scheduler assumes to invoke the rollout function",
        )?;
        if !crate::names::Arn::parse(&scheduler_role)
            .is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"))
        {
            return Err(ConfigError {
                variable: "ROLLGATE_SCHEDULER_ROLE_ARN",
                value: scheduler_role,
                message: "not an IAM role ARN".into(),
            });
        }
        let schedule_group = required(
            "ROLLGATE_SCHEDULE_GROUP",
            "the EventBridge Scheduler group of the rollout's schedules",
        )?;
        let group_ok = schedule_group.len() <= 64
            && schedule_group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !group_ok {
            return Err(ConfigError {
                variable: "ROLLGATE_SCHEDULE_GROUP",
                value: schedule_group,
                message: "1 to 64 letters, digits, '-', '_' or '.' (Scheduler's rule)".into(),
            });
        }
        Ok(RolloutConfig {
            common: Common::read(&r)?,
            policy_prefix: policy_prefix(&r),
            ledger_table: required(
                "ROLLGATE_LEDGER_TABLE",
                "the DynamoDB table of the deployment ledger",
            )?,
            schedule_group,
            scheduler_role,
            allow: r
                .text("ROLLGATE_ROLLOUT_ALLOW")
                .unwrap_or_else(|| "*".to_owned()),
            self_arn: r.text("ROLLGATE_SELF_ARN"),
        })
    }
}

/// `ROLLGATE_OWN_ROLES`: role ARNs or patterns (`arn:<partition>:iam::<account>:role/...`).
fn own_roles(r: &Reader<'_, impl Source>) -> Result<Vec<String>, ConfigError> {
    let Some(text) = r.text("ROLLGATE_OWN_ROLES") else {
        return Ok(Vec::new());
    };
    let roles: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for role in &roles {
        let ok = crate::names::Arn::parse(role)
            .is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"));
        if !ok {
            return Err(ConfigError {
                variable: "ROLLGATE_OWN_ROLES",
                value: text.clone(),
                message: format!("{role:?} is not an IAM role ARN"),
            });
        }
    }
    Ok(roles)
}

/// dlq-redrive's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveConfig {
    pub common: Common,
    /// `ROLLGATE_REDRIVE_ALLOW`, as written (unset: nothing).
    pub allow: String,
}

impl RedriveConfig {
    pub fn read(source: &impl Source) -> Result<Self, ConfigError> {
        let r = Reader(source);
        Ok(RedriveConfig {
            common: Common::read(&r)?,
            allow: r.text("ROLLGATE_REDRIVE_ALLOW").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_same_everywhere_and_empty_means_unset() {
        let none: [(&str, &str); 0] = [];
        let pre = PreTrafficConfig::read(&none).unwrap();
        let post = PostTrafficConfig::read(&none).unwrap();
        assert_eq!(pre.policy_prefix, DEFAULT_POLICY_PREFIX);
        assert_eq!(post.policy_prefix, DEFAULT_POLICY_PREFIX);
        assert_eq!(pre.report_margin, DEFAULT_REPORT_MARGIN);
        assert_eq!(pre.common.aws_max_attempts, DEFAULT_AWS_MAX_ATTEMPTS);
        assert_eq!(pre.common.metrics_namespace, DEFAULT_METRICS_NAMESPACE);
        assert!(!pre.common.log.json, "text outside Lambda");
        let empty = [
            ("ROLLGATE_POLICY_PREFIX", ""),
            ("ROLLGATE_TOPIC_ARN", " "),
            ("ROLLGATE_LEDGER_TABLE", "ledger"),
        ];
        let rb = RollbackConfig::read(&empty).unwrap();
        assert_eq!(rb.policy_prefix, DEFAULT_POLICY_PREFIX);
        assert_eq!(rb.common.topic_arn, None);
        assert_eq!((rb.bake_minutes, rb.dry_run), (DEFAULT_BAKE_MINUTES, false));
        assert_eq!(rb.allow, "*");
        assert_eq!(RedriveConfig::read(&none).unwrap().allow, "");
        let lambda = [("AWS_LAMBDA_FUNCTION_NAME", "rollgate-pre")];
        assert!(PreTrafficConfig::read(&lambda).unwrap().common.log.json);
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: [(&str, &str); 6] = [
            ("ROLLGATE_AWS_MAX_ATTEMPTS", "0"),
            ("ROLLGATE_REPORT_MARGIN_MS", "soon"),
            ("ROLLGATE_MAX_RUN_SECONDS", "-1"),
            ("ROLLGATE_BAKE_MINUTES", "an hour"),
            ("ROLLGATE_DRY_RUN", "maybe"),
            ("ROLLGATE_LOG_FORMAT", "xml"),
        ];
        for (name, value) in cases {
            let env = [(name, value), ("ROLLGATE_LEDGER_TABLE", "ledger")];
            let err = PostTrafficConfig::read(&env)
                .err()
                .or_else(|| RollbackConfig::read(&env).err())
                .unwrap_or_else(|| panic!("{name}={value} was accepted"));
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = RollbackConfig::read(&[("ROLLGATE_DRY_RUN", "true")]).unwrap_err();
        assert_eq!(err.variable, "ROLLGATE_LEDGER_TABLE");
    }

    #[test]
    fn the_chat_topic_is_optional_and_must_be_a_topic_of_its_own() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            PreTrafficConfig::read(&none).unwrap().common.chat_topic_arn,
            None
        );
        let chat = "arn:aws:sns:eu-west-1:123456789012:rollgate-chat";
        let env = [("ROLLGATE_CHAT_TOPIC_ARN", chat)];
        let cfg = RedriveConfig::read(&env).unwrap();
        assert_eq!(cfg.common.chat_topic_arn.as_deref(), Some(chat));
        for bad in [
            "rollgate-chat",
            "arn:aws:sqs:eu-west-1:123456789012:rollgate-chat",
            "arn:aws:sns:eu-west-1:123456789012:rollgate-chat:sub-id",
        ] {
            let err = PreTrafficConfig::read(&[("ROLLGATE_CHAT_TOPIC_ARN", bad)]).unwrap_err();
            assert_eq!(err.variable, "ROLLGATE_CHAT_TOPIC_ARN");
            assert!(err.to_string().contains("ROLLGATE_CHAT_TOPIC_ARN"), "{err}");
        }
        let same = [
            ("ROLLGATE_CHAT_TOPIC_ARN", chat),
            ("ROLLGATE_TOPIC_ARN", chat),
        ];
        let err = PostTrafficConfig::read(&same).unwrap_err();
        assert!(err.message.contains("ROLLGATE_TOPIC_ARN"), "{err}");
    }

    #[test]
    fn a_long_bake_continues_where_it_was_invoked() {
        let cfg = PostTrafficConfig::read(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "post"),
            ("ROLLGATE_MAX_RUN_SECONDS", "10"),
        ])
        .unwrap();
        assert_eq!(cfg.max_run, Some(Duration::from_secs(10)));
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:post:live";
        assert_eq!(cfg.continue_in(arn), arn);
        assert_eq!(cfg.continue_in(""), "post");
        let named = PostTrafficConfig {
            self_function: Some("other".into()),
            ..cfg
        };
        assert_eq!(named.continue_in(arn), "other");
    }
}
