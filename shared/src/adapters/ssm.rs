//! SSM Parameter Store: per-function policy documents under a prefix.

use crate::error::{Error, Result};
use crate::ports::{PolicyDocument, PolicyStore};
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;

pub use crate::config::DEFAULT_POLICY_PREFIX as DEFAULT_PREFIX;

#[derive(Clone, Debug)]
pub struct SsmPolicies {
    client: Client,
    prefix: String,
}

impl SsmPolicies {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    pub fn parameter_name(&self, function: &str) -> String {
        format!("{}{}", self.prefix, function)
    }
}

impl PolicyStore for SsmPolicies {
    async fn policy(&self, function: &str) -> Result<Option<PolicyDocument>> {
        let name = self.parameter_name(function);
        match self
            .client
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .parameter()
                .and_then(|p| p.value())
                .map(|text| PolicyDocument {
                    source: format!("ssm:{name}"),
                    text: text.to_owned(),
                })),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetParameterError::ParameterNotFound(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("ssm", "GetParameter", e)),
        }
    }
}
