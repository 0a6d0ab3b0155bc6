//! The AWS adapters against mocked SDK clients (`aws-smithy-mocks`): which request each
//! adapter sends, and how it maps answers and service errors onto the ports' types.
//!
//! Errors the adapters match on by variant are returned as modeled errors; errors whose
//! retryability depends on the error code travel as raw HTTP answers so that the SDK's own
//! deserializer fills in the code, exactly as it does against the real service.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use rollgate::Error;

/// An error answer with the given status, headers and body.
fn http_error(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> HttpResponse {
    let mut resp = HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body.to_owned()),
    );
    for (k, v) in headers {
        resp.headers_mut().insert(*k, *v);
    }
    resp
}

/// An `awsJson1_1` error (CodeDeploy, SSM).
fn aws_json_error(status: u16, code: &str, message: &str) -> HttpResponse {
    http_error(
        status,
        &[("content-type", "application/x-amz-json-1.1")],
        &serde_json::json!({ "__type": code, "message": message }).to_string(),
    )
}

/// Fields of an `Error::Aws`, or a panic naming the error that came instead.
fn aws_fields(err: &Error) -> (&'static str, &'static str, Option<&str>, bool) {
    match err {
        Error::Aws {
            service,
            operation,
            code,
            retryable,
            ..
        } => (service, operation, code.as_deref(), *retryable),
        other => panic!("expected Error::Aws, got {other:?}"),
    }
}

