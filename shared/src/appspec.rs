//! The CodeDeploy AppSpec of a Lambda deployment: which function, alias and versions
//! the deployment moves, and which lifecycle hooks it runs.
//!
//! CodeDeploy hands the hook the AppSpec as JSON or YAML text. The text comes from
//! outside rollgate, so [`parse`] accepts exactly one `AWS::Lambda::Function` resource
//! and names the offending field path in every error. CodeDeploy's model puts no size on
//! the text (`RawStringContent`), so neither does rollgate: the parsers bound the work
//! (serde_json's recursion limit, serde-saphyr's default budget on events, depth and
//! aliases), not the length.

use crate::names::{FunctionRef, is_alias, is_version};
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// The only resource type rollgate gates.
pub const LAMBDA_RESOURCE_TYPE: &str = "AWS::Lambda::Function";

/// The Lambda function, alias and version pair a deployment moves traffic between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaTarget {
    /// Bare function name (`orders`), extracted from `Properties.Name`.
    pub function_name: String,
    /// `Properties.Name` exactly as written: a name, `name:qualifier`, a partial or a full ARN.
    pub function_ref: String,
    pub alias: String,
    /// Positive integer version the alias points at before the deployment, e.g. `"1"`.
    pub current_version: String,
    /// Positive integer version the deployment shifts the alias to, e.g. `"2"`.
    pub target_version: String,
    /// Lifecycle hooks in the order the AppSpec lists them.
    pub hooks: Vec<LifecycleHook>,
}

#[cfg(test)]
impl LambdaTarget {
    /// The Lambda function CodeDeploy runs for `event` (e.g. `BeforeAllowTraffic`), if any.
    fn hook(&self, event: &str) -> Option<&str> {
        self.hooks
            .iter()
            .find(|h| h.event == event)
            .map(|h| h.function.as_str())
    }
}

/// One lifecycle hook: `BeforeAllowTraffic: "HookFnName"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleHook {
    pub event: String,
    pub function: String,
}

/// The text format an AppSpec was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSpecFormat {
    Json,
    Yaml,
}

impl std::fmt::Display for AppSpecFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AppSpecFormat::Json => "JSON",
            AppSpecFormat::Yaml => "YAML",
        })
    }
}

/// Why an AppSpec cannot be gated. Field paths look like
/// `Resources[0].orders.Properties.TargetVersion`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AppSpecError {
    #[error("AppSpec is empty")]
    Empty,

    #[error("AppSpec is not valid {format}{}: {message}", position(*.line, *.column))]
    Syntax {
        format: AppSpecFormat,
        message: String,
        /// 1-based line of the error, when the parser reported one.
        line: Option<u64>,
        /// 1-based column of the error, when the parser reported one.
        column: Option<u64>,
    },

    #[error("AppSpec must be a mapping (object) at the top level, got {found}")]
    NotAMapping { found: String },

    #[error("AppSpec field {path} is missing")]
    Missing { path: String },

    #[error("AppSpec field {path} must be {expected}, got {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: String,
    },

    #[error("AppSpec field {path} must be a positive integer version, got {found}")]
    InvalidVersion { path: String, found: String },

    #[error("AppSpec field {path} is invalid: {reason}")]
    Invalid { path: String, reason: String },

    #[error(
        "AppSpec resource {path} is of type {found}; rollgate gates only {LAMBDA_RESOURCE_TYPE} deployments"
    )]
    NotLambda { path: String, found: String },

    #[error("AppSpec must list exactly one resource under Resources, found {count}")]
    ResourceCount { count: usize },
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Parses a CodeDeploy Lambda AppSpec, JSON when the trimmed text starts with `{`, YAML otherwise.
pub fn parse(content: &str) -> Result<LambdaTarget, AppSpecError> {
    let text = content.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(AppSpecError::Empty);
    }
    let doc = if text.starts_with('{') {
        serde_json::from_str::<Value>(text).map_err(|e| AppSpecError::Syntax {
            format: AppSpecFormat::Json,
            message: strip_json_position(&e),
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
        })?
    } else {
        serde_saphyr::from_str::<Value>(text).map_err(|e| {
            let loc = e.location();
            AppSpecError::Syntax {
                format: AppSpecFormat::Yaml,
                message: yaml_message(&e),
                line: loc.map(|l| l.line()),
                column: loc.map(|l| l.column()),
            }
        })?
    };
    from_document(&doc)
}

