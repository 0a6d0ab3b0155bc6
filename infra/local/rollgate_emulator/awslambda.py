"""Lambda patches: Invoke forwarded to `cargo lambda watch`, alias RevisionIds.

moto runs Invoke in Docker; here the call goes to the watch process instead,
after resolving the qualifier (version, $LATEST or weighted alias) the way
Lambda does.  The resolved version's configuration travels in the runtime
client context because one watch process serves every version.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.awslambda.exceptions import (
    PreconditionFailedException,
    UnknownFunctionException,
)
from moto.awslambda.models import LambdaAlias, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend
from moto.core.exceptions import JsonRESTError

from . import cloudtrail, state
from .state import log, records

# Fixed so a watch that is still compiling the function has time to answer.
FORWARD_TIMEOUT_SECONDS = 900

_ARN = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?"
    r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9_$-]+))?$"
)


class ServiceException(JsonRESTError):
    """Lambda's 500 for an invoke the service could not carry out."""

    code = 500

    def __init__(self, message: str):
        super().__init__("ServiceException", message)


class Resolved:
    def __init__(self, fn: LambdaFunction, version: str, requested: str | None):
        self.fn = fn
        self.version = version
        self.requested = requested

    @property
    def name(self) -> str:
        return self.fn.function_name

    @property
    def binary(self) -> str:
        handler = (self.fn.handler or "").strip()
        return self.name if handler in ("", "bootstrap") else handler


def _unknown(account: str, region: str, name: str, qualifier: str | None) -> Exception:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return UnknownFunctionException(f"{arn}:{qualifier}" if qualifier else arn)


def resolve(
    function_ref: str,
    qualifier: str | None = None,
    account: str = state.ACCOUNT_ID,
    region: str = state.REGION,
) -> Resolved:
    """Find the function version an invoke of `function_ref` runs."""
    match = _ARN.match(unquote(function_ref))
    if not match:
        raise _unknown(account, region, function_ref, qualifier)
    name = match.group("name")
    qualifier = match.group("qualifier") or qualifier
    storage = get_backend(account, region)._lambdas
    entry = storage._functions.get(name)
    if not entry or entry.get("latest") is None:
        raise _unknown(account, region, name, qualifier)
    if qualifier in (None, "$LATEST"):
        return Resolved(entry["latest"], "$LATEST", qualifier)
    if qualifier.isdigit():
        fn = storage._get_version(name, qualifier)
        if fn is None:
            raise _unknown(account, region, name, qualifier)
        return Resolved(fn, qualifier, qualifier)
    alias = storage._aliases[entry["latest"].function_arn].get(qualifier)
    if alias is None:
        raise _unknown(account, region, name, qualifier)
    version = pick_alias_version(alias)
    if version == "$LATEST":
        return Resolved(entry["latest"], "$LATEST", qualifier)
    fn = storage._get_version(name, version)
    if fn is None:
        raise _unknown(account, region, name, version)
    return Resolved(fn, version, qualifier)


def pick_alias_version(alias: LambdaAlias) -> str:
    """Weighted choice between the alias's version and its additional ones."""
    weights = (alias.routing_config or {}).get("AdditionalVersionWeights") or {}
    roll = random.random()
    for version, weight in weights.items():
        if roll < float(weight):
            return str(version)
        roll -= float(weight)
    return str(alias.function_version)


def client_context(resolved: Resolved, caller_header: str | None) -> str:
    """JSON for watch's `lambda-runtime-client-context` header."""
    caller: dict[str, Any] = {}
    if caller_header:
        try:
            caller = json.loads(base64.b64decode(caller_header)) or {}
        except ValueError:
            caller = {}
    env = dict(resolved.fn.environment_vars or {})
    env["AWS_LAMBDA_FUNCTION_NAME"] = resolved.name
    env["AWS_LAMBDA_FUNCTION_VERSION"] = resolved.version
    # AWS spells the section `env`; the Rust runtime's ClientContext reads `environment`
    # and rejects `null` sections, so send both spellings and omit what the caller lacks.
    context: dict[str, Any] = {"env": env, "environment": env}
    for key in ("custom", "client"):
        if isinstance(caller.get(key), dict):
            context[key] = caller[key]
    return json.dumps(context)