mod codedeploy {
    use super::*;
    use aws_sdk_codedeploy::Client;
    use aws_sdk_codedeploy::operation::get_application_revision::GetApplicationRevisionOutput;
    use aws_sdk_codedeploy::operation::get_deployment::{GetDeploymentError, GetDeploymentOutput};
    use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::{
        PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
    };
    use aws_sdk_codedeploy::types::error::{
        DeploymentDoesNotExistException, InvalidDeploymentIdException,
        InvalidLifecycleEventHookExecutionIdException, LifecycleEventAlreadyCompletedException,
    };
    use aws_sdk_codedeploy::types::{
        AppSpecContent, ComputePlatform, DeploymentInfo as SdkDeploymentInfo, DeploymentStatus,
        LifecycleEventStatus, RevisionLocation, RevisionLocationType, S3Location,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use rollgate::adapters::CodeDeploy;
    use rollgate::appspec::LifecycleHook as Hook;
    use rollgate::decision::Verdict;
    use rollgate::ports::{Deployments, ReportOutcome};

    const DEPLOYMENT: &str = "d-ABCDEF123";
    const EXECUTION: &str = "exec-0f1e2d3c";
    const APP: &str = "orders-app";
    const GROUP: &str = "orders-dg";
    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    const YAML_APPSPEC: &str = "\
version: 0.0
Resources:
  - orders:
      Type: AWS::Lambda::Function
      Properties:
        Name: orders
        Alias: live
        CurrentVersion: 1
        TargetVersion: \"2\"
Hooks:
  - BeforeAllowTraffic: rollgate-pre-traffic
  - AfterAllowTraffic: rollgate-post-traffic
";

    const JSON_APPSPEC: &str = r#"{
  "version": 0.0,
  "Resources": [
    {"payments": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "Name": "arn:aws:lambda:eu-west-1:123456789012:function:payments",
        "Alias": "prod",
        "CurrentVersion": "7",
        "TargetVersion": "8"
      }
    }}
  ]
}"#;

    fn client(mode: RuleMode, rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_codedeploy, mode, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn deployment(
        platform: ComputePlatform,
        revision: Option<RevisionLocation>,
    ) -> GetDeploymentOutput {
        let mut info = SdkDeploymentInfo::builder()
            .deployment_id(DEPLOYMENT)
            .application_name(APP)
            .deployment_group_name(GROUP)
            .status(DeploymentStatus::InProgress)
            .compute_platform(platform);
        if let Some(r) = revision {
            info = info.revision(r);
        }
        GetDeploymentOutput::builder()
            .deployment_info(info.build())
            .build()
    }

    /// What `GetDeployment` returns for a Lambda deployment: the AppSpec's hash, no text.
    fn sha_only_revision() -> RevisionLocation {
        RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().sha256(SHA).build())
            .build()
    }

    fn get_deployment_rule(out: GetDeploymentOutput) -> Rule {
        mock!(Client::get_deployment)
            .match_requests(|req| req.deployment_id() == Some(DEPLOYMENT))
            .then_output(move || out.clone())
    }

    /// `GetApplicationRevision` that only answers a lookup by exactly `SHA` as AppSpecContent.
    fn revision_by_sha_rule(content: &'static str) -> Rule {
        mock!(Client::get_application_revision)
            .match_requests(|req| {
                let Some(rev) = req.revision() else {
                    return false;
                };
                req.application_name() == Some(APP)
                    && rev.revision_type() == Some(&RevisionLocationType::AppSpecContent)
                    && rev.app_spec_content().and_then(|c| c.sha256()) == Some(SHA)
                    && rev.app_spec_content().and_then(|c| c.content()).is_none()
                    && rev.string().is_none()
                    && rev.s3_location().is_none()
            })
            .then_output(move || {
                GetApplicationRevisionOutput::builder()
                    .application_name(APP)
                    .revision(
                        RevisionLocation::builder()
                            .revision_type(RevisionLocationType::AppSpecContent)
                            .app_spec_content(
                                AppSpecContent::builder()
                                    .content(content)
                                    .sha256(SHA)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
    }

    /// Any `GetApplicationRevision`; used to prove it is *not* called.
    fn any_revision_rule() -> Rule {
        mock!(Client::get_application_revision)
            .then_output(|| GetApplicationRevisionOutput::builder().build())
    }

    #[tokio::test]
    async fn sha256_only_revision_is_fetched_and_yaml_appspec_parsed() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Lambda,
            Some(sha_only_revision()),
        ));
        let rev = revision_by_sha_rule(YAML_APPSPEC);
        // Sequential: GetDeployment must come first, then exactly one GetApplicationRevision.
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let info = cd.lambda_deployment(DEPLOYMENT).await.expect("deployment");

        assert_eq!(get.num_calls(), 1);
        assert_eq!(rev.num_calls(), 1);
        assert_eq!(info.deployment_id, DEPLOYMENT);
        assert_eq!(info.application, APP);
        assert_eq!(info.deployment_group, GROUP);
        assert_eq!(info.status, "InProgress");
        let t = &info.target;
        assert_eq!(t.function_name, "orders");
        assert_eq!(t.function_ref, "orders");
        assert_eq!(t.alias, "live");
        assert_eq!(t.current_version, "1");
        assert_eq!(t.target_version, "2");
        assert_eq!(
            t.hooks,
            vec![
                Hook {
                    event: "BeforeAllowTraffic".into(),
                    function: "rollgate-pre-traffic".into()
                },
                Hook {
                    event: "AfterAllowTraffic".into(),
                    function: "rollgate-post-traffic".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn json_appspec_from_revision_is_parsed() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Lambda,
            Some(sha_only_revision()),
        ));
        let rev = revision_by_sha_rule(JSON_APPSPEC);
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let info = cd.lambda_deployment(DEPLOYMENT).await.expect("deployment");

        assert_eq!(rev.num_calls(), 1);
        let t = &info.target;
        assert_eq!(t.function_name, "payments");
        assert_eq!(
            t.function_ref,
            "arn:aws:lambda:eu-west-1:123456789012:function:payments"
        );
        assert_eq!(t.alias, "prod");
        assert_eq!(
            (t.current_version.as_str(), t.target_version.as_str()),
            ("7", "8")
        );
        assert!(t.hooks.is_empty());
    }

    #[tokio::test]
    async fn inline_content_skips_get_application_revision() {
        let inline = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(
                AppSpecContent::builder()
                    .content(YAML_APPSPEC)
                    .sha256(SHA)
                    .build(),
            )
            .build();
        let get = get_deployment_rule(deployment(ComputePlatform::Lambda, Some(inline)));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&get, &rev]));

        let info = cd.lambda_deployment(DEPLOYMENT).await.expect("deployment");

        assert_eq!(get.num_calls(), 1);
        assert_eq!(rev.num_calls(), 0);
        assert_eq!(info.target.function_name, "orders");
        assert_eq!(info.target.target_version, "2");
    }

    #[tokio::test]
    #[allow(deprecated)] // the String revision type is deprecated but still created
    async fn string_revision_is_fetched_by_sha256_as_string() {
        use aws_sdk_codedeploy::types::RawString;
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::String)
            .string(RawString::builder().sha256(SHA).build())
            .build();
        let get = get_deployment_rule(deployment(ComputePlatform::Lambda, Some(revision)));
        let rev = mock!(Client::get_application_revision)
            .match_requests(|req| {
                let Some(rev) = req.revision() else {
                    return false;
                };
                req.application_name() == Some(APP)
                    && rev.revision_type() == Some(&RevisionLocationType::String)
                    && rev.string().and_then(|s| s.sha256()) == Some(SHA)
                    && rev.string().and_then(|s| s.content()).is_none()
                    && rev.app_spec_content().is_none()
            })
            .then_output(|| {
                GetApplicationRevisionOutput::builder()
                    .revision(
                        RevisionLocation::builder()
                            .revision_type(RevisionLocationType::String)
                            .string(
                                RawString::builder()
                                    .content(JSON_APPSPEC)
                                    .sha256(SHA)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let info = cd.lambda_deployment(DEPLOYMENT).await.expect("deployment");

        assert_eq!(rev.num_calls(), 1);
        assert_eq!(info.target.function_name, "payments");
        assert_eq!(info.target.alias, "prod");
    }

    #[tokio::test]
    async fn missing_deployment_maps_to_deployment_not_found() {
        let missing = mock!(Client::get_deployment)
            .match_requests(|req| req.deployment_id() == Some(DEPLOYMENT))
            .then_error(|| {
                GetDeploymentError::DeploymentDoesNotExistException(
                    DeploymentDoesNotExistException::builder()
                        .message("There is no deployment with this id")
                        .build(),
                )
            });
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&missing, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(
            matches!(&err, Error::DeploymentNotFound(id) if id == DEPLOYMENT),
            "{err:?}"
        );
        assert_eq!(missing.num_calls(), 1);
        assert_eq!(rev.num_calls(), 0);
    }

    #[tokio::test]
    async fn invalid_deployment_id_maps_to_deployment_not_found() {
        let invalid = mock!(Client::get_deployment).then_error(|| {
            GetDeploymentError::InvalidDeploymentIdException(
                InvalidDeploymentIdException::builder().build(),
            )
        });
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&invalid]));

        let err = cd.lambda_deployment("not-an-id").await.unwrap_err();

        assert!(
            matches!(&err, Error::DeploymentNotFound(id) if id == "not-an-id"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn throttled_get_deployment_is_a_retryable_aws_error() {
        let throttled = mock!(Client::get_deployment)
            .then_http_response(|| aws_json_error(400, "ThrottlingException", "Rate exceeded"));
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&throttled]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            (
                "codedeploy",
                "GetDeployment",
                Some("ThrottlingException"),
                true
            )
        );
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn server_platform_is_not_lambda() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Server,
            Some(sha_only_revision()),
        ));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(
            matches!(&err, Error::NotLambda { id, platform } if id == DEPLOYMENT && platform == "Server"),
            "{err:?}"
        );
        assert_eq!(rev.num_calls(), 0);
    }

    #[tokio::test]
    async fn missing_revision_is_no_revision() {
        let get = get_deployment_rule(deployment(ComputePlatform::Lambda, None));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(
            matches!(&err, Error::NoRevision { id, .. } if id == DEPLOYMENT),
            "{err:?}"
        );
        assert_eq!(rev.num_calls(), 0);
    }

    #[tokio::test]
    async fn appspec_content_without_text_or_sha_is_no_revision() {
        let empty = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().build())
            .build();
        let get = get_deployment_rule(deployment(ComputePlatform::Lambda, Some(empty)));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(
            matches!(&err, Error::NoRevision { detail, .. } if detail.contains("sha256")),
            "{err:?}"
        );
        assert_eq!(rev.num_calls(), 0);
    }

    #[tokio::test]
    async fn s3_revision_is_no_revision() {
        let s3 = RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(S3Location::builder().bucket("b").key("k").build())
            .build();
        let get = get_deployment_rule(deployment(ComputePlatform::Lambda, Some(s3)));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(
            matches!(&err, Error::NoRevision { detail, .. } if detail.contains("S3")),
            "{err:?}"
        );
        assert_eq!(rev.num_calls(), 0);
    }

    #[tokio::test]
    async fn revision_answer_without_content_is_no_revision() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Lambda,
            Some(sha_only_revision()),
        ));
        let rev = any_revision_rule();
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(matches!(&err, Error::NoRevision { .. }), "{err:?}");
        assert_eq!(rev.num_calls(), 1);
    }

    #[tokio::test]
    async fn get_application_revision_failure_is_an_aws_error() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Lambda,
            Some(sha_only_revision()),
        ));
        let rev = mock!(Client::get_application_revision).then_http_response(|| {
            aws_json_error(400, "RevisionDoesNotExistException", "No such revision")
        });
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            (
                "codedeploy",
                "GetApplicationRevision",
                Some("RevisionDoesNotExistException"),
                false
            )
        );
    }

    #[tokio::test]
    async fn invalid_appspec_text_is_an_appspec_error() {
        let get = get_deployment_rule(deployment(
            ComputePlatform::Lambda,
            Some(sha_only_revision()),
        ));
        let rev = revision_by_sha_rule("version: 0.0\nResources: []\n");
        let cd = CodeDeploy::new(client(RuleMode::Sequential, &[&get, &rev]));

        let err = cd.lambda_deployment(DEPLOYMENT).await.unwrap_err();

        assert!(matches!(&err, Error::AppSpec(_)), "{err:?}");
    }

    fn put_status_rule(status: LifecycleEventStatus) -> Rule {
        mock!(Client::put_lifecycle_event_hook_execution_status)
            .match_requests(move |req| {
                req.deployment_id() == Some(DEPLOYMENT)
                    && req.lifecycle_event_hook_execution_id() == Some(EXECUTION)
                    && req.status() == Some(&status)
            })
            .then_output(|| {
                PutLifecycleEventHookExecutionStatusOutput::builder()
                    .lifecycle_event_hook_execution_id(EXECUTION)
                    .build()
            })
    }

    #[tokio::test]
    async fn report_hook_sends_verdict_with_both_ids() {
        let succeeded = put_status_rule(LifecycleEventStatus::Succeeded);
        let failed = put_status_rule(LifecycleEventStatus::Failed);
        // MatchAny with must-match: a request with a wrong id or status matches no rule and panics.
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&succeeded, &failed]));

        let ok = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Succeeded)
            .await
            .expect("report");
        assert_eq!(ok, ReportOutcome::Accepted);
        assert_eq!((succeeded.num_calls(), failed.num_calls()), (1, 0));

        let ko = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Failed)
            .await
            .expect("report");
        assert_eq!(ko, ReportOutcome::Accepted);
        assert_eq!((succeeded.num_calls(), failed.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn already_completed_hook_is_not_an_error() {
        let done = mock!(Client::put_lifecycle_event_hook_execution_status)
            .match_requests(|req| req.lifecycle_event_hook_execution_id() == Some(EXECUTION))
            .then_error(|| {
                PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
                    LifecycleEventAlreadyCompletedException::builder()
                        .message("already completed")
                        .build(),
                )
            });
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&done]));

        let out = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Failed)
            .await
            .expect("already completed is Ok");

        assert_eq!(out, ReportOutcome::AlreadyCompleted);
        assert_eq!(done.num_calls(), 1);
    }

    #[tokio::test]
    async fn throttled_report_is_retryable() {
        let throttled = mock!(Client::put_lifecycle_event_hook_execution_status)
            .then_http_response(|| aws_json_error(400, "ThrottlingException", "Rate exceeded"));
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&throttled]));

        let err = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Succeeded)
            .await
            .unwrap_err();

        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(err.code(), Some("ThrottlingException"));
        assert_eq!(
            aws_fields(&err),
            (
                "codedeploy",
                "PutLifecycleEventHookExecutionStatus",
                Some("ThrottlingException"),
                true
            )
        );
        assert_eq!(throttled.num_calls(), 1);
    }

    #[tokio::test]
    async fn invalid_execution_id_is_not_retryable() {
        let invalid =
            mock!(Client::put_lifecycle_event_hook_execution_status).then_http_response(|| {
                aws_json_error(
                    400,
                    "InvalidLifecycleEventHookExecutionIdException",
                    "bad execution id",
                )
            });
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&invalid]));

        let err = cd
            .report_hook(DEPLOYMENT, "nope", Verdict::Succeeded)
            .await
            .unwrap_err();

        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(
            aws_fields(&err),
            (
                "codedeploy",
                "PutLifecycleEventHookExecutionStatus",
                Some("InvalidLifecycleEventHookExecutionIdException"),
                false
            )
        );
    }

    #[tokio::test]
    async fn modeled_invalid_execution_id_is_not_retryable() {
        let invalid = mock!(Client::put_lifecycle_event_hook_execution_status).then_error(|| {
            PutLifecycleEventHookExecutionStatusError::InvalidLifecycleEventHookExecutionIdException(
                InvalidLifecycleEventHookExecutionIdException::builder().build(),
            )
        });
        let cd = CodeDeploy::new(client(RuleMode::MatchAny, &[&invalid]));

        let err = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Failed)
            .await
            .unwrap_err();

        assert!(matches!(&err, Error::Aws { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    /// With the SDK's standard retries (as in production), a throttled report is retried
    /// and the hook still gets reported.
    #[tokio::test(start_paused = true)]
    async fn throttled_report_is_retried_by_the_sdk() {
        let rule = mock!(Client::put_lifecycle_event_hook_execution_status)
            .sequence()
            .http_response(|| aws_json_error(400, "ThrottlingException", "Rate exceeded"))
            .times(2)
            .output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
            .build();
        let client = mock_client!(aws_sdk_codedeploy, RuleMode::Sequential, &[&rule], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(3)));
        let cd = CodeDeploy::new(client);

        let out = cd
            .report_hook(DEPLOYMENT, EXECUTION, Verdict::Succeeded)
            .await
            .expect("third attempt succeeds");

        assert_eq!(out, ReportOutcome::Accepted);
        assert_eq!(rule.num_calls(), 3);
    }
}

mod lambda {
    use super::*;
    use aws_sdk_lambda::Client;
    use aws_sdk_lambda::operation::get_function_configuration::{
        GetFunctionConfigurationError, GetFunctionConfigurationOutput,
    };
    use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_sdk_lambda::types::{
        Architecture, EnvironmentResponse, InvocationType, LastUpdateStatus, Runtime, State,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use rollgate::adapters::Lambda;
    use rollgate::ports::Functions;
    use std::time::Duration;

    const PAYLOAD: &[u8] = br#"{"path":"/health"}"#;

    /// A client with the SDK's standard retries, as in production: the adapter's own
    /// overrides (one attempt for `Invoke`) must show through.
    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_lambda, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(3)))
    }

    fn not_found() -> ResourceNotFoundException {
        ResourceNotFoundException::builder()
            .message("Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:2")
            .r#type("User")
            .build()
    }

    #[tokio::test]
    async fn configuration_reads_the_version_and_maps_the_snapshot() {
        let rule = mock!(Client::get_function_configuration)
            .match_requests(|req| {
                req.function_name() == Some("orders") && req.qualifier() == Some("2")
            })
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .function_name("orders")
                    .version("2")
                    .state(State::Active)
                    .state_reason("ready")
                    .last_update_status(LastUpdateStatus::Successful)
                    .last_update_status_reason("done")
                    .architectures(Architecture::Arm64)
                    .runtime(Runtime::Providedal2023)
                    .memory_size(512)
                    .timeout(15)
                    .environment(
                        EnvironmentResponse::builder()
                            .variables("TABLE_NAME", "orders")
                            .variables("A_FLAG", "1")
                            .variables("LOG_LEVEL", "info")
                            .variables("ZONE", "eu")
                            .variables("B_URL", "https://example.test")
                            .variables("QUEUE", "q")
                            .variables("M_MODE", "strict")
                            .build(),
                    )
                    .build()
            });
        let lambda = Lambda::new(client(&[&rule]));

        let snap = lambda.configuration("orders", "2").await.expect("snapshot");

        assert_eq!(rule.num_calls(), 1);
        assert_eq!(snap.version, "2");
        assert_eq!(snap.state.as_deref(), Some("Active"));
        assert_eq!(snap.state_reason.as_deref(), Some("ready"));
        assert_eq!(snap.last_update_status.as_deref(), Some("Successful"));
        assert_eq!(snap.last_update_status_reason.as_deref(), Some("done"));
        assert_eq!(snap.architectures, vec!["arm64".to_string()]);
        assert_eq!(snap.runtime.as_deref(), Some("provided.al2023"));
        assert_eq!(snap.memory_mb, Some(512));
        assert_eq!(snap.timeout_seconds, Some(15));
        assert_eq!(
            snap.env_keys,
            [
                "A_FLAG",
                "B_URL",
                "LOG_LEVEL",
                "M_MODE",
                "QUEUE",
                "TABLE_NAME",
                "ZONE"
            ]
        );
    }

    #[tokio::test]
    async fn configuration_of_an_image_function_without_env() {
        let rule = mock!(Client::get_function_configuration)
            .match_requests(|req| req.qualifier() == Some("5"))
            .then_output(|| {
                GetFunctionConfigurationOutput::builder()
                    .state(State::Pending)
                    .architectures(Architecture::X8664)
                    .build()
            });
        let lambda = Lambda::new(client(&[&rule]));

        let snap = lambda.configuration("img", "5").await.expect("snapshot");

        // No version in the answer: the requested one stands.
        assert_eq!(snap.version, "5");
        assert_eq!(snap.state.as_deref(), Some("Pending"));
        assert_eq!(snap.last_update_status, None);
        assert_eq!(snap.architectures, vec!["x86_64".to_string()]);
        assert_eq!(snap.runtime, None);
        assert_eq!(snap.memory_mb, None);
        assert!(snap.env_keys.is_empty());
    }

    #[tokio::test]
    async fn configuration_of_a_missing_version_is_function_not_found() {
        let rule = mock!(Client::get_function_configuration)
            .then_error(|| GetFunctionConfigurationError::ResourceNotFoundException(not_found()));
        let lambda = Lambda::new(client(&[&rule]));

        let err = lambda.configuration("fn", "2").await.unwrap_err();

        assert!(
            matches!(&err, Error::FunctionNotFound(f) if f == "fn:2"),
            "{err:?}"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn configuration_access_denied_is_an_aws_error() {
        let rule = mock!(Client::get_function_configuration).then_http_response(|| {
            http_error(
                403,
                &[
                    ("content-type", "application/json"),
                    ("x-amzn-errortype", "AccessDeniedException"),
                ],
                r#"{"Message":"not authorized to perform lambda:GetFunctionConfiguration"}"#,
            )
        });
        let lambda = Lambda::new(client(&[&rule]));

        let err = lambda.configuration("fn", "2").await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            (
                "lambda",
                "GetFunctionConfiguration",
                Some("AccessDeniedException"),
                false
            )
        );
    }

    fn invoke_rule(out: InvokeOutput) -> Rule {
        mock!(Client::invoke)
            .match_requests(|req| {
                req.function_name() == Some("orders")
                    && req.qualifier() == Some("2")
                    && req.invocation_type() == Some(&InvocationType::RequestResponse)
                    && req.payload().map(|b| b.as_ref()) == Some(PAYLOAD)
            })
            .then_output(move || out.clone())
    }

    #[tokio::test]
    async fn invoke_calls_the_version_synchronously() {
        let rule = invoke_rule(
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(r#"{"status":"ok"}"#))
                .executed_version("2")
                .build(),
        );
        let lambda = Lambda::new(client(&[&rule]));

        let out = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .expect("invoke");

        assert_eq!(rule.num_calls(), 1);
        assert_eq!(out.function_error, None);
        assert_eq!(out.error_type, None);
        assert_eq!(out.payload, br#"{"status":"ok"}"#);
        assert_eq!(out.executed_version.as_deref(), Some("2"));
        assert_eq!(out.attempts, 1);
    }

    #[tokio::test]
    async fn invoke_function_error_carries_the_error_type() {
        let body = r#"{"errorType":"X","errorMessage":"boom","trace":[]}"#;
        let rule = invoke_rule(
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(body))
                .executed_version("2")
                .build(),
        );
        let lambda = Lambda::new(client(&[&rule]));

        let out = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .expect("a function error is an outcome, not an Err");

        assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(out.error_type.as_deref(), Some("X"));
        assert_eq!(out.payload, body.as_bytes());
        assert_eq!(out.attempts, 1);
    }

    #[tokio::test]
    async fn invoke_function_error_with_unparseable_body_has_no_error_type() {
        let rule = invoke_rule(
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new("Task timed out after 3.00 seconds"))
                .build(),
        );
        let lambda = Lambda::new(client(&[&rule]));

        let out = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .expect("invoke");

        assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(out.error_type, None);
    }

    #[tokio::test]
    async fn successful_body_with_error_type_field_is_not_an_error() {
        let rule = invoke_rule(
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(r#"{"errorType":"NotAnError"}"#))
                .build(),
        );
        let lambda = Lambda::new(client(&[&rule]));

        let out = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .expect("invoke");

        assert_eq!(out.function_error, None);
        assert_eq!(out.error_type, None);
    }

    fn too_many_requests() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
        http_error(
            429,
            &[
                ("content-type", "application/json"),
                ("x-amzn-errortype", "TooManyRequestsException"),
            ],
            r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
        )
    }

    #[tokio::test]
    async fn throttled_invoke_is_retryable_and_attempted_once() {
        // Throttled, then fine: if the SDK retried inside `invoke`, the first call would
        // succeed on the second answer. The adapter makes one attempt and lets the gate retry.
        let rule = mock!(Client::invoke)
            .match_requests(|req| req.qualifier() == Some("2"))
            .sequence()
            .http_response(too_many_requests)
            .output(|| InvokeOutput::builder().status_code(200).build())
            .build();
        let lambda = Lambda::new(client(&[&rule]));

        let err = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .unwrap_err();

        assert_eq!(rule.num_calls(), 1, "exactly one attempt");
        assert!(err.is_retryable(), "{err:?}");
        assert_eq!(
            aws_fields(&err),
            ("lambda", "Invoke", Some("TooManyRequestsException"), true)
        );

        let again = lambda
            .invoke("orders", "2", PAYLOAD.to_vec(), Duration::from_secs(5))
            .await
            .expect("second call gets the second answer");
        assert_eq!(again.attempts, 1);
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn invoke_of_a_missing_version_is_function_not_found() {
        let rule = mock!(Client::invoke)
            .match_requests(|req| req.function_name() == Some("fn") && req.qualifier() == Some("2"))
            .then_error(|| InvokeError::ResourceNotFoundException(not_found()));
        let lambda = Lambda::new(client(&[&rule]));

        let err = lambda
            .invoke("fn", "2", b"{}".to_vec(), Duration::from_secs(5))
            .await
            .unwrap_err();

        assert!(
            matches!(&err, Error::FunctionNotFound(f) if f == "fn:2"),
            "{err:?}"
        );
        assert_eq!(rule.num_calls(), 1);
    }
}

mod ssm {
    use super::*;
    use aws_sdk_ssm::Client;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{Parameter, ParameterType};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use rollgate::adapters::SsmPolicies;
    use rollgate::adapters::ssm::DEFAULT_PREFIX;
    use rollgate::ports::{PolicyDocument, PolicyStore};

    const POLICY: &str = r#"{"version":1,"config":{"memory_mb":{"min":256}}}"#;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    #[tokio::test]
    async fn policy_is_read_decrypted_under_the_prefix() {
        let rule = mock!(Client::get_parameter)
            .match_requests(|req| {
                req.name() == Some("/rollgate/policies/orders")
                    && req.with_decryption() == Some(true)
            })
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name("/rollgate/policies/orders")
                            .r#type(ParameterType::SecureString)
                            .value(POLICY)
                            .version(3)
                            .build(),
                    )
                    .build()
            });
        let store = SsmPolicies::new(client(&[&rule]), DEFAULT_PREFIX);

        let doc = store.policy("orders").await.expect("policy");

        assert_eq!(rule.num_calls(), 1);
        assert_eq!(
            doc,
            Some(PolicyDocument {
                source: "ssm:/rollgate/policies/orders".into(),
                text: POLICY.into(),
            })
        );
    }

    #[tokio::test]
    async fn custom_prefix_is_prepended_verbatim() {
        let rule = mock!(Client::get_parameter)
            .match_requests(|req| req.name() == Some("/team-a/gates/payments"))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().value("{}").build())
                    .build()
            });
        let store = SsmPolicies::new(client(&[&rule]), "/team-a/gates/");

        let doc = store
            .policy("payments")
            .await
            .expect("policy")
            .expect("some");

        assert_eq!(doc.source, "ssm:/team-a/gates/payments");
        assert_eq!(doc.text, "{}");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn missing_parameter_means_no_policy() {
        let rule = mock!(Client::get_parameter)
            .match_requests(|req| req.name() == Some("/rollgate/policies/orders"))
            .then_error(|| {
                GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            });
        let store = SsmPolicies::new(client(&[&rule]), DEFAULT_PREFIX);

        let doc = store.policy("orders").await.expect("not found is Ok(None)");

        assert_eq!(doc, None);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn access_denied_is_an_aws_error() {
        let rule = mock!(Client::get_parameter).then_http_response(|| {
            aws_json_error(
                400,
                "AccessDeniedException",
                "not authorized to perform ssm:GetParameter",
            )
        });
        let store = SsmPolicies::new(client(&[&rule]), DEFAULT_PREFIX);

        let err = store.policy("orders").await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            ("ssm", "GetParameter", Some("AccessDeniedException"), false)
        );
    }

    #[tokio::test]
    async fn internal_error_is_a_retryable_aws_error() {
        let rule = mock!(Client::get_parameter)
            .then_http_response(|| aws_json_error(500, "InternalServerError", "oops"));
        let store = SsmPolicies::new(client(&[&rule]), DEFAULT_PREFIX);

        let err = store.policy("orders").await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            ("ssm", "GetParameter", Some("InternalServerError"), true)
        );
        assert_eq!(rule.num_calls(), 1);
    }
}