/// The bare YAML error message: no source snippet (which would echo the input) and no
/// position prefix (the error carries the position separately), on one line.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let mut msg = text.trim();
    msg = msg.strip_prefix("error: ").unwrap_or(msg);
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some((_, tail)) = rest.split_once(": ")
    {
        msg = tail;
    }
    msg = msg.lines().next().unwrap_or_default();
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    msg.trim().to_string()
}

/// serde_json appends " at line X column Y" to its messages; the error carries both already.
fn strip_json_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn from_document(doc: &Value) -> Result<LambdaTarget, AppSpecError> {
    let root = match doc {
        Value::Object(map) => map,
        Value::Null => return Err(AppSpecError::Empty),
        other => {
            return Err(AppSpecError::NotAMapping {
                found: describe(other),
            });
        }
    };

    let resources = match root.get("Resources") {
        Some(v) => v,
        None if root.contains_key("os") || root.contains_key("files") => {
            return Err(AppSpecError::NotLambda {
                path: "(document)".into(),
                found: "EC2/On-Premises (it has os/files sections instead of Resources)".into(),
            });
        }
        None => return Err(missing("Resources")),
    };
    let resources = resources
        .as_array()
        .ok_or_else(|| wrong("Resources", "a list", resources))?;
    if resources.len() != 1 {
        return Err(AppSpecError::ResourceCount {
            count: resources.len(),
        });
    }

    // Each entry is a one-key mapping: logical name -> { Type, Properties }.
    let entry = resources[0]
        .as_object()
        .ok_or_else(|| wrong("Resources[0]", "a mapping", &resources[0]))?;
    if entry.len() != 1 {
        return Err(AppSpecError::Invalid {
            path: "Resources[0]".into(),
            reason: format!(
                "must hold exactly one logical resource name, found {}",
                entry.len()
            ),
        });
    }
    let (logical, resource) = entry.iter().next().expect("one entry");
    let base = format!("Resources[0].{logical}");
    let resource = resource
        .as_object()
        .ok_or_else(|| wrong(&base, "a mapping", resource))?;

    let type_path = format!("{base}.Type");
    let kind = required_str(resource, &type_path, "Type")?;
    if kind != LAMBDA_RESOURCE_TYPE {
        return Err(AppSpecError::NotLambda {
            path: base,
            found: kind.to_string(),
        });
    }

    let props_path = format!("{base}.Properties");
    let props = resource
        .get("Properties")
        .ok_or_else(|| missing(&props_path))?;
    let props = props
        .as_object()
        .ok_or_else(|| wrong(&props_path, "a mapping", props))?;

    let name_path = format!("{props_path}.Name");
    let function_ref = required_str(props, &name_path, "Name")?.to_string();
    let function_name =
        bare_function_name(&function_ref).map_err(|reason| AppSpecError::Invalid {
            path: name_path,
            reason,
        })?;

    let alias_path = format!("{props_path}.Alias");
    let alias = required_str(props, &alias_path, "Alias")?.to_string();
    validate_alias(&alias).map_err(|reason| AppSpecError::Invalid {
        path: alias_path,
        reason,
    })?;

    let current_version = version(props, &props_path, "CurrentVersion")?;
    let target_version = version(props, &props_path, "TargetVersion")?;
    let hooks = hooks(root)?;

    Ok(LambdaTarget {
        function_name,
        function_ref,
        alias,
        current_version,
        target_version,
        hooks,
    })
}

fn hooks(root: &Map<String, Value>) -> Result<Vec<LifecycleHook>, AppSpecError> {
    let Some(hooks) = root.get("Hooks") else {
        return Ok(Vec::new());
    };
    if hooks.is_null() {
        return Ok(Vec::new());
    }
    let list = hooks
        .as_array()
        .ok_or_else(|| wrong("Hooks", "a list", hooks))?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("Hooks[{i}]");
        let map = item
            .as_object()
            .ok_or_else(|| wrong(&path, "a mapping of event to function", item))?;
        if map.is_empty() {
            return Err(AppSpecError::Invalid {
                path,
                reason: "names no lifecycle event".into(),
            });
        }
        for (event, function) in map {
            let fpath = format!("{path}.{event}");
            let function = function
                .as_str()
                .ok_or_else(|| wrong(&fpath, "a function name string", function))?;
            if function.trim().is_empty() {
                return Err(AppSpecError::Invalid {
                    path: fpath,
                    reason: "function name is empty".into(),
                });
            }
            out.push(LifecycleHook {
                event: event.clone(),
                function: function.to_string(),
            });
        }
    }
    Ok(out)
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, AppSpecError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(missing(path)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(AppSpecError::Invalid {
            path: path.to_string(),
            reason: "must not be empty".into(),
        }),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(wrong(path, "a string", other)),
    }
}

