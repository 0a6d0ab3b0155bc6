"""Requests are checked against AWS's own API models (botocore's `service-2.json`, the
newest version of each service) before moto sees them, as AWS's front end does: a value
too long or too short, off its pattern or its enum, a number out of range, a list with
too many items, or a required member missing, is refused with the service's validation
error, and nothing is done. moto checks almost none of it, so without this a request AWS
would refuse passes here.

Which error: services on AWS's JSON and REST-JSON protocols (CodeDeploy, SSM, DynamoDB,
SQS, Lambda) answer `ValidationException` (HTTP 400, "1 validation error detected: Value
... at '...' failed to satisfy constraint: ..."); the query-protocol services (SNS,
CloudWatch, also when CloudWatch is called over RPCv2-CBOR) answer `ValidationError`.

What is read of a request: the JSON body (X-Amz-Target services), the CBOR body
(CloudWatch), URI labels, query string and JSON body (Lambda's REST-JSON, matched against
the model's `requestUri`), and the flat form parameters of query requests (top-level
members only: nested query structures are not decoded, only known to be present). A pattern must match the whole
value, as AWS's services apply them (Lambda refuses `my function` with "Member must
satisfy regular expression pattern"), although Smithy's models leave them unanchored.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from . import faults
from .state import log

# X-Amz-Target prefixes and CBOR service ids of the services rollgate calls.
TARGETS = {"CodeDeploy_20141006": "codedeploy", "AmazonSSM": "ssm", "DynamoDB_20120810": "dynamodb",
           "AmazonSQS": "sqs", "GraniteServiceVersion20100801": "cloudwatch", "AWSEvents": "events"}
SIGNING = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")
QUERY_PROTOCOL = {"sns", "cloudwatch"}
# Stands for a query member given in nested form: present, and not checked further.
NESTED = object()
_lock = threading.Lock()


@lru_cache(maxsize=None)
def model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _fail(path: str, value: Any, constraint: str) -> str:
    shown = value if isinstance(value, (int, float)) else str(value)
    if isinstance(shown, str) and len(shown) > 64:
        shown = shown[:64] + "..."
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


def _length(meta: dict[str, Any], value: Any, path: str, errors: list[str]) -> None:
    """The model's `min`/`max` on a string's or a list's length."""
    if "min" in meta and len(value) < meta["min"]:
        errors.append(_fail(path, value, f"Member must have length greater than or equal to {meta['min']}"))
    if "max" in meta and len(value) > meta["max"]:
        errors.append(_fail(path, value, f"Member must have length less than or equal to {meta['max']}"))