mod sns {
    use super::*;
    use aws_sdk_sns::Client;
    use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use rollgate::adapters::SnsNotifier;
    use rollgate::decision::{CheckResult, Decision, Outcome, Verdict};
    use rollgate::ports::Notifier;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:rollgate-decisions";
    /// SNS's hard limit for a whole message (body and attributes).
    const SNS_LIMIT: usize = 256 * 1024;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_sns, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn decision() -> Decision {
        Decision {
            component: "pre-traffic-hook".into(),
            verdict: Verdict::Failed,
            reason: "1 of 2 checks failed: config.state".into(),
            deployment_id: Some("d-ABCDEF123".into()),
            function_name: Some("orders".into()),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: Some("2".into()),
            policy_source: Some("ssm:/rollgate/policies/orders".into()),
            checks: vec![
                CheckResult::fail("config.state", json!("Active"), json!("Pending"))
                    .with_detail("The function is being created."),
                CheckResult::pass("config.memory_mb", json!({"min": 256}), json!(512)),
            ],
            duration_ms: 42,
        }
    }

    /// A publish rule that keeps every request it answers, for assertions after the call.
    fn capturing_rule(seen: Arc<Mutex<Vec<PublishInput>>>) -> Rule {
        mock!(Client::publish)
            .match_requests(|req| req.topic_arn() == Some(TOPIC))
            .then_compute_output(move |req| {
                seen.lock().unwrap().push(req.clone());
                PublishOutput::builder().message_id("m-1").build()
            })
    }

