//! What a function may act on: its home (the partition, region and account it runs in)
//! and allow-lists of ARN patterns.
//!
//! Both are checked before any AWS call is made with a name that came from outside:
//! an event that claims another account or region is refused as a whole, and a resource
//! outside the allow-list is left alone (and the decision says so).

use crate::error::Error;

/// ARN patterns with IAM's wildcards: `*` matches any run of characters (also none, also
/// across `:`), `?` exactly one character. The same patterns scope the function's IAM
/// role in the template, so what the code allows and what IAM allows agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    patterns: Vec<String>,
}

impl AllowList {
    /// Comma-separated patterns; blanks are ignored. Empty → nothing is allowed.
    pub fn parse(text: &str) -> Self {
        Self {
            patterns: text
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn allows(&self, arn: &str) -> bool {
        self.patterns.iter().any(|p| glob(p, arn))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Whole-string match with `*` (any run, possibly empty) and `?` (one character).
/// Linear backtracking over the last `*`: no exponential blow-up on hostile patterns.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            // Let the last `*` swallow one more character and retry.
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

pub use crate::names::Arn;

/// Where the function runs. Fields are `None` when unknown (outside Lambda without the
/// environment below); an unknown field is not compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Home {
    pub partition: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

fn known(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The partition a region belongs to.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

impl Home {
    /// From the ARN the function was invoked by (Lambda's context: authoritative);
    /// when that is not an ARN (local emulators), from `account` and `region`
    /// (`ROLLGATE_ACCOUNT_ID` and `AWS_REGION`, read by [`crate::config`]).
    pub fn from_parts(invoked_arn: &str, account: Option<&str>, region: Option<&str>) -> Self {
        if let Some(arn) = Arn::parse(invoked_arn).filter(|a| a.service == "lambda") {
            return Home {
                partition: known(arn.partition),
                region: known(arn.region),
                account: known(arn.account),
            };
        }
        let region = region.and_then(known);
        Home {
            partition: region.as_deref().map(|r| partition_of(r).to_owned()),
            region,
            account: account.and_then(known),
        }
    }

    /// The ARN of a function given by name (or already by ARN, returned as is).
    pub fn function_arn(&self, name_or_arn: &str) -> String {
        if name_or_arn.starts_with("arn:") {
            return name_or_arn.to_owned();
        }
        format!(
            "arn:{}:lambda:{}:{}:function:{name_or_arn}",
            self.partition.as_deref().unwrap_or("aws"),
            self.region.as_deref().unwrap_or(""),
            self.account.as_deref().unwrap_or("")
        )
    }

    /// A function's plain name when it is one of home's functions (given by name or by
    /// an ARN of this partition, region and account); `None` for another home's.
    pub fn local_function(&self, name_or_arn: &str) -> Option<String> {
        let Some(arn) = Arn::parse(name_or_arn) else {
            return Some(name_or_arn.to_owned());
        };
        let name = arn.resource.strip_prefix("function:")?;
        (arn.service == "lambda" && self.mismatch(&arn).is_none() && !name.contains(':'))
            .then(|| name.to_owned())
    }

    /// Which part of `arn` says it belongs elsewhere, as `(part, theirs, ours)`.
    fn mismatch<'a>(&'a self, arn: &Arn<'a>) -> Option<(&'static str, &'a str, &'a str)> {
        let parts = [
            ("partition", arn.partition, &self.partition),
            ("region", arn.region, &self.region),
            ("account", arn.account, &self.account),
        ];
        // An empty region or account in an ARN (global resources) claims nothing.
        parts
            .into_iter()
            .find_map(|(what, theirs, ours)| match ours {
                Some(ours) if !theirs.is_empty() && theirs != ours => {
                    Some((what, theirs, &ours[..]))
                }
                _ => None,
            })
    }

    /// Refuse an event whose claims of origin (`(field, value)`: an account id, a region
    /// or an ARN, as the envelope spells them) point to another account, region or
    /// partition. The error names the field.
    pub fn admit(&self, claims: &[(String, String)]) -> Result<(), Error> {
        for (field, value) in claims {
            let leaf = field.rsplit('.').next().unwrap_or(field);
            let found = if value.starts_with("arn:") {
                match Arn::parse(value) {
                    Some(arn) => self.mismatch(&arn),
                    None => Some(("ARN", value.as_str(), "arn:partition:service:...")),
                }
            } else if leaf.eq_ignore_ascii_case("region") {
                match &self.region {
                    Some(ours) if value != ours => Some(("region", value.as_str(), ours.as_str())),
                    _ => None,
                }
            } else {
                match &self.account {
                    Some(ours) if value != ours => Some(("account", value.as_str(), ours.as_str())),
                    _ => None,
                }
            };
            if let Some((what, theirs, ours)) = found {
                return Err(Error::InvalidEvent(format!(
                    "{field}: {what} {theirs:?} is not this function's {what} {ours:?}; \
                     it acts only on its own account and region: nothing was done"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_globs() {
        let a = AllowList::parse(
            "arn:aws:sqs:us-east-1:123:orders-*, arn:aws:lambda:*:123:function:app-*",
        );
        assert!(a.allows("arn:aws:sqs:us-east-1:123:orders-dlq"));
        assert!(!a.allows("arn:aws:sqs:us-east-1:123:payments-dlq"));
        assert!(a.allows("arn:aws:lambda:eu-west-1:123:function:app-x:live"));
        assert!(!AllowList::parse("").allows("arn:aws:sqs:us-east-1:123:orders"));
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxc") && glob("*", ""));
        assert!(!glob("ab*ba", "aba") && glob("ab*ba", "abba") && glob("*a", "aaa"));
        assert!(glob("", "") && !glob("", "a") && glob("**", "abc"));
    }

    #[test]
    fn question_mark_is_one_character_as_in_iam() {
        let a = AllowList::parse("arn:aws:lambda:us-east-1:123:function:app-?");
        assert!(a.allows("arn:aws:lambda:us-east-1:123:function:app-1"));
        assert!(!a.allows("arn:aws:lambda:us-east-1:123:function:app-"));
        assert!(!a.allows("arn:aws:lambda:us-east-1:123:function:app-12"));
        assert!(glob("?*?", "ab") && !glob("?*?", "a") && glob("é?", "éx"));
    }

    #[test]
    fn hostile_patterns_stay_linear() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(500));
        let t = std::time::Instant::now();
        assert!(!glob(&pattern, &text));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    fn home() -> Home {
        Home::from_parts(
            "arn:aws:lambda:us-east-1:123456789012:function:rollgate-alarm-rollback",
            Some("999999999999"),
            Some("eu-west-1"),
        )
    }

    #[test]
    fn home_from_the_invoked_arn_else_the_environment() {
        let h = home();
        assert_eq!(h.account.as_deref(), Some("123456789012"));
        assert_eq!(h.region.as_deref(), Some("us-east-1"));
        assert_eq!(h.partition.as_deref(), Some("aws"));
        // cargo lambda watch passes a placeholder, not an ARN.
        let local = Home::from_parts("function-arn", Some("123456789012"), Some("cn-north-1"));
        assert_eq!(local.partition.as_deref(), Some("aws-cn"));
        assert_eq!(local.account.as_deref(), Some("123456789012"));
        assert_eq!(Home::from_parts("", None, Some(" ")), Home::default());
    }

    #[test]
    fn functions_of_home_by_name_or_arn() {
        let h = home();
        assert_eq!(
            h.function_arn("orders"),
            "arn:aws:lambda:us-east-1:123456789012:function:orders"
        );
        assert_eq!(h.local_function("orders").as_deref(), Some("orders"));
        let own = "arn:aws:lambda:us-east-1:123456789012:function:orders";
        assert_eq!(h.local_function(own).as_deref(), Some("orders"));
        for foreign in [
            "arn:aws:lambda:us-east-1:111122223333:function:orders",
            "arn:aws:lambda:eu-west-1:123456789012:function:orders",
            "arn:aws-cn:lambda:us-east-1:123456789012:function:orders",
            "arn:aws:sqs:us-east-1:123456789012:orders",
            "arn:aws:lambda:us-east-1:123456789012:function:orders:live",
        ] {
            assert_eq!(h.local_function(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn admit_names_the_field_that_claims_elsewhere() {
        let h = home();
        let claim = |f: &str, v: &str| vec![(f.to_owned(), v.to_owned())];
        assert!(h.admit(&claim("account", "123456789012")).is_ok());
        assert!(h.admit(&claim("region", "us-east-1")).is_ok());
        let arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x";
        assert!(h.admit(&claim("resources[0]", arn)).is_ok());
        // Global resources have no region.
        assert!(
            h.admit(&claim("alarmArn", "arn:aws:iam::123456789012:role/x"))
                .is_ok()
        );
        let e = h.admit(&claim("account", "111122223333")).unwrap_err();
        assert!(
            e.to_string().contains("account: account \"111122223333\"")
                && e.to_string().contains("\"123456789012\"")
                && e.to_string().contains("nothing was done"),
            "{e}"
        );
        let e = h.admit(&claim("region", "eu-west-1")).unwrap_err();
        assert!(
            e.to_string().contains("region: region \"eu-west-1\""),
            "{e}"
        );
        let e = h
            .admit(&claim(
                "Records[0].Sns.Message.AlarmArn",
                "arn:aws:cloudwatch:us-east-1:111122223333:alarm:x",
            ))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Records[0].Sns.Message.AlarmArn: account"),
            "{e}"
        );
        let e = h.admit(&claim(
            "alarmArn",
            "arn:aws-cn:cloudwatch:us-east-1:123456789012:alarm:x",
        ));
        assert!(e.unwrap_err().to_string().contains("partition"));
        assert!(h.admit(&claim("alarmArn", "arn:")).is_err());
        // Nothing known, nothing compared.
        assert!(
            Home::default()
                .admit(&claim("account", "111122223333"))
                .is_ok()
        );
    }
}
