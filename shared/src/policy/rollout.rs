//! The policy's `rollout` section: the steps a rollgate rollout moves an alias through,
//! and what an undecided judgement at a step does.

use super::PolicyError;
use serde::{Deserialize, Deserializer, Serialize};

/// At most this many steps.
pub const MAX_STEPS: usize = 20;
/// The shortest hold: EventBridge Scheduler fires one-time schedules to the minute.
pub const MIN_HOLD_SECONDS: u64 = 60;
/// The longest hold: 14 days.
pub const MAX_HOLD_SECONDS: u64 = 14 * 24 * 3600;
/// At most this many extra holds of an undecided step.
pub const MAX_EXTENSIONS: u32 = 10;

/// One step: the share of traffic on the new version, and how long it is held before
/// the judge decides. The last step is 100 % and has no hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Percent of requests on the new version, over 0 and at most 100.
    pub weight: f64,
    /// How long the step is held, as `<n>s`, `<n>m`, `<n>h` or `<n>d` (a whole number).
    #[serde(
        default,
        deserialize_with = "hold",
        serialize_with = "hold_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold: Option<u64>,
}

/// What an undecided judgement at a step (too little traffic, or data that show
/// neither) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Hold the step again, up to `max_extensions` times; then fail.
    #[default]
    Extend,
    /// Go on to the next step.
    Advance,
    /// Restore the old version.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPolicy {
    #[serde(default = "default_steps")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub on_inconclusive: OnInconclusive,
    #[serde(default = "default_extensions")]
    pub max_extensions: u32,
    /// During a CodeDeploy deployment's traffic shift, judge the new version against the
    /// old one this often (seconds; `"5m"` by default) and stop the deployment when it
    /// fails.
    #[serde(
        default = "default_shift_every",
        deserialize_with = "every",
        serialize_with = "every_text"
    )]
    pub judge_shift_every: u64,
    /// `false`: leave CodeDeploy's shifts to the alarms and the post-traffic hook.
    #[serde(default = "judged_by_default")]
    pub judge_shift: bool,
}

fn default_shift_every() -> u64 {
    300
}

fn judged_by_default() -> bool {
    true
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            steps: default_steps(),
            on_inconclusive: OnInconclusive::default(),
            max_extensions: default_extensions(),
            judge_shift_every: default_shift_every(),
            judge_shift: true,
        }
    }
}

/// 10 % for 10 minutes, 50 % for 10 minutes, then all.
pub fn default_steps() -> Vec<Step> {
    vec![
        Step {
            weight: 10.0,
            hold: Some(600),
        },
        Step {
            weight: 50.0,
            hold: Some(600),
        },
        Step {
            weight: 100.0,
            hold: None,
        },
    ]
}

fn default_extensions() -> u32 {
    2
}

/// `"90s"`, `"5m"`, `"4h"`, `"2d"` to seconds.
pub fn parse_hold(text: &str) -> Result<u64, String> {
    let unit = text.chars().last().unwrap_or(' ');
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{text:?} is not <n>s, <n>m, <n>h or <n>d")),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(format!("{text:?} is not a whole number of {unit}"));
    }
    let n: u64 = digits.parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok(n * scale)
}

/// Seconds back to the shortest exact text.
pub fn hold_words(seconds: u64) -> String {
    for (unit, scale) in [('d', 86_400), ('h', 3600), ('m', 60)] {
        if seconds > 0 && seconds.is_multiple_of(scale) {
            return format!("{}{unit}", seconds / scale);
        }
    }
    format!("{seconds}s")
}

fn hold<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    every(d).map(Some)
}

fn every<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_hold(&text).map_err(serde::de::Error::custom)
}

fn every_text<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hold_words(*v))
}

fn hold_text<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => every_text(n, s),
        None => s.serialize_none(),
    }
}

/// The rules of a list of steps, wherever it comes from (the policy, a request); `path`
/// names the list in the error.
pub fn validate_steps(path: &str, steps: &[Step]) -> Result<(), PolicyError> {
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(PolicyError::invalid(
            path,
            format!("1 to {MAX_STEPS} steps, got {}", steps.len()),
        ));
    }
    let mut last = 0.0;
    for (i, s) in steps.iter().enumerate() {
        let here = format!("{path}[{i}]");
        if !(s.weight > last && s.weight <= 100.0 && s.weight.is_finite()) {
            return Err(PolicyError::invalid(
                format!("{here}.weight"),
                format!(
                    "weights rise above 0 to at most 100; got {} after {last}",
                    s.weight
                ),
            ));
        }
        last = s.weight;
        let is_last = i + 1 == steps.len();
        match (is_last, s.hold) {
            (false, None) => {
                return Err(PolicyError::invalid(
                    format!("{here}.hold"),
                    "every step before the last is held (for example \"10m\")",
                ));
            }
            (_, Some(h)) if !(MIN_HOLD_SECONDS..=MAX_HOLD_SECONDS).contains(&h) => {
                return Err(PolicyError::invalid(
                    format!("{here}.hold"),
                    format!("from 1 minute to 14 days, got {}", hold_words(h)),
                ));
            }
            _ => {}
        }
    }
    if last != 100.0 {
        return Err(PolicyError::invalid(
            path,
            format!("the last step takes all traffic (weight 100), not {last}"),
        ));
    }
    Ok(())
}

impl RolloutPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_steps("rollout.steps", &self.steps)?;
        if !(MIN_HOLD_SECONDS..=3600).contains(&self.judge_shift_every) {
            return Err(PolicyError::invalid(
                "rollout.judge_shift_every",
                format!(
                    "from 1 minute to 1 hour, got {}",
                    hold_words(self.judge_shift_every)
                ),
            ));
        }
        if self.max_extensions > MAX_EXTENSIONS {
            return Err(PolicyError::invalid(
                "rollout.max_extensions",
                format!("at most {MAX_EXTENSIONS}, got {}", self.max_extensions),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_read_and_write_in_their_units() {
        assert_eq!(parse_hold("90s"), Ok(90));
        assert_eq!(parse_hold("5m"), Ok(300));
        assert_eq!(parse_hold("4h"), Ok(14_400));
        assert_eq!(parse_hold("2d"), Ok(172_800));
        for bad in ["", "h", "1.5h", "-1m", "10", "1w", "1 h", "9999999999s"] {
            assert!(parse_hold(bad).is_err(), "{bad}");
        }
        assert_eq!(hold_words(3600), "1h");
        assert_eq!(hold_words(90), "90s");
        assert_eq!(hold_words(172_800), "2d");
    }

    #[test]
    fn steps_rise_to_100_and_each_but_the_last_is_held() {
        let step = |weight: f64, hold: Option<u64>| Step { weight, hold };
        assert!(validate_steps("s", &default_steps()).is_ok());
        let cases = [
            (vec![], "1 to 20"),
            (
                vec![
                    step(50.0, Some(60)),
                    step(50.0, Some(60)),
                    step(100.0, None),
                ],
                "rise",
            ),
            (
                vec![step(5.0, Some(60)), step(50.0, None), step(100.0, None)],
                "s[1].hold",
            ),
            (
                vec![step(5.0, Some(30)), step(100.0, None)],
                "from 1 minute",
            ),
            (vec![step(5.0, Some(60)), step(80.0, None)], "weight 100"),
            (vec![step(0.0, Some(60)), step(100.0, None)], "rise"),
            (vec![step(f64::NAN, Some(60)), step(100.0, None)], "rise"),
        ];
        for (steps, want) in cases {
            let err = validate_steps("s", &steps).unwrap_err().to_string();
            assert!(err.contains(want), "{err} / {want}");
        }
    }
}