def check(shape, value: Any, path: str, errors: list[str]) -> None:
    """Append what is wrong with `value` against `shape` (a botocore Shape)."""
    if value is None:
        return
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append(_fail(f"{path}.{name}" if path else name, "null", "Member must not be null"))
        for name, member in shape.members.items():
            if name in value:
                check(member, value[name], f"{path}.{name}" if path else name, errors)
    elif kind == "list":
        if not isinstance(value, list):
            return
        _length(meta, value, path, errors)
        for i, item in enumerate(value):
            check(shape.member, item, f"{path}.{i + 1}", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            return
        if "max" in meta and len(value) > meta["max"]:
            errors.append(_fail(path, value, f"Member must have length less than or equal to {meta['max']}"))
        for k, v in value.items():
            check(shape.key, k, f"{path}.key", errors)
            check(shape.value, v, f"{path}.{k}", errors)
    elif kind == "string":
        if not isinstance(value, str):
            return
        _length(meta, value, path, errors)
        if shape.enum and value not in shape.enum:
            errors.append(_fail(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"))
        pattern = meta.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            errors.append(_fail(path, value, f"Member must satisfy regular expression pattern: {pattern}"))
    elif kind in ("integer", "long", "float", "double"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if "min" in meta and number < meta["min"]:
            errors.append(_fail(path, value, f"Member must have value greater than or equal to {meta['min']}"))
        if "max" in meta and number > meta["max"]:
            errors.append(_fail(path, value, f"Member must have value less than or equal to {meta['max']}"))


@lru_cache(maxsize=None)
def _pattern(pattern: str):
    """Compiled with `regex` (pinned in requirements.txt), which reads the Java-style
    classes AWS's models use (`\\p{L}`...); a pattern it cannot read is not checked."""
    import regex

    try:
        return regex.compile(pattern)
    except regex.error:
        log.info("validation: pattern %r not checked", pattern)
        return None


def _rest_params(service: str, operation: str, environ: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    op = model(service).operation_model(operation)
    if op.input_shape is None:
        return {}
    uri = op.http.get("requestUri", "/").split("?", 1)[0]
    names = re.findall(r"\{([^}+]+)\+?\}", uri)
    pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", "(.+)", re.escape(uri))
    pattern = re.sub(r"\\\{[^}]+?\\\}", "([^/]+)", pattern)
    m = re.fullmatch(pattern.rstrip("/") + "/?", environ.get("PATH_INFO", ""))
    if not m:
        return None
    labels = {n: unquote(v) for n, v in zip(names, m.groups())}
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    params: dict[str, Any] = {}
    payload = op.input_shape.serialization.get("payload")
    try:
        document = json.loads(body) if body and not payload else {}
    except ValueError:
        document = {}
    for name, member in op.input_shape.members.items():
        where, wire = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "uri" and wire in labels:
            params[name] = labels[wire]
        elif where == "querystring" and wire in query:
            params[name] = query[wire]
        elif where is None and name in document:
            params[name] = document[name]
    return params


def params_of(environ: dict[str, Any], body: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(service, operation, input) of a request of a service this module knows."""
    protocol = faults.protocol_of(environ)
    operation = faults.operation_of(environ, body)
    if not operation:
        return None
    if protocol == "json":
        service = TARGETS.get(environ["HTTP_X_AMZ_TARGET"].rsplit(".", 1)[0])
        try:
            return (service, operation, json.loads(body or b"{}")) if service else None
        except ValueError:
            return None
    if protocol == "cbor":
        from . import cbor

        service = TARGETS.get(environ.get("PATH_INFO", "").split("/")[2])
        try:
            return (service, operation, cbor.loads(body) if body else {}) if service else None
        except Exception:  # noqa: BLE001 - an undecodable body is moto's to refuse
            return None
    signed = SIGNING.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = signed.group(1) if signed else None
    if protocol == "query" and service in QUERY_PROTOCOL:
        form = parse_qs(body.decode(errors="replace")) if body else {}
        form.update(parse_qs(environ.get("QUERY_STRING", "")))
        params: dict[str, Any] = {k: v[0] for k, v in form.items()
                                  if "." not in k and k not in ("Action", "Version")}
        # A nested member (`Entries.member.1.Id`) is not decoded, but it is there: a
        # required list or map given that way is not missing.
        for k in form:
            if "." in k:
                params.setdefault(k.split(".", 1)[0], NESTED)
        return service, operation, params
    if service == "s3":
        s3 = faults.s3_request(environ)
        return (service, s3[0], s3[1]) if s3 else None
    if protocol == "rest-json" and service in ("lambda", "scheduler"):
        params = _rest_params(service, operation, environ, body)
        return (service, operation, params) if params is not None else None
    return None


# Where AWS's documentation, not the model, says what the service accepts. SQS documents
# ReceiveMessage's deprecated `AttributeNames` as taking message system attribute names
# (ApproximateReceiveCount, SentTimestamp...), though the model types it with the queue
# attribute enum: AWS accepts them, so the enum is not applied there.
ENUM_EXEMPT = {("sqs", "ReceiveMessage", "AttributeNames")}


def problems(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    try:
        shape = model(service).operation_model(operation).input_shape
    except Exception:  # noqa: BLE001 - an operation the model does not have is moto's
        return []
    errors: list[str] = []
    if shape is not None:
        check(shape, params, "", errors)
    exempt = [m for (svc, op, m) in ENUM_EXEMPT if (svc, op) == (service, operation)]
    return [e for e in errors
            if not (any(f"at '{m}." in e for m in exempt) and "enum value set" in e)]


def refusal(service: str, errors: list[str], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    count = len(errors)
    message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors)
    code = "ValidationError" if service in QUERY_PROTOCOL else "ValidationException"
    fault = {"code": code, "message": message, "status": 400}
    status, headers, data = faults.error_response(fault, faults.protocol_of(environ),
                                                  environ.get("CONTENT_TYPE") or None)
    headers = [(k, "validation" if v == "injected-fault" else v) for k, v in headers]
    return "400 Bad Request", headers, data.replace(b"injected-fault", b"validation")


# Where a request's (service, operation, input) is kept once read, for the layers after
# this one (iam.py) to use instead of reading the body again.
PARSED = "rollgate.request"


def read_request(environ: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """(service, operation, input) of the request, read once: the body is put back for
    moto, and the result kept in the environ under PARSED."""
    if PARSED in environ:
        return environ[PARSED]
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        found = params_of(environ, raw)
    except Exception as err:  # noqa: BLE001 - validation never breaks a call
        log.warning("validation: could not read the request: %s", err)
        found = None
    environ[PARSED] = found
    return found


def wrap(app: Callable) -> Callable:
    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_rollgate") or path.startswith("/moto-api"):
            return app(environ, start_response)
        found = read_request(environ)
        if found:
            service, operation, params = found
            errors = problems(service, operation, params) if isinstance(params, dict) else []
            if errors:
                log.info("%s.%s refused: %s", service, operation, errors[0])
                status, headers, data = refusal(service, errors, environ)
                start_response(status, headers)
                return [data]
        return app(environ, start_response)

    return middleware