def _forward(resolved: Resolved, payload: bytes) -> tuple[int, bytes]:
    url = (
        f"{state.settings.lambda_endpoint.rstrip('/')}"
        f"/2015-03-31/functions/{resolved.binary}/invocations"
    )
    request = urllib.request.Request(
        url,
        data=payload or b"{}",
        method="POST",
        # No client context is forwarded: cargo lambda watch base64-encodes that header
        # while the Rust runtime expects raw JSON there, and a context it cannot parse
        # ends the function process. Versions differ by binary (their Handler) instead.
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_SECONDS) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def invoke(
    function_ref: str,
    payload: bytes,
    invocation_type: str = "RequestResponse",
    qualifier: str | None = None,
    caller_context: str | None = None,
) -> tuple[Resolved, dict[str, Any]]:
    """Resolve and run one invoke; Event invokes run in a background thread.

    Returns the resolution and the invocation record (updated in place when an
    Event invoke finishes).  Raises ResourceNotFoundException / ServiceException.
    """
    resolved = resolve(function_ref, qualifier)
    record = records.add_invocation(
        {
            "requestId": str(uuid.uuid4()),
            "function": resolved.name,
            "binary": resolved.binary,
            "qualifier": resolved.requested,
            "version": resolved.version,
            "invocationType": invocation_type,
            "status": None,
            "functionError": None,
            "durationMs": None,
            "time": time.time(),
            "payload": _as_json(payload),
        }
    )
    if invocation_type == "DryRun":
        record["status"] = 204
        return resolved, record
    # What the version would see in its environment on AWS, kept for inspection.
    record["context"] = json.loads(client_context(resolved, caller_context))

    def run() -> bytes:
        started = time.monotonic()
        try:
            status, body = _forward(resolved, payload)
        except (urllib.error.URLError, OSError) as err:
            record.update(status="unreachable", error=str(err))
            log.warning(
                "lambda invoke %s:%s (%s) -> watch unreachable at %s: %s",
                resolved.name, resolved.version, invocation_type,
                state.settings.lambda_endpoint, err,
            )
            raise ServiceException(
                f"Function {resolved.name} could not be run: cargo lambda watch "
                f"is not reachable at {state.settings.lambda_endpoint}"
            ) from err
        record["durationMs"] = round((time.monotonic() - started) * 1000, 1)
        record["status"] = status
        if status >= 300:
            record["functionError"] = "Unhandled"
        record["response"] = _as_json(body)
        log.info(
            "lambda invoke %s qualifier=%s -> version %s (%s) binary=%s status=%s%s %.0fms",
            resolved.name, resolved.requested or "-", resolved.version,
            invocation_type, resolved.binary, status,
            " FunctionError=Unhandled" if status >= 300 else "",
            record["durationMs"],
        )
        return body

    if invocation_type == "Event":
        generation = _generation[0]

        def background() -> None:
            for attempt, delay in enumerate([0.0, *_retry_delays(resolved.fn)]):
                if delay:
                    time.sleep(delay)
                    if generation != _generation[0]:
                        return  # the world was reset meanwhile: its invocations are gone
                    # Running again: the last attempt's outcome moves to `earlier`, so a
                    # reader polling the record cannot miss it in the retry's short wait.
                    record.setdefault("earlier", []).append(
                        {k: record.get(k) for k in ("status", "functionError", "response", "durationMs")})
                    record["attempts"] = attempt + 1
                    record["status"] = 202
                    record.pop("functionError", None)
                    log.warning("lambda async retry %d of %s after a function error: %s",
                                attempt, resolved.name, record.get("response"))
                try:
                    run()
                except ServiceException:
                    pass
                if record["status"] not in ("unreachable",) and record["status"] < 300:
                    return
            if generation == _generation[0]:  # not a world reset meanwhile
                _on_failure(resolved, record, payload)

        record["status"] = 202  # replaced by watch's status once it answers
        record["attempts"] = 1
        threading.Thread(target=background, daemon=True).start()
        return resolved, record
    record["body"] = run()
    return resolved, record


# Lambda retries an asynchronous invocation that returned a function error twice by
# default (MaximumRetryAttempts of the function's event invoke configuration, 0-2),
# waiting one minute before the first retry and two before the second
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
# Minutes are the emulator's scaled minutes.
RETRY_WAIT_MINUTES = (1.0, 2.0)


# Bumped by a reset: retries scheduled before it are dropped with the rest of the state.
_generation = [0]


def _next_generation() -> None:
    _generation[0] += 1


records.on_reset(_next_generation)