    fn string_attr<'a>(req: &'a PublishInput, name: &str) -> Option<&'a str> {
        let attr = req.message_attributes()?.get(name)?;
        assert_eq!(attr.data_type(), "String", "attribute {name}");
        attr.string_value()
    }

    #[tokio::test]
    async fn announce_publishes_the_decision_with_attributes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = capturing_rule(seen.clone());
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()));
        let d = decision();

        sns.announce(&d).await.expect("announce");

        assert_eq!(rule.num_calls(), 1);
        let reqs = seen.lock().unwrap();
        let req = &reqs[0];
        assert_eq!(req.topic_arn(), Some(TOPIC));
        assert_eq!(
            req.subject(),
            Some("rollgate pre-traffic-hook: Failed orders:2")
        );
        let body: Decision = serde_json::from_str(req.message().expect("message")).expect("JSON");
        assert_eq!(body, d);
        assert_eq!(req.message_attributes().map(|m| m.len()), Some(4));
        assert_eq!(string_attr(req, "component"), Some("pre-traffic-hook"));
        assert_eq!(string_attr(req, "verdict"), Some("Failed"));
        assert_eq!(string_attr(req, "function"), Some("orders"));
        assert_eq!(string_attr(req, "deployment"), Some("d-ABCDEF123"));
    }

    #[tokio::test]
    async fn absent_function_and_deployment_are_not_sent_as_attributes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = capturing_rule(seen.clone());
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()));
        let mut d = decision();
        d.verdict = Verdict::Succeeded;
        d.function_name = None;
        d.deployment_id = Some(String::new());

        sns.announce(&d).await.expect("announce");

        let reqs = seen.lock().unwrap();
        let req = &reqs[0];
        let mut names: Vec<&str> = req
            .message_attributes()
            .expect("attributes")
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["component", "verdict"]);
        assert_eq!(string_attr(req, "verdict"), Some("Succeeded"));
    }

    #[tokio::test]
    async fn no_topic_means_no_publish() {
        let rule = mock!(Client::publish).then_output(|| PublishOutput::builder().build());
        let sns = SnsNotifier::new(client(&[&rule]), None);

        sns.announce(&decision()).await.expect("Ok without a topic");

        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn subject_is_short_printable_ascii() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = capturing_rule(seen.clone());
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()));
        let mut d = decision();
        d.function_name = Some(format!("ordérs\n{}", "x".repeat(200)));

        sns.announce(&d).await.expect("announce");

        let reqs = seen.lock().unwrap();
        let subject = reqs[0].subject().expect("subject");
        assert!(subject.chars().count() <= 100, "{} chars", subject.len());
        assert!(
            subject
                .chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control()),
            "{subject:?}"
        );
        assert!(
            subject.starts_with("rollgate pre-traffic-hook: Failed ordrs"),
            "{subject:?}"
        );
        // The attribute keeps the real name.
        assert_eq!(
            string_attr(&reqs[0], "function"),
            d.function_name.as_deref()
        );
    }

    #[tokio::test]
    async fn oversized_decision_is_trimmed_under_the_sns_limit() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule = capturing_rule(seen.clone());
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()));
        let mut d = decision();
        let huge = "y".repeat(300 * 1024);
        d.checks[0].actual = json!({ "payload": huge });
        d.checks[1].actual = json!(huge);

        sns.announce(&d).await.expect("announce");

        let reqs = seen.lock().unwrap();
        let req = &reqs[0];
        let message = req.message().expect("message");
        let attrs: usize = req
            .message_attributes()
            .expect("attributes")
            .iter()
            .map(|(k, v)| k.len() + v.data_type().len() + v.string_value().map_or(0, str::len))
            .sum();
        assert!(
            message.len() + attrs < SNS_LIMIT,
            "{} bytes of message, {attrs} of attributes",
            message.len()
        );
        // Still the decision, with the verdict, reason and check outcomes intact.
        let body: Decision = serde_json::from_str(message).expect("JSON");
        assert_eq!(body.verdict, Verdict::Failed);
        assert_eq!(body.reason, d.reason);
        assert_eq!(body.checks.len(), 2);
        assert_eq!(body.checks[0].name, "config.state");
        assert_eq!(body.checks[0].outcome, Outcome::Fail);
        assert_eq!(body.checks[0].expected, json!("Active"));
        assert_eq!(
            body.checks[0].detail.as_deref(),
            Some("The function is being created.")
        );
        // The long texts are cut and marked as cut; their place in the record stays.
        assert!(rollgate::limits::was_cut(
            body.checks[0].actual["payload"].as_str().unwrap()
        ));
        assert!(rollgate::limits::was_cut(
            body.checks[1].actual.as_str().unwrap()
        ));
    }

    const CHAT: &str = "arn:aws:sns:us-east-1:123456789012:rollgate-chat";

    /// With a chat topic, one decision makes two messages: the decision's JSON on its
    /// topic as without one, and a card on the chat topic with the same attributes.
    #[tokio::test]
    async fn a_chat_topic_gets_a_card_and_the_decision_topic_keeps_the_decision() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (decisions, cards) = (seen.clone(), seen.clone());
        let rule = mock!(Client::publish).then_compute_output(move |req| {
            decisions.lock().unwrap().push(req.clone());
            PublishOutput::builder().message_id("m-1").build()
        });
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()))
            .with_chat_topic(Some(CHAT.into()));
        let d = decision();

        sns.announce(&d).await.expect("announce");

        let reqs = cards.lock().unwrap();
        assert_eq!(reqs.len(), 2);
        let on = |topic: &str| {
            reqs.iter()
                .find(|r| r.topic_arn() == Some(topic))
                .expect(topic)
        };
        let body: Decision = serde_json::from_str(on(TOPIC).message().unwrap()).expect("JSON");
        assert_eq!(body, d);
        let card: serde_json::Value = serde_json::from_str(on(CHAT).message().unwrap()).unwrap();
        assert_eq!(
            (card["version"].as_str(), card["source"].as_str()),
            (Some("1.0"), Some("custom"))
        );
        assert!(
            card["content"]["title"]
                .as_str()
                .unwrap()
                .contains("orders:live"),
            "{card}"
        );
        assert_eq!(
            card["metadata"]["relatedResources"][0],
            "arn:aws:lambda:us-east-1:123456789012:function:orders:live"
        );
        assert_eq!(string_attr(on(CHAT), "verdict"), Some("Failed"));
        assert_eq!(string_attr(on(CHAT), "deployment"), Some("d-ABCDEF123"));
        assert_eq!(on(CHAT).subject(), None);
    }

    /// A card SNS refuses is logged; the announcement is the decision's, and it stands.
    #[tokio::test]
    async fn a_refused_card_does_not_fail_the_announcement() {
        let decisions = mock!(Client::publish)
            .match_requests(|req| req.topic_arn() == Some(TOPIC))
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let cards = mock!(Client::publish)
            .match_requests(|req| req.topic_arn() == Some(CHAT))
            .then_http_response(|| {
                http_error(
                    403,
                    &[("content-type", "text/xml")],
                    "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                     <Error><Type>Sender</Type><Code>AuthorizationError</Code>\
                     <Message>not authorized</Message></Error>\
                     <RequestId>r-1</RequestId></ErrorResponse>",
                )
            });
        let sns = SnsNotifier::new(client(&[&decisions, &cards]), Some(TOPIC.into()))
            .with_chat_topic(Some(CHAT.into()));

        sns.announce(&decision())
            .await
            .expect("the decision was published");

        assert_eq!((decisions.num_calls(), cards.num_calls()), (1, 1));
        // Without a chat topic, no card is tried.
        let only = mock!(Client::publish).then_output(|| PublishOutput::builder().build());
        let sns = SnsNotifier::new(client(&[&only]), Some(TOPIC.into())).with_chat_topic(None);
        sns.announce(&decision()).await.expect("announce");
        assert_eq!(only.num_calls(), 1);
    }

    #[tokio::test]
    async fn publish_failure_is_an_aws_error() {
        let rule = mock!(Client::publish).then_http_response(|| {
            http_error(
                403,
                &[("content-type", "text/xml")],
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                 <Error><Type>Sender</Type><Code>AuthorizationError</Code>\
                 <Message>not authorized to perform SNS:Publish</Message></Error>\
                 <RequestId>r-1</RequestId></ErrorResponse>",
            )
        });
        let sns = SnsNotifier::new(client(&[&rule]), Some(TOPIC.into()));

        let err = sns.announce(&decision()).await.unwrap_err();

        assert_eq!(
            aws_fields(&err),
            ("sns", "Publish", Some("AuthorizationError"), false)
        );
        assert_eq!(rule.num_calls(), 1);
    }
}
