"""Every limit rollgate applies to a value that comes from AWS or goes to it, checked
against AWS's own API models (botocore's `service-2.json` in the venv, the newest API
version of each service), never against our emulator.

- `in`: the value comes from AWS, and rollgate refuses it past the limit. The limit must
  be no tighter than the model's: a value AWS can produce is never refused.
- `cut`: the value comes from AWS and is only carried along; rollgate cuts it past the
  limit (and marks it). No value AWS can produce is cut.
- `out`: rollgate sends the value to AWS. The limit must be no looser than the model's:
  nothing rollgate sends is refused for its size.
- `none`: the model has no limit, and neither has rollgate (the hooks' ids).

The figure on rollgate's side is read from the Rust source by a pattern, so a changed
constant is checked as it is. Where a model puts a limit in a member's documentation
rather than in `min`/`max`, the figure is read from that documentation text.
docs/reliability.md lists the same table (section "Limits checked against AWS's models").
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(botocore.__file__).parent / "data"


@cache
def model(service: str) -> dict:
    """The newest API version of a service's model."""
    newest = sorted(p for p in (DATA / service).iterdir() if p.is_dir())[-1]
    return json.loads(gzip.decompress((newest / "service-2.json.gz").read_bytes()))


def shape(service: str, path: str) -> dict:
    """`Shape` or `Shape.member`: the shape (a member resolves to its target shape)."""
    shapes = model(service)["shapes"]
    name, _, member = path.partition(".")
    if not member:
        return shapes[name]
    return shapes[shapes[name]["members"][member]["shape"]]


def documentation(service: str, path: str) -> str:
    """The documentation of `Shape.member`, or of an operation `op:Name`, as plain text."""
    m = model(service)
    if path.startswith("op:"):
        text = m["operations"][path[3:]]["documentation"]
    else:
        name, _, member = path.partition(".")
        text = m["shapes"][name]["members"][member]["documentation"]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


@dataclass(frozen=True)
class Limit:
    what: str
    file: str
    pattern: str  # one group: rollgate's figure (digits, `_` allowed, or `a * b`)
    service: str
    model_path: str
    direction: str  # in | cut | out
    doc_pattern: str | None = None  # read the model's figure from the documentation
    bound: str = "max"
    offset: int = 0  # the model's figure as rollgate must compare it (e.g. "less than 100" -> -1)

    def ours(self) -> int:
        text = (ROOT / self.file).read_text()
        m = re.search(self.pattern, text)
        assert m, f"{self.what}: pattern {self.pattern!r} not found in {self.file}"
        return int(eval(m.group(1).replace("_", ""), {}))  # noqa: S307 - digits and * only

    def theirs(self) -> int | None:
        if self.doc_pattern:
            m = re.search(self.doc_pattern, documentation(self.service, self.model_path))
            assert m, f"{self.what}: {self.doc_pattern!r} not in the documentation of {self.model_path}"
            return int(m.group(1).replace(",", "")) + self.offset
        value = shape(self.service, self.model_path).get(self.bound)
        return None if value is None else int(value) + self.offset


