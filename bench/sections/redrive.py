"""Section 3: redrive throughput (10,000 messages DLQ -> source) against a boto3
receive/send/delete loop. Runs only once functions/dlq-redrive exists."""

from __future__ import annotations

from .common import ROOT, not_ready


def run() -> dict:
    if not (ROOT / "functions" / "dlq-redrive").exists():
        return {"status": "skipped", "reason": "functions/dlq-redrive does not exist yet"}
    why = not_ready("dlq-redrive")
    if why:
        return {"status": "skipped", "reason": f"dlq-redrive is {why}"}
    return {"status": "skipped",
            "reason": "dlq-redrive exists but this bench does not drive it yet (its event shape was not settled "
                      "when the bench was written)"}
