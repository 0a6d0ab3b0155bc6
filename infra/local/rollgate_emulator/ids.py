"""Ids shaped like the ones AWS hands out, so that the functions meet real lengths and
alphabets here rather than first in production. Each maker names its source.

- CodeDeploy `LifecycleEventHookExecutionId`: a base64 token of about 300 characters
  (standard alphabet, `+`, `/` and `=` padding); the real one in aws-lambda-rust-runtime's
  `lambda-events/src/fixtures/example-codedeploy-lifecycle-event.json` has 300 and decodes
  to `{"encryptedData": <base64>, "ivParameterSpec": <base64>, "materialSetSerial": 1}`.
  CodeDeploy's model puts no length or pattern on it.
- CodeDeploy deployment id: `d-` and 9 upper-case letters and digits (the AWS docs'
  examples, e.g. `d-A1B2C3D4E`).
- SQS `ReceiptHandle`: an opaque base64 token starting `AQEB`, a few hundred characters
  (AWS's documented examples and published Lambda SQS event samples); moto made 185
  lower-case letters.
- SQS `MessageId` and Lambda alias `RevisionId`: UUIDs (moto and the emulator already make
  those).
"""

from __future__ import annotations

import base64
import json
import secrets
import string

HOOK_EXECUTION_ID_LENGTH = 300


def hook_execution_id() -> str:
    """A 300-character token of the real one's shape and alphabet."""
    iv = base64.b64encode(secrets.token_bytes(12)).decode()
    # 107 bytes of "encrypted data" make the token 300 characters, as the real one.
    data = base64.b64encode(secrets.token_bytes(107)).decode()
    inner = json.dumps({"encryptedData": data, "ivParameterSpec": iv, "materialSetSerial": 1},
                       separators=(",", ":"))
    token = base64.b64encode(inner.encode()).decode()
    assert len(token) == HOOK_EXECUTION_ID_LENGTH, len(token)
    return token


def deployment_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "d-" + "".join(secrets.choice(alphabet) for _ in range(9))


def receipt_handle() -> str:
    """`AQEB` and base64 of random bytes: 376 characters."""
    return "AQEB" + base64.b64encode(secrets.token_bytes(279)).decode()