LIMITS = [
    # --- from AWS, refused past the limit ------------------------------------------------
    Limit("alarm name in an alarm event", "shared/src/limits.rs",
          r"ALARM_NAME_MAX_CHARS: usize = ([\d_]+)", "cloudwatch", "AlarmName", "in"),
    Limit("function name in an AppSpec (names.rs)", "shared/src/names.rs",
          r"FUNCTION_NAME_MAX_CHARS: usize = (\d+)", "lambda", "GetAliasRequest.FunctionName", "in",
          doc_pattern=r"only the function name, it is limited to (\d+) characters"),
    Limit("alias in an AppSpec (names.rs)", "shared/src/names.rs",
          r"ALIAS_MAX_CHARS: usize = (\d+)", "lambda", "GetAliasRequest.Name", "in"),
    Limit("policy document in SSM (a parameter value; SSM documents at most 8 KB, advanced tier)",
          "shared/src/policy/mod.rs", r"MAX_POLICY_BYTES: usize = ([\d_ *]+);", "ssm",
          "PutParameterRequest.Value", "in",
          doc_pattern=r"[Aa]dvanced parameters have a value limit of (\d+) KB", offset=0),
    # --- from AWS, carried along and cut ---------------------------------------------------
    Limit("alarm state reason", "shared/src/limits.rs",
          r"ALARM_STATE_REASON_MAX_CHARS: usize = ([\d_]+)", "cloudwatch", "StateReason", "cut"),
    # --- to AWS ------------------------------------------------------------------------------
    Limit("SNS message (body and attributes)", "shared/src/limits.rs",
          r"SNS_MESSAGE_MAX_BYTES: usize = ([\d_]+)", "sns", "PublishInput.Message", "out",
          doc_pattern=r"at most 256 KiB in size \(([\d,]+) bytes"),
    Limit("SNS subject", "shared/src/limits.rs",
          r"SNS_SUBJECT_MAX_CHARS: usize = ([\d_]+)", "sns", "PublishInput.Subject", "out",
          doc_pattern=r"less than (\d+) characters long", offset=-1),
    Limit("SQS FIFO MessageGroupId", "shared/src/limits.rs",
          r"SQS_FIFO_ID_MAX_CHARS: usize = ([\d_]+)", "sqs", "SendMessageBatchRequestEntry.MessageGroupId",
          "out", doc_pattern=r"length of MessageGroupId is (\d+) characters"),
    Limit("SQS FIFO MessageDeduplicationId", "shared/src/limits.rs",
          r"SQS_FIFO_ID_MAX_CHARS: usize = ([\d_]+)", "sqs",
          "SendMessageBatchRequestEntry.MessageDeduplicationId", "out",
          doc_pattern=r"length of MessageDeduplicationId is (\d+) characters"),
    Limit("SQS message (body and attributes), redrive provenance", "shared/src/redrive/message.rs",
          r"MAX_MESSAGE_BYTES: usize = ([\d_ *]+);", "sqs", "SendMessageRequest.MessageBody", "out",
          doc_pattern=r"maximum size is 1 MiB or ([\d,]+) bytes"),
    Limit("SQS SendMessageBatch total", "shared/src/redrive/message.rs",
          r"MAX_BATCH_BYTES: usize = ([\d_ *]+);", "sqs", "op:SendMessageBatch", "out",
          doc_pattern=r"are both 1 MiB ([\d,]+) bytes"),
    Limit("SQS SendMessageBatch entries", "shared/src/redrive/engine.rs",
          r"const BATCH: i32 = (\d+);", "sqs", "op:SendMessageBatch", "out",
          doc_pattern=r"send up to (\d+) messages"),
    Limit("SQS ReceiveMessage MaxNumberOfMessages", "shared/src/redrive/engine.rs",
          r"const BATCH: i32 = (\d+);", "sqs", "ReceiveMessageRequest.MaxNumberOfMessages", "out",
          doc_pattern=r"Valid values: 1 to (\d+)"),
    Limit("SQS queue name in a redrive request (names.rs)", "shared/src/names.rs",
          r"QUEUE_NAME_MAX_CHARS: usize = (\d+)", "sqs", "GetQueueUrlRequest.QueueName",
          "out", doc_pattern=r"can be up to (\d+) characters long"),
    Limit("Lambda function name in a redrive request (names.rs)", "shared/src/names.rs",
          r"FUNCTION_NAME_MAX_CHARS: usize = (\d+)", "lambda",
          "InvocationRequest.FunctionName", "out",
          doc_pattern=r"only the function name, it is limited to (\d+) characters"),
    Limit("Lambda qualifier in a redrive request (names.rs)", "shared/src/names.rs",
          r"ALIAS_MAX_CHARS: usize = (\d+)", "lambda", "InvocationRequest.Qualifier", "out"),
    Limit("Lambda version in a reference (names.rs)", "shared/src/names.rs",
          r"VERSION_MAX_CHARS: usize = (\d+)", "lambda", "FunctionConfiguration.Version", "in"),
    Limit("alarm names in a post-traffic policy (DescribeAlarms)", "shared/src/policy/post_traffic.rs",
          r"alarm\.len\(\) > (\d+)", "cloudwatch", "AlarmName", "out"),
    Limit("alarms in a post-traffic policy (DescribeAlarms AlarmNames)", "shared/src/policy/post_traffic.rs",
          r"MAX_ALARMS: usize = (\d+);", "cloudwatch", "AlarmNames", "out"),
    Limit("dimension values in a post-traffic policy", "shared/src/policy/post_traffic.rs",
          r"value\.len\(\) > (\d+)", "cloudwatch", "DimensionValue", "out"),
    Limit("dimensions of one metric in a post-traffic policy", "shared/src/policy/post_traffic.rs",
          r"MAX_DIMENSIONS: usize = (\d+);", "cloudwatch", "Dimensions", "out"),
    Limit("EMF dimension values (cut)", "shared/src/limits.rs",
          r"DIMENSION_VALUE_MAX_CHARS: usize = (\d+);", "cloudwatch", "DimensionValue", "out"),
    Limit("queries of one GetMetricData", "shared/src/adapters/cloudwatch.rs",
          r"MAX_QUERIES: usize = (\d+);", "cloudwatch", "GetMetricDataInput.MetricDataQueries", "out",
          doc_pattern=r"can include as many as (\d+) MetricDataQuery"),
]

