//! Lambda: read a version's configuration and invoke that exact version; read an alias
//! and point it back (alarm rollback); read a function's group tag.

use crate::clock::Instant;
use crate::error::{Error, Result};
use crate::ports::Functions;
use crate::ports::{FunctionSnapshot, InvokeOutcome};
use crate::rollback::decide::AliasState;
use crate::rollback::ports::UpdateOutcome;
use crate::rollback::targets::TAG_GROUP;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::get_alias::GetAliasError;
use aws_sdk_lambda::operation::get_function::GetFunctionError;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationError;
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::operation::update_alias::UpdateAliasError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Lambda {
    client: Client,
}

impl Lambda {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `GetAlias`: version, weights and RevisionId; `None` when there is no such alias.
    pub async fn alias_state(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        match self
            .client
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await
        {
            Ok(out) => Ok(Some(AliasState {
                version: out.function_version().unwrap_or_default().to_owned(),
                weights: out
                    .routing_config()
                    .and_then(|r| r.additional_version_weights())
                    .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default(),
                revision_id: out.revision_id().unwrap_or_default().to_owned(),
            })),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetAliasError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("lambda", "GetAlias", e)),
        }
    }

    /// `UpdateAlias` to one version with no weights, guarded by the RevisionId read.
    pub async fn point_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        self.route_alias(function, alias, version, &BTreeMap::new(), revision_id)
            .await
    }

    /// `UpdateAlias` to `version` with these additional version weights (none: the
    /// routing is cleared), guarded by the RevisionId read.
    pub async fn route_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        let weights: HashMap<String, f64> = weights.iter().map(|(k, v)| (k.clone(), *v)).collect();
        match self
            .client
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(weights))
                    .build(),
            )
            .revision_id(revision_id)
            .send()
            .await
        {
            Ok(out) => Ok(UpdateOutcome::Updated {
                revision_id: out.revision_id().unwrap_or_default().to_owned(),
            }),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), UpdateAliasError::PreconditionFailedException(_)) =>
            {
                Ok(UpdateOutcome::Stale)
            }
            Err(e) => Err(Error::aws("lambda", "UpdateAlias", e)),
        }
    }

    /// The function's `rollgate:group` tag (`GetFunction`, whose tags need lambda:ListTags).
    pub async fn group_tag(&self, function: &str) -> Result<Option<String>> {
        match self
            .client
            .get_function()
            .function_name(function)
            .send()
            .await
        {
            // Without lambda:ListTags, GetFunction answers without tags and says why in
            // TagsError: that is not "no group", and the caller must hear it.
            Ok(out) if out.tags().is_none() && out.tags_error().is_some() => {
                let e = out.tags_error().expect("checked");
                Err(Error::Aws {
                    service: "lambda",
                    operation: "GetFunction",
                    code: Some(e.error_code().to_owned()),
                    message: format!(
                        "the function's tags were not returned ({}: {}); the role needs lambda:ListTags",
                        e.error_code(),
                        e.message()
                    ),
                    retryable: false,
                })
            }
            Ok(out) => Ok(out
                .tags()
                .and_then(|t| t.get(TAG_GROUP))
                .filter(|g| !g.trim().is_empty())
                .cloned()),
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), GetFunctionError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("lambda", "GetFunction", e)),
        }
    }
}

/// `errorType` of a function error body (`{"errorType": "...", "errorMessage": "..."}`).
fn error_type(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("errorType")?
        .as_str()
        .map(str::to_owned)
}

impl Functions for Lambda {
    async fn configuration(&self, function: &str, version: &str) -> Result<FunctionSnapshot> {
        let out = self
            .client
            .get_function_configuration()
            .function_name(function)
            .qualifier(version)
            .send()
            .await
            .map_err(|e| match e {
                SdkError::ServiceError(ref se)
                    if matches!(
                        se.err(),
                        GetFunctionConfigurationError::ResourceNotFoundException(_)
                    ) =>
                {
                    Error::FunctionNotFound(format!("{function}:{version}"))
                }
                e => Error::aws("lambda", "GetFunctionConfiguration", e),
            })?;
        let mut env_keys: Vec<String> = out
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        env_keys.sort();
        Ok(FunctionSnapshot {
            version: out.version().unwrap_or(version).to_owned(),
            state: out.state().map(|s| s.as_str().to_owned()),
            state_reason: out.state_reason().map(str::to_owned),
            last_update_status: out.last_update_status().map(|s| s.as_str().to_owned()),
            last_update_status_reason: out.last_update_status_reason().map(str::to_owned),
            architectures: out
                .architectures()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            runtime: out.runtime().map(|r| r.as_str().to_owned()),
            memory_mb: out.memory_size(),
            timeout_seconds: out.timeout(),
            env_keys,
        })
    }

    async fn invoke(
        &self,
        function: &str,
        version: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<InvokeOutcome> {
        let started = Instant::now();
        // One attempt: the gate retries transient errors itself so that the evidence
        // counts every attempt, and bounds the call by what is left of its budget.
        let out = self
            .client
            .invoke()
            .function_name(function)
            .qualifier(version)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default()
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(timeout)
                            .operation_attempt_timeout(timeout)
                            .build(),
                    ),
            )
            .send()
            .await
            .map_err(|e| match e {
                SdkError::ServiceError(ref se)
                    if matches!(se.err(), InvokeError::ResourceNotFoundException(_)) =>
                {
                    Error::FunctionNotFound(format!("{function}:{version}"))
                }
                e => Error::aws("lambda", "Invoke", e),
            })?;
        let duration_ms = started.elapsed().as_millis() as u64;
        let body = out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        let function_error = out.function_error().map(str::to_owned);
        let error_type = function_error.as_ref().and_then(|_| error_type(&body));
        Ok(InvokeOutcome {
            function_error,
            error_type,
            payload: body,
            duration_ms,
            executed_version: out.executed_version().map(str::to_owned),
            attempts: 1,
        })
    }
}

impl crate::redrive::ports::EventInvoker for Lambda {
    /// Asynchronous invoke (`InvocationType: Event`): accepted means Lambda queued it.
    async fn invoke_event(
        &self,
        function: &str,
        qualifier: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.client
            .invoke()
            .function_name(function)
            .set_qualifier(qualifier.map(str::to_owned))
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| match e {
                SdkError::ServiceError(ref se)
                    if matches!(se.err(), InvokeError::ResourceNotFoundException(_)) =>
                {
                    Error::FunctionNotFound(function.to_owned())
                }
                e => Error::aws("lambda", "Invoke", e),
            })?;
        Ok(())
    }
}

impl crate::rollout::ports::Aliases for Lambda {
    async fn alias(&self, function: &str, alias: &str) -> Result<Option<AliasState>> {
        self.alias_state(function, alias).await
    }

    async fn route(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
        revision_id: &str,
    ) -> Result<UpdateOutcome> {
        self.route_alias(function, alias, version, weights, revision_id)
            .await
    }
}
