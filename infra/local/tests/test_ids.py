"""The emulator hands out ids shaped like AWS's (rollgate_emulator/ids.py names each
source): lengths and alphabets that broke rollgate on AWS must break it here first."""

from __future__ import annotations

import base64
import json
import re

from test_codedeploy import deploy, setup, wait_final  # noqa: F401 - the fixture is used

B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def test_hook_execution_ids_are_300_character_base64_tokens(aws, fake_watch, setup):  # noqa: F811
    """As the real event published with aws-lambda-rust-runtime's lambda-events fixtures:
    longer than 256 characters (the limit that once refused every real release)."""
    seen = []

    def hook(payload, context):
        seen.append(payload["LifecycleEventHookExecutionId"])
        aws.codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=payload["DeploymentId"],
            lifecycleEventHookExecutionId=payload["LifecycleEventHookExecutionId"], status="Succeeded")
        return 200, None

    setup()
    fake_watch.handlers["pre-hook"] = hook
    fake_watch.handlers["post-hook"] = hook
    dep = deploy(aws)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", dep), dep
    final = wait_final(aws, dep)
    assert final["status"] == "Succeeded", final.get("errorInformation")
    assert len(seen) == 2 and len(set(seen)) == 2
    for token in seen:
        assert len(token) == 300 and B64.fullmatch(token), token
        inner = json.loads(base64.b64decode(token))
        assert set(inner) == {"encryptedData", "ivParameterSpec", "materialSetSerial"}


def test_receipt_handles_are_long_opaque_tokens_and_message_ids_uuids(aws):
    url = aws.sqs.create_queue(QueueName="ids")["QueueUrl"]
    aws.sqs.send_message(QueueUrl=url, MessageBody="x")
    m = aws.sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert m["ReceiptHandle"].startswith("AQEB") and len(m["ReceiptHandle"]) > 256
    assert B64.fullmatch(m["ReceiptHandle"]), m["ReceiptHandle"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", m["MessageId"])
    # The long handle works as a handle.
    aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert aws.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_alias_revision_ids_are_uuids(aws):
    from conftest import make_function
    make_function(aws, "rev", versions=2)
    rev = aws.lam.get_alias(FunctionName="rev", Name="live")["RevisionId"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", rev), rev