/// Versions may be written as strings or integers; either way they must be a positive integer.
fn version(
    props: &Map<String, Value>,
    props_path: &str,
    key: &str,
) -> Result<String, AppSpecError> {
    let path = format!("{props_path}.{key}");
    let invalid = |found: String| AppSpecError::InvalidVersion {
        path: path.clone(),
        found,
    };
    match props.get(key) {
        None | Some(Value::Null) => Err(missing(&path)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > 0 => Ok(v.to_string()),
            _ => Err(invalid(n.to_string())),
        },
        Some(Value::String(s)) => {
            let digits = s.trim();
            let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            match digits.parse::<u64>() {
                Ok(v) if ok && v > 0 => Ok(v.to_string()),
                _ => Err(invalid(format!("{s:?}"))),
            }
        }
        Some(other) => Err(invalid(describe(other))),
    }
}

/// The bare function name of any reference Lambda takes (see [`FunctionRef`]).
fn bare_function_name(reference: &str) -> Result<String, String> {
    FunctionRef::parse(reference).map(|r| r.name.to_string())
}

fn validate_alias(alias: &str) -> Result<(), String> {
    if is_alias(alias) {
        Ok(())
    } else if is_version(alias) {
        Err(format!(
            "alias {alias:?} is all digits, which Lambda treats as a version, not an alias"
        ))
    } else {
        Err(format!(
            "alias {alias:?} must be 1-128 characters of letters, digits, '-' or '_'"
        ))
    }
}

fn missing(path: &str) -> AppSpecError {
    AppSpecError::Missing {
        path: path.to_string(),
    }
}

fn wrong(path: &str, expected: &'static str, found: &Value) -> AppSpecError {
    AppSpecError::WrongType {
        path: path.to_string(),
        expected,
        found: describe(found),
    }
}