# Values AWS produces with no limit in its model: rollgate puts none on them either.
UNLIMITED = [
    ("CodeDeploy deployment id in a hook event", "codedeploy", "PutLifecycleEventHookExecutionStatusInput.deploymentId"),
    ("CodeDeploy hook execution id in a hook event", "codedeploy",
     "PutLifecycleEventHookExecutionStatusInput.lifecycleEventHookExecutionId"),
    ("AppSpec text from GetApplicationRevision", "codedeploy", "AppSpecContent.content"),
]


@pytest.mark.parametrize("limit", LIMITS, ids=lambda lim: lim.what)
def test_limit_matches_the_model(limit: Limit):
    ours, theirs = limit.ours(), limit.theirs()
    if limit.direction in ("in", "cut"):
        if limit.what.startswith("policy document"):
            theirs *= 1024  # "8 KB"
        assert theirs is not None, f"{limit.what}: the model has no {limit.bound}: rollgate must have none"
        assert ours >= theirs, f"{limit.what}: rollgate's {ours} is tighter than AWS's {theirs}"
    else:
        assert limit.direction == "out", limit
        if theirs is not None:
            assert ours <= theirs, f"{limit.what}: rollgate's {ours} is looser than AWS's {theirs}"


@pytest.mark.parametrize("what,service,path", UNLIMITED, ids=[u[0] for u in UNLIMITED])
def test_values_the_model_leaves_unbounded_are_not_bounded(what, service, path):
    s = shape(service, path)
    assert not {"max", "pattern"} & set(s), f"{what}: the model now bounds it: {s}"


def test_the_hooks_put_no_length_or_pattern_on_ids():
    """hook.rs reads both ids without a length or character rule (the old 256-character cap
    refused every real execution id, which has about 300)."""
    parse = (ROOT / "shared/src/hook.rs").read_text().split("pub fn from_value", 1)[1].split("\n    }\n", 1)[0]
    assert not re.search(r"\.len\(\) [<>]|is_control|chars\(\)\.count\(\)", parse), parse


def test_appspec_text_is_not_capped():
    text = (ROOT / "shared/src/appspec.rs").read_text()
    assert not re.search(r"content\.len\(\) >", text)


def test_every_limit_constant_in_limits_rs_is_checked():
    """A new constant in shared/src/limits.rs must come with a row here."""
    text = (ROOT / "shared/src/limits.rs").read_text()
    constants = set(re.findall(r"pub const ([A-Z_]+): usize", text))
    checked = {m for lim in LIMITS for m in re.findall(r"([A-Z_]{6,}):", lim.pattern)}
    # Rollgate's own budgets, not AWS limits: how much of a log event or attribute it uses.
    own = {"SNS_ATTRIBUTE_MAX_CHARS", "LOG_RECORD_MAX_BYTES", "LOG_EVENT_MAX_BYTES"}
    assert constants - own <= checked, constants - own - checked
    assert int(re.search(r"LOG_RECORD_MAX_BYTES: usize = (\d+) \* 1024", text).group(1)) * 1024 <= 262_144 - 26