def _retry_delays(fn: LambdaFunction) -> list[float]:
    retries = 2
    for cfg in getattr(fn, "event_invoke_config", None) or []:
        retries = int(cfg.config.get("MaximumRetryAttempts", retries))
    return [m * state.settings.minute_seconds for m in RETRY_WAIT_MINUTES[:retries]]


# When every attempt of an asynchronous invoke failed, Lambda sends an invocation record to
# the OnFailure destination of the function's event invoke configuration
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):
# {version, timestamp, requestContext {requestId, functionArn, condition,
# approximateInvokeCount}, requestPayload, responseContext {statusCode, executedVersion,
# functionError}, responsePayload}. An S3 bucket gets it as a JSON object under
# aws/lambda/async/<function-name>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>; an SQS queue as
# a message body. (A function's own DeadLetterConfig is not modelled: moto keeps none.)

def _failure_record(resolved: Resolved, record: dict[str, Any], payload: bytes) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {"requestId": record["requestId"],
                           "functionArn": f"arn:aws:lambda:{state.REGION}:{state.ACCOUNT_ID}:function:"
                                          f"{resolved.name}:{resolved.requested or '$LATEST'}",
                           "condition": "RetriesExhausted", "approximateInvokeCount": record["attempts"]},
        "requestPayload": _as_json(payload),
        "responseContext": {"statusCode": 200, "executedVersion": resolved.version, "functionError": "Unhandled"},
        "responsePayload": record.get("response"),
    }


