"""CodeDeploy patches: a real lifecycle for Lambda deployments.

moto stores Lambda deployments but never runs them.  Here CreateDeployment
starts a thread that walks the AWS Lambda lifecycle (BeforeAllowTraffic hook,
traffic shifting on the alias per deployment config, AfterAllowTraffic hook),
with hook status reporting, StopDeployment, rollback and state-change events.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.models import CodeDeployBackend, DeploymentInfo
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from . import awslambda, events, ids, state
from .state import log, records

FINAL = ("Succeeded", "Failed", "Stopped")


class CodeDeployError(JsonRESTError):
    code = 400

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)


# --- deployment configurations ------------------------------------------------

def _canary(pct: int, minutes: int) -> dict[str, Any]:
    return {"type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": pct, "canaryInterval": minutes}}


def _linear(pct: int, minutes: int) -> dict[str, Any]:
    return {"type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": pct, "linearInterval": minutes}}


BUILT_IN: dict[str, dict[str, Any]] = {
    "CodeDeployDefault.LambdaAllAtOnce": {"type": "AllAtOnce"},
    **{f"CodeDeployDefault.LambdaCanary10Percent{m}Minutes": _canary(10, m) for m in (5, 10, 15, 30)},
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": _linear(10, 1),
    **{f"CodeDeployDefault.LambdaLinear10PercentEvery{m}Minutes": _linear(10, m) for m in (2, 3, 10)},
}


def _configs(backend: CodeDeployBackend) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "_rg_configs"):
        backend._rg_configs = {}  # type: ignore[attr-defined]
    return backend._rg_configs  # type: ignore[attr-defined]


def _config_info(backend: CodeDeployBackend, name: str) -> dict[str, Any]:
    if name in BUILT_IN:
        return {
            "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "deploymentConfigName": name,
            "computePlatform": "Lambda",
            "trafficRoutingConfig": BUILT_IN[name],
        }
    info = _configs(backend).get(name)
    if info is None:
        raise CodeDeployError(
            "DeploymentConfigDoesNotExistException",
            f"The deployment configuration {name} does not exist with the user or AWS account.",
        )
    return info


def traffic_steps(routing: dict[str, Any]) -> list[tuple[float, float]]:
    """[(percent on target, minutes to wait afterwards)], ending with 100%."""
    kind = routing.get("type", "AllAtOnce")
    if kind == "TimeBasedCanary":
        canary = routing["timeBasedCanary"]
        return [(float(canary["canaryPercentage"]), float(canary["canaryInterval"])), (100.0, 0.0)]
    if kind == "TimeBasedLinear":
        linear = routing["timeBasedLinear"]
        step, interval = float(linear["linearPercentage"]), float(linear["linearInterval"])
        steps, pct = [], step
        while pct < 100:
            steps.append((pct, interval))
            pct += step
        return steps + [(100.0, 0.0)]
    return [(100.0, 0.0)]


# --- revisions ----------------------------------------------------------------

def _content_key(revision: dict[str, Any]) -> str | None:
    return {"AppSpecContent": "appSpecContent", "String": "string"}.get(revision.get("revisionType", ""))


def _with_sha(revision: dict[str, Any]) -> dict[str, Any]:
    key = _content_key(revision)
    if not key or not isinstance(revision.get(key), dict):
        raise CodeDeployError("InvalidRevisionException",
                              "A Lambda deployment needs an AppSpecContent or String revision.")
    body = dict(revision[key])
    if not body.get("sha256") and body.get("content") is not None:
        body["sha256"] = hashlib.sha256(body["content"].encode("utf-8")).hexdigest()
    return {"revisionType": revision["revisionType"], key: body}


def _revisions(backend: CodeDeployBackend) -> dict[tuple[str, str, str], dict[str, Any]]:
    if not hasattr(backend, "_rg_revisions"):
        backend._rg_revisions = {}  # type: ignore[attr-defined]
    return backend._rg_revisions  # type: ignore[attr-defined]


def _register_revision(backend: CodeDeployBackend, app: str, group: str,
                       revision: dict[str, Any], description: str | None) -> None:
    key = _content_key(revision)
    ident = (app, revision["revisionType"], revision[key]["sha256"])
    now = utcnow()
    entry = _revisions(backend).setdefault(ident, {
        "revision": revision, "registerTime": now, "firstUsedTime": now,
        "deploymentGroups": [], "description": description,
    })
    entry["lastUsedTime"] = now
    if group not in entry["deploymentGroups"]:
        entry["deploymentGroups"].append(group)


def _without_content(revision: dict[str, Any]) -> dict[str, Any]:
    key = _content_key(revision)
    if not key:
        return revision
    return {"revisionType": revision["revisionType"], key: {"sha256": revision[key].get("sha256")}}


# --- AppSpec ------------------------------------------------------------------

@dataclass
class AppSpec:
    function: str
    alias: str
    current: str
    target: str
    hooks: dict[str, str] = field(default_factory=dict)


def parse_appspec(revision: dict[str, Any]) -> AppSpec:
    content = revision[_content_key(revision)].get("content") or ""
    doc = yaml.safe_load(content)  # YAML is a superset of JSON
    resource = next(iter(doc["Resources"][0].values()))
    props = resource["Properties"]
    hooks: dict[str, str] = {}
    for hook in doc.get("Hooks") or []:
        hooks.update({str(k): str(v) for k, v in hook.items()})
    return AppSpec(str(props["Name"]), str(props["Alias"]), str(props["CurrentVersion"]),
                   str(props["TargetVersion"]), hooks)


# --- lifecycle ----------------------------------------------------------------

@dataclass
class HookExecution:
    id: str
    event: str
    function: str
    status: str = "Pending"
    reports: int = 0
    reported_status: list[str] = field(default_factory=list)
    started: float = field(default_factory=state.now)
    finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lifecycleEventHookExecutionId": self.id, "lifecycleEvent": self.event,
                "functionName": self.function, "status": self.status,
                "reportCount": self.reports, "reportedStatuses": self.reported_status,
                "startTime": self.started, "endTime": self.finished}


class Halt(Exception):
    def __init__(self, kind: str, code: str = "", message: str = ""):
        super().__init__(message)
        self.kind, self.code, self.message = kind, code, message


class Run:
    def __init__(self, backend: CodeDeployBackend, deployment: DeploymentInfo,
                 routing: dict[str, Any], rollback_on_failure: bool, rollback_on_stop: bool):
        self.backend = backend
        self.deployment = deployment
        self.routing = routing
        self.rollback_on_failure = rollback_on_failure
        self.rollback_on_stop = rollback_on_stop
        self.hooks: list[HookExecution] = []
        self.cond = threading.Condition()
        self.stop: dict[str, Any] | None = None
        self.spec: AppSpec | None = None

    @property
    def id(self) -> str:
        return self.deployment.deployment_id

    def check_stop(self) -> None:
        if self.stop is not None:
            raise Halt(self.stop["kind"], "MANUAL_STOP", "The deployment was stopped by a StopDeployment request.")

    def wait(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.stop is not None, timeout=seconds)
        self.check_stop()


RUNS: dict[str, Run] = {}
_RUNS_LOCK = threading.Lock()


def _set_status(deployment: DeploymentInfo, status: str) -> None:
    deployment.status = status
    log.info("deployment %s %s", deployment.deployment_id, status)


def _lifecycle(run: Run) -> None:
    d = run.deployment
    try:
        d.start_time = utcnow()
        _set_status(d, "InProgress")
        events.deployment_state_changed(d, "START")
        try:
            run.spec = spec = parse_appspec(d.revision)
        except Exception as err:
            raise Halt("failure", "INVALID_REVISION", f"The AppSpec could not be read: {err!r}")
        try:
            awslambda.get_alias(spec.function, spec.alias)
            for version in (spec.current, spec.target):
                awslambda.resolve(spec.function, version)
        except Exception as err:
            raise Halt("failure", "INVALID_LAMBDA_CONFIGURATION", f"AppSpec Lambda resources: {err}")
        _run_hook(run, "BeforeAllowTraffic")
        for pct, minutes in traffic_steps(run.routing):
            run.check_stop()
            if pct >= 100:
                awslambda.set_alias(spec.function, spec.alias, spec.target, None)
            else:
                awslambda.set_alias(spec.function, spec.alias, spec.current,
                                    {spec.target: round(pct / 100.0, 4)})
            log.info("deployment %s traffic %s%% on version %s", run.id, pct, spec.target)
            if minutes:
                run.wait(minutes * state.settings.minute_seconds)
        _run_hook(run, "AfterAllowTraffic")
        run.check_stop()
        _finish(run, "Succeeded", "SUCCESS")
    except Halt as halt:
        if halt.kind == "reset":
            return
        _end_badly(run, halt)
    except Exception as err:  # keep the emulator alive and the deployment visible
        log.exception("deployment %s crashed", run.id)
        _end_badly(run, Halt("failure", "INTERNAL_ERROR", str(err)))


def _run_hook(run: Run, event: str) -> None:
    assert run.spec is not None
    function = run.spec.hooks.get(event)
    if not function:
        return
    run.check_stop()
    execution = HookExecution(ids.hook_execution_id(), event, function)
    with run.cond:
        run.hooks.append(execution)
    payload = json.dumps({"DeploymentId": run.id, "LifecycleEventHookExecutionId": execution.id})
    log.info("deployment %s %s: invoking hook %s", run.id, event, function)
    try:
        awslambda.invoke(function, payload.encode(), "Event")
    except Exception as err:
        _close(run, execution, "Failed")
        raise Halt("failure", "HOOK_EXECUTION_FAILURE",
                   f"The {event} hook {function} could not be invoked: {err}")
    with run.cond:
        execution.status = "InProgress"
        done = run.cond.wait_for(lambda: execution.status in ("Succeeded", "Failed") or run.stop is not None,
                                 timeout=state.settings.hook_timeout_seconds)
    run.check_stop()
    if not done:
        _close(run, execution, "Failed")
        log.info("deployment %s %s: hook %s timed out", run.id, event, function)
        raise Halt("failure", "HOOK_EXECUTION_FAILURE",
                   f"The {event} hook {function} did not report a status within "
                   f"{state.settings.hook_timeout_seconds:g} seconds.")
    log.info("deployment %s %s: hook %s reported %s", run.id, event, function, execution.status)
    if execution.status == "Failed":
        raise Halt("failure", "HOOK_EXECUTION_FAILURE",
                   f"The {event} hook {function} reported Failed.")


def _close(run: Run, execution: HookExecution, status: str) -> None:
    with run.cond:
        if execution.status not in ("Succeeded", "Failed"):
            execution.status = status
            execution.finished = state.now()


def _finish(run: Run, status: str, event_state: str) -> None:
    d = run.deployment
    with run.cond:
        d.complete_time = utcnow()
        _set_status(d, status)
        run.cond.notify_all()
    events.deployment_state_changed(d, event_state)


def _end_badly(run: Run, halt: Halt) -> None:
    d = run.deployment
    stopped = halt.kind == "stop"
    rollback = (run.stop or {}).get("rollback", run.rollback_on_stop) if stopped else run.rollback_on_failure
    d.error_information = {"code": halt.code, "message": halt.message}
    d.deployment_status_messages.append(halt.message)
    log.info("deployment %s %s: %s", run.id, "stopping" if stopped else "failing", halt.message)
    rollback_deployment = None
    if rollback and run.spec is not None and halt.code != "INVALID_LAMBDA_CONFIGURATION":
        # Nothing to roll back when the AppSpec's function or alias does not exist.
        rollback_deployment = _roll_back(run)
    _finish(run, "Stopped" if stopped else "Failed", "STOP" if stopped else "FAILURE")
    if rollback_deployment is not None:
        events.deployment_state_changed(rollback_deployment, "START")
        events.deployment_state_changed(rollback_deployment, "SUCCESS")


def _roll_back(run: Run) -> DeploymentInfo:
    """Alias back on CurrentVersion, recorded as its own (succeeded) deployment."""
    spec, d = run.spec, run.deployment
    assert spec is not None
    awslambda.set_alias(spec.function, spec.alias, spec.current, None)
    content = json.dumps({"version": 0.0, "Resources": [{spec.function: {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Name": spec.function, "Alias": spec.alias,
                       "CurrentVersion": spec.target, "TargetVersion": spec.current}}}]})
    revision = _with_sha({"revisionType": "AppSpecContent", "appSpecContent": {"content": content}})
    rb = DeploymentInfo(d.application, d.deployment_group, revision, d.deployment_config_name,
                        f"Rollback of {d.deployment_id}", None, None, None, None, None, None,
                        "codeDeployRollback")
    rb.start_time = rb.complete_time = utcnow()
    rb.status = "Succeeded"
    rb.rollback_info = {"rollbackTriggeringDeploymentId": d.deployment_id}
    run.backend.deployments[rb.deployment_id] = rb
    _register_revision(run.backend, d.application_name, d.deployment_group_name, revision, rb.description)
    d.rollback_info = {
        "rollbackDeploymentId": rb.deployment_id,
        "rollbackMessage": f"Rolled back by deployment {rb.deployment_id}: alias "
                           f"{spec.alias} is on version {spec.current} again.",
    }
    log.info("deployment %s rolled back by %s (alias %s:%s -> %s)",
             d.deployment_id, rb.deployment_id, spec.function, spec.alias, spec.current)
    return rb


def _reset_runs() -> None:
    with _RUNS_LOCK:
        runs = list(RUNS.values())
        RUNS.clear()
    for run in runs:
        with run.cond:
            if run.stop is None:
                run.stop = {"kind": "reset"}
            run.cond.notify_all()


records.on_reset(_reset_runs)


def hook_records(deployment_id: str) -> list[dict[str, Any]] | None:
    run = RUNS.get(deployment_id)
    if run is None:
        return None
    with run.cond:
        return [h.to_json() for h in run.hooks]


# --- backend / response patches -----------------------------------------------

def _rollback_enabled(config: dict[str, Any] | None, event: str) -> bool:
    config = config or {}
    return bool(config.get("enabled")) and event in (config.get("events") or [])


_orig_create_deployment = CodeDeployBackend.create_deployment
_orig_create_group = CodeDeployBackend.create_deployment_group
_orig_info_init = DeploymentInfo.__init__
_orig_deployment_info = cd_responses._deployment_info


def _create_deployment(self: CodeDeployBackend, application_name: str, deployment_group_name: str,
                       revision: dict[str, Any], deployment_config_name: str | None = None,
                       **kwargs: Any) -> str:
    app = self.get_application(application_name)
    if app.compute_platform != "Lambda":
        return _orig_create_deployment(self, application_name, deployment_group_name, revision,
                                       deployment_config_name, **kwargs)
    if not revision:
        raise CodeDeployError("RevisionRequiredException", "The revision ID was not specified.")
    group = self.get_deployment_group(application_name, deployment_group_name)
    revision = _with_sha(revision)
    config_name = str(deployment_config_name or group.deployment_config_name)
    routing = _config_info(self, config_name)["trafficRoutingConfig"]
    deployment_id = _orig_create_deployment(self, application_name, deployment_group_name, revision,
                                            config_name, **kwargs)
    deployment = self.deployments[deployment_id]
    _register_revision(self, application_name, deployment_group_name, revision, kwargs.get("description"))
    rollback_config = kwargs.get("auto_rollback_configuration") or group.auto_rollback_configuration
    run = Run(self, deployment, routing,
              _rollback_enabled(rollback_config, "DEPLOYMENT_FAILURE"),
              _rollback_enabled(rollback_config, "DEPLOYMENT_STOP_ON_REQUEST"))
    with _RUNS_LOCK:
        RUNS[deployment_id] = run
    log.info("deployment %s Created (%s/%s, config %s)", deployment_id, application_name,
             deployment_group_name, config_name)
    threading.Thread(target=_lifecycle, args=(run,), daemon=True, name=f"deploy-{deployment_id}").start()
    return deployment_id


def _create_deployment_group(self: CodeDeployBackend, application_name: str, deployment_group_name: str,
                             deployment_config_name: str | None, *args: Any, **kwargs: Any) -> str:
    app = self.get_application(application_name)
    if app.compute_platform == "Lambda":
        deployment_config_name = deployment_config_name or "CodeDeployDefault.LambdaAllAtOnce"
        _config_info(self, deployment_config_name)
    return _orig_create_group(self, application_name, deployment_group_name, deployment_config_name,
                              *args, **kwargs)


def _info_init(self: DeploymentInfo, *args: Any, **kwargs: Any) -> None:
    _orig_info_init(self, *args, **kwargs)
    self.deployment_id = ids.deployment_id()
    self.error_information: dict[str, str] | None = None
    self.rollback_info: dict[str, str] | None = None


def _deployment_info(deployment: DeploymentInfo) -> dict[str, Any]:
    info = _orig_deployment_info(deployment)
    if deployment.application.compute_platform != "Lambda":
        return info
    info["revision"] = _without_content(deployment.revision)
    info["computePlatform"] = "Lambda"
    for key, value in (("errorInformation", deployment.error_information),
                       ("rollbackInfo", deployment.rollback_info)):
        if value:
            info[key] = value
        else:
            info.pop(key, None)
    for key in ("deploymentOverview", "previousRevision", "relatedDeployments", "targetInstances",
                "externalId", "additionalDeploymentStatusInfo"):
        info.pop(key, None)
    return info


def _stop_deployment(self: CodeDeployResponse) -> ActionResult:
    deployment_id = self._get_param("deploymentId")
    deployment = self.codedeploy_backend.get_deployment(deployment_id)
    if deployment.status in FINAL:
        raise CodeDeployError("DeploymentAlreadyCompletedException",
                              f"The deployment {deployment_id} has already completed.")
    run = RUNS.get(deployment_id)
    if run is None:
        raise CodeDeployError("UnsupportedActionForDeploymentTypeException",
                              "The emulator only stops Lambda deployments.")
    rollback = self._get_param("autoRollbackEnabled")
    with run.cond:
        if run.stop is None:
            run.stop = {"kind": "stop", "rollback": rollback if rollback is not None else run.rollback_on_stop}
        run.cond.notify_all()
    log.info("deployment %s stop requested (autoRollbackEnabled=%s)", deployment_id, rollback)
    return ActionResult({"status": "Pending", "statusMessage": "Stopping deployment."})


def _put_hook_status(self: CodeDeployResponse) -> ActionResult:
    deployment_id = self._get_param("deploymentId")
    execution_id = self._get_param("lifecycleEventHookExecutionId")
    status = self._get_param("status")
    deployment = self.codedeploy_backend.get_deployment(deployment_id)
    run = RUNS.get(deployment_id)
    execution = next((h for h in run.hooks if h.id == execution_id), None) if run else None
    if execution is None:
        raise CodeDeployError("InvalidLifecycleEventHookExecutionIdException",
                              f"The lifecycle event hook execution id {execution_id} is not valid.")
    with run.cond:
        execution.reports += 1
        execution.reported_status.append(status)
        if execution.status in ("Succeeded", "Failed") or deployment.status in FINAL:
            raise CodeDeployError("LifecycleEventAlreadyCompletedException",
                                  f"The lifecycle event {execution.event} of deployment "
                                  f"{deployment_id} has already completed.")
        if status not in ("Succeeded", "Failed"):
            raise CodeDeployError("InvalidLifecycleEventHookExecutionStatusException",
                                  f"The status {status} is not valid; use Succeeded or Failed.")
        execution.status = status
        execution.finished = state.now()
        run.cond.notify_all()
    return ActionResult({"lifecycleEventHookExecutionId": execution_id})


def _get_application_revision(self: CodeDeployResponse) -> ActionResult:
    app = self._get_param("applicationName")
    self.codedeploy_backend.get_application(app)
    revision = self._get_param("revision") or {}
    key = _content_key(revision)
    body = revision.get(key) or {} if key else {}
    sha = body.get("sha256")
    if not sha and body.get("content") is not None:
        sha = hashlib.sha256(body["content"].encode("utf-8")).hexdigest()
    entry = _revisions(self.codedeploy_backend).get((app, revision.get("revisionType"), sha))
    if entry is None:
        raise CodeDeployError("RevisionDoesNotExistException",
                              "The named revision does not exist with the user or AWS account.")
    info = {k: entry.get(k) for k in ("description", "deploymentGroups", "firstUsedTime",
                                      "lastUsedTime", "registerTime")}
    return ActionResult({"applicationName": app, "revision": entry["revision"], "revisionInfo": info})


def _create_deployment_config(self: CodeDeployResponse) -> ActionResult:
    name = self._get_param("deploymentConfigName")
    backend = self.codedeploy_backend
    if name in BUILT_IN or name in _configs(backend):
        raise CodeDeployError("DeploymentConfigAlreadyExistsException",
                              f"A deployment configuration with the name {name} already exists.")
    routing = self._get_param("trafficRoutingConfig") or {"type": "AllAtOnce"}
    info = {"deploymentConfigId": str(uuid.uuid4()), "deploymentConfigName": name,
            "computePlatform": self._get_param("computePlatform") or "Server",
            "trafficRoutingConfig": routing, "createTime": utcnow()}
    if self._get_param("minimumHealthyHosts"):
        info["minimumHealthyHosts"] = self._get_param("minimumHealthyHosts")
    _configs(backend)[name] = info
    return ActionResult({"deploymentConfigId": info["deploymentConfigId"]})


def _get_deployment_config(self: CodeDeployResponse) -> ActionResult:
    name = self._get_param("deploymentConfigName")
    return ActionResult({"deploymentConfigInfo": _config_info(self.codedeploy_backend, name)})


def _list_deployment_configs(self: CodeDeployResponse) -> ActionResult:
    return ActionResult({"deploymentConfigsList": sorted(BUILT_IN) + sorted(_configs(self.codedeploy_backend))})


def _delete_deployment_config(self: CodeDeployResponse) -> ActionResult:
    name = self._get_param("deploymentConfigName")
    if name in BUILT_IN:
        raise CodeDeployError("InvalidOperationException", "A built-in deployment configuration cannot be deleted.")
    _configs(self.codedeploy_backend).pop(name, None)
    return ActionResult({})


def patch() -> None:
    CodeDeployBackend.create_deployment = _create_deployment  # type: ignore[method-assign]
    CodeDeployBackend.create_deployment_group = _create_deployment_group  # type: ignore[method-assign]
    DeploymentInfo.__init__ = _info_init  # type: ignore[method-assign]
    cd_responses._deployment_info = _deployment_info
    CodeDeployResponse.stop_deployment = _stop_deployment  # type: ignore[attr-defined]
    CodeDeployResponse.put_lifecycle_event_hook_execution_status = _put_hook_status  # type: ignore[attr-defined]
    CodeDeployResponse.get_application_revision = _get_application_revision  # type: ignore[attr-defined]
    CodeDeployResponse.create_deployment_config = _create_deployment_config  # type: ignore[attr-defined]
    CodeDeployResponse.get_deployment_config = _get_deployment_config  # type: ignore[attr-defined]
    CodeDeployResponse.list_deployment_configs = _list_deployment_configs  # type: ignore[attr-defined]
    CodeDeployResponse.delete_deployment_config = _delete_deployment_config  # type: ignore[attr-defined]