/// A short, bounded description of a JSON value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 60 => {
            let head: String = s.chars().take(60).collect();
            format!("a string ({head:?}...)")
        }
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(a) => format!("a list of {} item(s)", a.len()),
        Value::Object(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "version: 0.0
Resources:
  - orders:
      Type: AWS::Lambda::Function
      Properties:
        Name: \"orders\"
        Alias: \"live\"
        CurrentVersion: \"1\"
        TargetVersion: \"2\"
Hooks:
  - BeforeAllowTraffic: \"rollgate-pre-traffic\"
  - AfterAllowTraffic: \"rollgate-post-traffic\"
";

    fn json_with_props(props: &str) -> String {
        format!(
            r#"{{"version": 0.0, "Resources": [{{"orders": {{"Type": "AWS::Lambda::Function", "Properties": {{{props}}}}}}}]}}"#
        )
    }

    const FULL_PROPS: &str =
        r#""Name": "orders", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2""#;

    fn err(content: &str) -> String {
        parse(content).unwrap_err().to_string()
    }

    #[test]
    fn parses_yaml() {
        let t = parse(YAML).unwrap();
        assert_eq!(t.function_name, "orders");
        assert_eq!(t.function_ref, "orders");
        assert_eq!(t.alias, "live");
        assert_eq!(t.current_version, "1");
        assert_eq!(t.target_version, "2");
        assert_eq!(
            t.hooks,
            vec![
                LifecycleHook {
                    event: "BeforeAllowTraffic".into(),
                    function: "rollgate-pre-traffic".into()
                },
                LifecycleHook {
                    event: "AfterAllowTraffic".into(),
                    function: "rollgate-post-traffic".into()
                },
            ]
        );
        assert_eq!(t.hook("BeforeAllowTraffic"), Some("rollgate-pre-traffic"));
        assert_eq!(t.hook("Nope"), None);
    }

    #[test]
    fn parses_json_with_hooks() {
        let text = r#"  {"version": 0.0,
            "Resources": [{"orders": {"Type": "AWS::Lambda::Function",
                "Properties": {"Name": "orders", "Alias": "live", "CurrentVersion": "3", "TargetVersion": "4"}}}],
            "Hooks": [{"BeforeAllowTraffic": "gate"}]}"#;
        let t = parse(text).unwrap();
        assert_eq!(t.current_version, "3");
        assert_eq!(t.target_version, "4");
        assert_eq!(t.hooks.len(), 1);
        assert_eq!(t.hook("BeforeAllowTraffic"), Some("gate"));
    }

    #[test]
    fn json_without_hooks_has_none() {
        let t = parse(&json_with_props(FULL_PROPS)).unwrap();
        assert!(t.hooks.is_empty());
    }

    #[test]
    fn integer_versions_are_normalised_to_strings() {
        let yaml = YAML
            .replace("CurrentVersion: \"1\"", "CurrentVersion: 1")
            .replace("TargetVersion: \"2\"", "TargetVersion: 12");
        let t = parse(&yaml).unwrap();
        assert_eq!(
            (t.current_version.as_str(), t.target_version.as_str()),
            ("1", "12")
        );
        let json = json_with_props(
            r#""Name": "orders", "Alias": "live", "CurrentVersion": 5, "TargetVersion": 6"#,
        );
        let t = parse(&json).unwrap();
        assert_eq!(
            (t.current_version.as_str(), t.target_version.as_str()),
            ("5", "6")
        );
    }

    #[test]
    fn rejects_non_positive_or_non_integer_versions() {
        for (value, shown) in [
            (r#""$LATEST""#, r#""$LATEST""#),
            (r#""""#, r#""""#),
            (r#""0""#, r#""0""#),
            ("0", "0"),
            ("-1", "-1"),
            ("1.5", "1.5"),
            (r#""v2""#, r#""v2""#),
            ("true", "a boolean (true)"),
        ] {
            let props = format!(
                r#""Name": "orders", "Alias": "live", "CurrentVersion": "1", "TargetVersion": {value}"#
            );
            assert_eq!(
                err(&json_with_props(&props)),
                format!(
                    "AppSpec field Resources[0].orders.Properties.TargetVersion must be a positive integer version, got {shown}"
                ),
                "value {value}"
            );
        }
    }

    #[test]
    fn accepts_arns_and_qualified_names() {
        for (name, bare) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:orders",
                "orders",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:orders:live",
                "orders",
            ),
            (
                "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders-v2:7",
                "orders-v2",
            ),
            ("123456789012:function:orders_x", "orders_x"),
            ("123456789012:function:orders:live", "orders"),
            ("orders:live", "orders"),
        ] {
            let props = format!(
                r#""Name": "{name}", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2""#
            );
            let t = parse(&json_with_props(&props)).unwrap();
            assert_eq!(t.function_name, bare, "{name}");
            assert_eq!(t.function_ref, name);
        }
    }

    #[test]
    fn rejects_malformed_names() {
        for name in [
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
            "a:b:c:d:e",
            "orders:",
            "has space",
            "ördërs",
        ] {
            let props = format!(
                r#""Name": "{name}", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2""#
            );
            let msg = err(&json_with_props(&props));
            assert!(
                msg.starts_with("AppSpec field Resources[0].orders.Properties.Name is invalid: "),
                "{name}: {msg}"
            );
        }
    }

    #[test]
    fn rejects_bad_aliases() {
        for alias in ["12", "li ve", "$LATEST"] {
            let props = format!(
                r#""Name": "orders", "Alias": "{alias}", "CurrentVersion": "1", "TargetVersion": "2""#
            );
            let msg = err(&json_with_props(&props));
            assert!(
                msg.starts_with("AppSpec field Resources[0].orders.Properties.Alias is invalid"),
                "{alias}: {msg}"
            );
        }
    }

    #[test]
    fn names_each_missing_property() {
        for field in ["Name", "Alias", "CurrentVersion", "TargetVersion"] {
            let props: Vec<&str> = FULL_PROPS
                .split(", ")
                .filter(|p| !p.starts_with(&format!("\"{field}\"")))
                .collect();
            let msg = err(&json_with_props(&props.join(", ")));
            assert_eq!(
                msg,
                format!("AppSpec field Resources[0].orders.Properties.{field} is missing")
            );
        }
        let msg = err(&json_with_props(
            r#""Name": null, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2""#,
        ));
        assert!(msg.ends_with("Properties.Name is missing"), "{msg}");
    }

    #[test]
    fn names_missing_structure() {
        assert_eq!(err("version: 0.0\n"), "AppSpec field Resources is missing");
        assert_eq!(
            err("Resources:\n  - orders:\n      Properties: {}\n"),
            "AppSpec field Resources[0].orders.Type is missing"
        );
        assert_eq!(
            err("Resources:\n  - orders:\n      Type: AWS::Lambda::Function\n"),
            "AppSpec field Resources[0].orders.Properties is missing"
        );
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(
            err(&json_with_props(
                r#""Name": 42, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2""#
            )),
            "AppSpec field Resources[0].orders.Properties.Name must be a string, got a number (42)"
        );
        assert_eq!(
            err(r#"{"Resources": {"orders": {}}}"#),
            "AppSpec field Resources must be a list, got a mapping"
        );
        assert_eq!(
            err("Resources:\n  - orders: 3\n"),
            "AppSpec field Resources[0].orders must be a mapping, got a number (3)"
        );
        assert_eq!(
            err(&format!("{YAML}  - 7\n")),
            "AppSpec field Hooks[2] must be a mapping of event to function, got a number (7)"
        );
        assert_eq!(
            err(&YAML.replace("\"rollgate-post-traffic\"", "[a]")),
            "AppSpec field Hooks[1].AfterAllowTraffic must be a function name string, got a list of 1 item(s)"
        );
    }

    #[test]
    fn rejects_ecs_appspec() {
        let ecs = "version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: \"arn:aws:ecs:us-east-1:111222333444:task-definition/web:1\"
        LoadBalancerInfo:
          ContainerName: \"web\"
          ContainerPort: 80
";
        let e = parse(ecs).unwrap_err();
        assert!(
            matches!(&e, AppSpecError::NotLambda { found, .. } if found == "AWS::ECS::Service")
        );
        assert_eq!(
            e.to_string(),
            "AppSpec resource Resources[0].TargetService is of type AWS::ECS::Service; rollgate gates only AWS::Lambda::Function deployments"
        );
    }

    #[test]
    fn rejects_ec2_appspec() {
        let ec2 = "version: 0.0
os: linux
files:
  - source: /
    destination: /var/www
hooks:
  ApplicationStart:
    - location: scripts/start.sh
";
        let e = parse(ec2).unwrap_err();
        assert!(matches!(e, AppSpecError::NotLambda { .. }), "{e}");
        assert!(e.to_string().contains("EC2/On-Premises"), "{e}");
    }

    #[test]
    fn requires_exactly_one_resource() {
        let two = YAML.replace(
            "Hooks:",
            "  - other:\n      Type: AWS::Lambda::Function\n      Properties: {}\nHooks:",
        );
        assert_eq!(
            parse(&two).unwrap_err(),
            AppSpecError::ResourceCount { count: 2 }
        );
        assert_eq!(
            err(r#"{"Resources": []}"#),
            "AppSpec must list exactly one resource under Resources, found 0"
        );
        let two_names = "Resources:\n  - a:\n      Type: x\n    b:\n      Type: y\n";
        assert_eq!(
            err(two_names),
            "AppSpec field Resources[0] is invalid: must hold exactly one logical resource name, found 2"
        );
    }

    #[test]
    fn rejects_empty_input() {
        for text in ["", "   \n\t", "\u{feff}", "---\n", "null"] {
            assert_eq!(parse(text).unwrap_err(), AppSpecError::Empty, "{text:?}");
        }
    }

    #[test]
    fn garbage_reports_format_and_position() {
        let e = parse("{\"Resources\": [}").unwrap_err();
        let AppSpecError::Syntax {
            format,
            line,
            column,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*format, AppSpecFormat::Json);
        assert_eq!((*line, *column), (Some(1), Some(16)));
        assert!(
            e.to_string()
                .starts_with("AppSpec is not valid JSON at line 1, column 16: "),
            "{e}"
        );

        let e = parse("Resources:\n  - a: [unclosed\n").unwrap_err();
        assert!(
            matches!(
                &e,
                AppSpecError::Syntax {
                    format: AppSpecFormat::Yaml,
                    line: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "AppSpec is not valid YAML at line 2, column 8: unclosed bracket '['"
        );

        assert_eq!(
            err("just some words"),
            "AppSpec must be a mapping (object) at the top level, got a string (\"just some words\")"
        );
        assert_eq!(
            err("- 1\n- 2\n"),
            "AppSpec must be a mapping (object) at the top level, got a list of 2 item(s)"
        );
    }

    #[test]
    fn takes_an_appspec_of_any_size_codedeploy_stores() {
        // No size is refused (the model has none).
        let huge = format!("{YAML}#{}\n", "x".repeat(4 << 20));
        assert_eq!(parse(&huge).unwrap(), parse(YAML).unwrap());
        // Nesting deeper than the parsers' budgets is refused, not followed.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse(&deep).unwrap_err(),
            AppSpecError::Syntax { .. }
        ));
    }

    #[test]
    fn hook_values_must_be_non_empty() {
        assert_eq!(
            err(&YAML.replace("\"rollgate-pre-traffic\"", "\"\"")),
            "AppSpec field Hooks[0].BeforeAllowTraffic is invalid: function name is empty"
        );
    }
}