def _on_failure(resolved: Resolved, record: dict[str, Any], payload: bytes) -> None:
    destination = None
    for cfg in getattr(resolved.fn, "event_invoke_config", None) or []:
        destination = ((cfg.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if not destination:
        return
    body = json.dumps(_failure_record(resolved, record, payload))
    service = destination.split(":")[2]
    try:
        if service == "s3":
            from moto.s3.models import s3_backends

            now = datetime.now(timezone.utc)
            key = (f"aws/lambda/async/{resolved.name}/{now:%Y/%m/%d}/"
                   f"{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}")
            bucket = destination.split(":::", 1)[1]
            s3_backends[state.ACCOUNT_ID]["aws"].put_object(bucket, key, body.encode())
        elif service == "sqs":
            from moto.sqs.models import sqs_backends

            _, _, _, region, account, queue = destination.split(":", 5)
            sqs_backends[account][region].send_message(queue, body)
        else:
            log.warning("lambda on-failure destination %s is not modelled", destination)
            return
    except Exception as err:  # the destination gone: the record is lost, as on AWS
        log.warning("lambda on-failure record of %s to %s failed: %s", resolved.name, destination, err)
        return
    record["onFailure"] = destination
    log.info("lambda %s: retries exhausted, record sent to %s", resolved.name, destination)


def _as_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode("utf-8", "replace")


# --- moto response overrides -------------------------------------------------


def _invoke_response(self: LambdaResponse) -> tuple[int, dict[str, str], bytes]:
    path = urlparse(self.path).path
    function_ref = unquote(path.rstrip("/").rsplit("/", 2)[-2])
    query = parse_qs(urlparse(self.uri).query)
    qualifier = (query.get("Qualifier") or [None])[0]
    invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    resolved, record = invoke(
        function_ref,
        self.body if isinstance(self.body, bytes) else (self.body or "").encode(),
        invocation_type,
        qualifier,
        self.headers.get("X-Amz-Client-Context"),
    )
    headers = {"content-type": "application/json"}
    if invocation_type == "Event":
        return 202, {**headers, "status": "202"}, b""
    if invocation_type == "DryRun":
        return 204, {**headers, "status": "204"}, b""
    headers["X-Amz-Executed-Version"] = resolved.version
    if record["functionError"]:
        headers["X-Amz-Function-Error"] = record["functionError"]
    return 200, {**headers, "status": "200"}, record["body"]


def _alias_response(alias: LambdaAlias, status: int) -> tuple[int, dict, str]:
    return status, {"status": status}, json.dumps(alias.to_json())


def _get_alias(self: LambdaResponse) -> tuple[int, dict, str]:
    function_name = unquote(self.path.split("?")[0].rsplit("/")[-3])
    alias_name = unquote(self.path.split("?")[0].rsplit("/", 2)[-1])
    return _alias_response(self.backend.get_alias(alias_name, function_name), 200)


def _update_alias(self: LambdaResponse) -> tuple[int, dict, str]:
    function_name = unquote(self.path.split("?")[0].rsplit("/")[-3])
    alias_name = unquote(self.path.split("?")[0].rsplit("/", 2)[-1])
    params = json.loads(self.body or "{}")
    request = {"FunctionName": function_name, "Name": alias_name, **params}
    alias = self.backend.get_alias(alias_name, function_name)
    expected = params.get("RevisionId")
    if expected and expected != alias.revision_id:
        message = ("The Revision Id provided does not match the latest Revision Id. "
                   "Call the GetAlias API to retrieve the latest Revision Id")
        cloudtrail.alias_call("UpdateAlias", request, None, ("PreconditionFailedException", message))
        raise PreconditionFailedException(message)
    alias = self.backend.update_alias(
        name=alias_name,
        function_name=function_name,
        function_version=params.get("FunctionVersion"),
        description=params.get("Description"),
        routing_config=params.get("RoutingConfig"),
    )
    log.info(
        "lambda alias %s:%s -> version %s routing=%s",
        function_name, alias_name, alias.function_version,
        json.dumps(alias.routing_config),
    )
    cloudtrail.alias_call("UpdateAlias", request, alias.to_json())
    return _alias_response(alias, 200)


_original_create_alias = LambdaResponse.create_alias


def _create_alias(self: LambdaResponse) -> tuple[int, dict, str]:
    """moto's CreateAlias, recorded by CloudTrail when it succeeds."""
    function_name = unquote(self.path.rsplit("/", 2)[-2])
    params = json.loads(self.body or "{}")
    status, headers, body = _original_create_alias(self)
    cloudtrail.alias_call("CreateAlias", {"FunctionName": function_name, **params}, json.loads(body))
    return status, headers, body


_original_alias_init = LambdaAlias.__init__


def _alias_init(self: LambdaAlias, *args: Any, **kwargs: Any) -> None:
    _original_alias_init(self, *args, **kwargs)
    self.routing_config = _normalise_routing(self.routing_config)


def _alias_update(
    self: LambdaAlias,
    description: str | None,
    function_version: str | None,
    routing_config: Any,
) -> None:
    """Apply a change and issue a new RevisionId, as Lambda does on every update."""
    if description is not None:
        self.description = description
    if function_version is not None:
        self.function_version = str(function_version)
    if routing_config is not None:
        self.routing_config = _normalise_routing(routing_config)
    self.revision_id = str(uuid.uuid4())


def _normalise_routing(routing: Any) -> Any:
    if not routing or not routing.get("AdditionalVersionWeights"):
        return None
    weights = routing["AdditionalVersionWeights"]
    return {"AdditionalVersionWeights": {str(k): float(v) for k, v in weights.items()}}


def set_alias(
    function_name: str,
    alias_name: str,
    version: str | None = None,
    weights: dict[str, float] | None = None,
    service: str | None = "codedeploy.amazonaws.com",
) -> LambdaAlias:
    """The same change an UpdateAlias call makes, made by `service` (CodeDeploy shifting a
    deployment's traffic) or, with None, by the administrator; recorded by CloudTrail."""
    backend = get_backend(state.ACCOUNT_ID, state.REGION)
    alias = backend.get_alias(alias_name, function_name)
    alias.update(None, version, {"AdditionalVersionWeights": weights or {}})
    request = {"FunctionName": function_name, "Name": alias_name, "FunctionVersion": version,
               "RoutingConfig": {"AdditionalVersionWeights": weights or {}}}
    cloudtrail.alias_call("UpdateAlias", request, alias.to_json(), service=service, admin=service is None)
    log.info(
        "lambda alias %s:%s -> version %s weights=%s",
        function_name, alias_name, alias.function_version, json.dumps(weights or {}),
    )
    return alias


def get_alias(function_name: str, alias_name: str) -> LambdaAlias:
    return get_backend(state.ACCOUNT_ID, state.REGION).get_alias(alias_name, function_name)


def patch() -> None:
    LambdaResponse.invoke = _invoke_response  # type: ignore[assignment]
    LambdaResponse.get_alias = _get_alias  # type: ignore[assignment]
    LambdaResponse.update_alias = _update_alias  # type: ignore[assignment]
    LambdaResponse.create_alias = _create_alias  # type: ignore[assignment]
    LambdaAlias.__init__ = _alias_init  # type: ignore[method-assign]
    LambdaAlias.update = _alias_update  # type: ignore[method-assign]
