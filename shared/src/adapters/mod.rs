//! One adapter per AWS service, each implementing a port from [`crate::ports`].

pub mod aws;
pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod codedeploy;
pub mod continuation;
pub mod dynamodb;
pub mod http;
pub mod lambda;
pub mod rollback;
pub mod sns;
pub mod sqs;
pub mod ssm;

pub use aws::Aws;
pub use codedeploy::CodeDeploy;
pub use lambda::Lambda;
pub use sns::SnsNotifier;
pub use sqs::Sqs;
pub use ssm::SsmPolicies;

/// What both hooks talk to: CodeDeploy, the policy store and the decision topic.
pub struct HookClients {
    pub deployments: CodeDeploy,
    pub policies: SsmPolicies,
    pub notifier: SnsNotifier,
}

impl HookClients {
    pub fn new(aws: &Aws, policy_prefix: &str, topic_arn: Option<String>) -> Self {
        HookClients {
            deployments: CodeDeploy::new(aws.codedeploy()),
            policies: SsmPolicies::new(aws.ssm(), policy_prefix.to_owned()),
            notifier: SnsNotifier::new(aws.sns(), topic_arn),
        }
    }

    /// The hook frame of `component` over these clients, reporting through `slot`.
    pub fn frame<'a>(
        &'a self,
        component: &'static str,
        slot: &'a crate::report::ReportSlot,
    ) -> crate::hook::Hook<'a, CodeDeploy, SsmPolicies, SnsNotifier> {
        crate::hook::Hook::new(
            component,
            &self.deployments,
            &self.policies,
            &self.notifier,
            slot,
        )
    }
}
