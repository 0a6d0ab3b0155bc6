//! EventBridge Scheduler: the rollout's next judgement as a one-time schedule that
//! invokes the rollout function and deletes itself (`ActionAfterCompletion: DELETE`).

use crate::error::{Error, Result};
use crate::rollout::ports::Schedules;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::SdkError;
use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
use aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::Value;

pub struct Scheduler {
    client: Client,
    group: String,
    /// The role Scheduler assumes to invoke the target.
    role_arn: String,
    /// The function the schedules invoke (this one).
    target_arn: String,
}

impl Scheduler {
    /// Schedules in `group` that Scheduler runs as `role_arn`; see [`Scheduler::targeting`].
    pub fn new(client: Client, group: String, role_arn: String) -> Self {
        Scheduler {
            client,
            group,
            role_arn,
            target_arn: String::new(),
        }
    }

    /// The same, invoking `target_arn` (this function, as the invocation names it).
    pub fn targeting(&self, target_arn: &str) -> Scheduler {
        Scheduler {
            client: self.client.clone(),
            group: self.group.clone(),
            role_arn: self.role_arn.clone(),
            target_arn: target_arn.to_owned(),
        }
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC (the schedule's default time zone), rounded up to the
/// second so that a hold is never cut short.
pub fn at_expression(when_ms: i64) -> String {
    let seconds = when_ms.div_euclid(1000) + i64::from(when_ms.rem_euclid(1000) > 0);
    let text = DateTime::from_secs(seconds)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    format!("at({})", text.trim_end_matches('Z'))
}

fn build(e: impl std::fmt::Display) -> Error {
    Error::InvalidEvent(format!("schedule: {e}"))
}

impl Schedules for Scheduler {
    async fn at(&self, name: &str, when_ms: i64, payload: &Value) -> Result<()> {
        let target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(payload.to_string())
            .build()
            .map_err(build)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(build)?;
        match self
            .client
            .create_schedule()
            .name(name)
            .group_name(&self.group)
            .schedule_expression(at_expression(when_ms))
            .flexible_time_window(window)
            .target(target)
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The name carries the rollout's sequence: the same schedule, made before.
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), CreateScheduleError::ConflictException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("scheduler", "CreateSchedule", e)),
        }
    }

    async fn cancel(&self, name: &str) -> Result<()> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), DeleteScheduleError::ResourceNotFoundException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("scheduler", "DeleteSchedule", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_expressions_are_utc_to_the_second_rounded_up() {
        assert_eq!(
            super::at_expression(1_800_000_000_000),
            "at(2027-01-15T08:00:00)"
        );
        assert_eq!(
            super::at_expression(1_800_000_000_001),
            "at(2027-01-15T08:00:01)"
        );
    }
}
