"""CloudTrail management events of Lambda's alias calls, on the default EventBridge bus.

On AWS, every write call to Lambda's API is recorded by CloudTrail and, with a trail that
logs management events, delivered to the default bus as `detail-type: "AWS API Call via
CloudTrail"`, `source: "aws.lambda"`. The local AWS does the same for CreateAlias and
UpdateAlias (the calls that release a version), in the record format CloudTrail documents
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html):

- `eventName` carries Lambda's API version, as Lambda's events do (`UpdateAlias20150331`);
- `requestParameters` and `responseElements` are the call's request and answer with
  camelCase keys; a refused call has `errorCode`/`errorMessage` and no answer;
- `userIdentity` is who signed the request: a function's role as an `AssumedRole` with its
  `sessionIssuer`, the tests' own administrator as an `IAMUser`, or CodeDeploy shifting an
  alias for a deployment (its service role, `invokedBy: codedeploy.amazonaws.com`).

The caller is the access key of the request being served (set by the IAM middleware for
each request, per thread).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from . import events, state
from .state import log, records

SOURCE = "aws.lambda"
DETAIL_TYPE = "AWS API Call via CloudTrail"
API_VERSION = "20150331"
ADMIN_USER = "rollgate-local-admin"
CODEDEPLOY_ROLE = "CodeDeployServiceRole"

_current = threading.local()


def set_caller(key: str | None) -> None:
    """The access key of the request this thread serves (None: unsigned)."""
    _current.key = key


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def identity(service: str | None = None, admin: bool = False) -> dict[str, Any]:
    """`userIdentity` of the caller: a function's role, a service, or the administrator."""
    from . import iam

    account = state.ACCOUNT_ID
    if service == "codedeploy.amazonaws.com":
        role = f"arn:aws:iam::{account}:role/{CODEDEPLOY_ROLE}"
        return {"type": "AssumedRole", "principalId": f"AROACODEDEPLOYLOCAL:{service}",
                "arn": f"arn:aws:sts::{account}:assumed-role/{CODEDEPLOY_ROLE}/AWSCodeDeploy",
                "accountId": account,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": account,
                                                     "userName": CODEDEPLOY_ROLE}},
                "invokedBy": service}
    key = None if admin else getattr(_current, "key", None)
    # A key the local IAM did not issue (the tests' own) names no binary and so no role.
    roles = iam.roles_of(iam.binary_of(key)) if key else []
    if roles:
        role = roles[0]
        name = role.rsplit("/", 1)[-1]
        return {"type": "AssumedRole", "principalId": f"AROALOCAL{abs(hash(role)) % 10**12:012d}:{iam.SESSION}",
                "arn": iam.assumed_role_arn(role),
                "accountId": account, "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": account,
                                                     "userName": name},
                                   "attributes": {"mfaAuthenticated": "false"}}}
    return {"type": "IAMUser", "principalId": "AIDALOCALADMIN0000000",
            "arn": f"arn:aws:iam::{account}:user/{ADMIN_USER}", "accountId": account,
            "accessKeyId": key or "", "userName": ADMIN_USER}


def alias_call(operation: str, request: dict[str, Any], answer: dict[str, Any] | None,
               error: tuple[str, str] | None = None, service: str | None = None,
               admin: bool = False) -> None:
    """Put the CloudTrail event of one CreateAlias/UpdateAlias call; never raises."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    who = identity(service, admin)
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": stamp,
        "eventSource": "lambda.amazonaws.com",
        "eventName": f"{operation}{API_VERSION}",
        "awsRegion": state.REGION,
        "sourceIPAddress": service or "127.0.0.1",
        "userAgent": service or "rollgate-local",
        "requestParameters": _camel({k: v for k, v in request.items() if v is not None}),
        "responseElements": _camel(answer) if answer is not None else None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": state.ACCOUNT_ID,
        "eventCategory": "Management",
    }
    if error is not None:
        detail["errorCode"], detail["errorMessage"] = error
    entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Resources": [], "Detail": json.dumps(detail)}
    records.add_event({**entry, "Detail": detail})
    try:
        events.deliver(entry)
    except Exception as err:  # a missing bus or target must not break the call
        log.warning("could not put the CloudTrail event of %s: %s", operation, err)
    log.info("cloudtrail %s %s:%s by %s", detail["eventName"], request.get("FunctionName"),
             request.get("Name"), who.get("arn"))
