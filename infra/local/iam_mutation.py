#!/usr/bin/env python3
"""The IAM mutation run (`make iam-mutation`): every grant of infra/template.yaml must be
needed by a test, shown by taking it away and watching a test fail.

1. Record: the integration suite runs once with the local AWS recording each
   authorisation of a call made with a key it issued (a function's, or a session of a
   role: the CLI's tests run as one holding the operators' managed policies): role,
   action, resource, the statements that allowed it, and the test that was running
   (rollgate_emulator/iam.py).
2. Mutate: for each Allow statement of each role and of each managed policy, and each
   action in it, the tests whose calls only that statement allowed are run again with
   that action taken out of the statement (ROLLGATE_EMU_IAM_DROP: a role's statements
   by the role's name, a managed policy's by the policy's name). The grant is needed
   when one of them fails.
3. Write docs/iam-mutation.json and the table in docs/reliability.md between its markers.

The statements Lambda itself uses on a function's behalf (`Logs`: the runtime's log
stream; `OwnDeadLetterQueue`: failed asynchronous events) are not called by rollgate's
code and cannot be shown by its tests: docs/deploy.md justifies them.

    python infra/local/iam_mutation.py [--record FILE] [--tests-per-grant N]
        [--only-missing] [--only ROLE_OR_POLICY ...] [pytest paths of the recording run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402

ROLES = ("PreTrafficRole", "PostTrafficRole", "AlarmRollbackRole", "DlqRedriveRole", "RolloutRole")
OWN_TESTS = {"PreTrafficRole": "tests/test_pre_traffic.py", "PostTrafficRole": "tests/test_post_traffic.py",
             "AlarmRollbackRole": "tests/test_alarm_rollback.py", "DlqRedriveRole": "tests/test_dlq_redrive.py",
             "RolloutRole": "tests/test_rollout.py"}
LAMBDA_ITSELF = ("Logs", "OwnDeadLetterQueue")
OUT = ROOT / "docs" / "iam-mutation.json"
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- iam-mutation:start -->", "<!-- iam-mutation:end -->"


# The operators' managed policies (the CLI's tests run as sessions of roles that hold
# them, tests/test_cli.py). CloudFormation names one `<stack>-<LogicalId>-<suffix>`: its
# statements are dropped, and found in the recording, by that name, whatever role holds it.
MANAGED = ("OperatorsReadPolicy", "OperatorsActPolicy")
OWN_TESTS.update({p: "tests/test_cli.py" for p in MANAGED})


def grants() -> list[tuple[str, str, str]]:
    """(role or managed policy logical id, Sid, action) of every Allow the code is
    responsible for."""
    template = cfn.load(ROOT / "infra" / "template.yaml")
    out = []
    documents = [(role, policy["PolicyDocument"]) for role in ROLES
                 for policy in template["Resources"][role]["Properties"]["Policies"]]
    documents += [(p, template["Resources"][p]["Properties"]["PolicyDocument"]) for p in MANAGED]
    for role, document in documents:
        for st in document["Statement"]:
            st = st["Fn::If"][1] if "Fn::If" in st else st  # as if its condition held
            if st["Effect"] != "Allow" or st["Sid"] in LAMBDA_ITSELF:
                continue
            for action in st["Action"] if isinstance(st["Action"], list) else [st["Action"]]:
                out.append((role, st["Sid"], action))
    return out


def pytest(args: list[str], env: dict[str, str], log: Path) -> int:
    with open(log, "w") as out:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT).returncode


def denied(action: str) -> bool:
    needle = f"is not authorized to perform: {action} "
    return any(needle in log.read_text(errors="replace")
               for log in (ROOT / "target" / "test-logs").rglob("emulator.log"))


def record(path: Path, logs: Path, tests: list[str]) -> None:
    path.unlink(missing_ok=True)
    started = time.monotonic()
    rc = pytest(tests, {"ROLLGATE_EMU_IAM_RECORD": "1", "ROLLGATE_IAM_RECORD_FILE": str(path)},
                logs / "record.log")
    print(f"recording run: exit {rc} in {time.monotonic() - started:.0f} s ({path})")
    if rc != 0:
        sys.exit(f"the recording run must pass first: see {logs / 'record.log'}")


def named(logical_id: str, name: str) -> bool:
    """Whether CloudFormation's physical `name` is that of `logical_id`."""
    return f"-{logical_id}-" in f"-{name}-"


def only_by(call: dict, owner: str, sid: str) -> bool:
    """Whether statement `sid` of `owner` (a role's logical id: its inline policies; a
    managed policy's: that policy) alone allowed the recorded call."""
    allowing = [a.rsplit("/", 1) for a in call["allowedBy"]]
    if owner in MANAGED:
        return bool(allowing) and all(named(owner, policy) and s == sid for policy, s in allowing)
    return named(owner, call["role"]) and {s for _, s in allowing} == {sid}


def candidates(records: list[dict], role: str, sid: str, action: str) -> list[str]:
    """Tests during which a call for `action` was allowed by `sid` of `role` (or of the
    managed policy) alone."""
    counts: dict[str, int] = {}
    for r in records:
        if not r["allowed"] or r["action"].lower() != action.lower():
            continue
        if only_by(r, role, sid) and r["test"]:
            counts[r["test"]] = counts.get(r["test"], 0) + 1
    # The function's own test module first (its tests check what it does, where another
    # module's test may only need it to pass through), then the shared world's modules
    # (those with their own world are slow to start), then by how often it was asked.
    own = OWN_TESTS.get(role, "")
    own_world = ("test_faults.py", "test_hostile_inputs.py", "test_alarm_rollback_dry_run.py")
    return sorted(counts, key=lambda t: (own not in t, any(m in t for m in own_world), -counts[t], t))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, default=ROOT / "target" / "iam" / "record.jsonl",
                        help="reuse this recording if it exists (delete it to record again)")
    parser.add_argument("--tests-per-grant", type=int, default=3)
    parser.add_argument("--only-missing", action="store_true",
                        help="keep the shown grants of docs/iam-mutation.json; try only the others")
    parser.add_argument("--only", action="append", default=[], metavar="ROLE_OR_POLICY",
                        help="try the grants of this role or managed policy (logical id; repeatable) "
                             "even if shown; every other grant keeps docs/iam-mutation.json's result "
                             "(one it has none for is tried)")
    parser.add_argument("tests", nargs="*", default=["tests"],
                        help="what the recording run runs (default: the whole integration suite)")
    args = parser.parse_args()
    owners = {role for role, _, _ in grants()}
    if set(args.only) - owners:
        parser.error(f"--only: no role or managed policy {sorted(set(args.only) - owners)} (have {sorted(owners)})")
    logs = ROOT / "target" / "iam"
    logs.mkdir(parents=True, exist_ok=True)
    if not args.record.exists():
        record(args.record, logs, args.tests)
    records = [json.loads(line) for line in args.record.read_text().splitlines() if line.strip()]
    kept = {}
    if (args.only_missing or args.only) and OUT.exists():
        previous = json.loads(OUT.read_text())
        kept = {(r["role"], r["sid"], r["action"]): r for r in previous
                if (r["fails"] or not args.only_missing) and r["role"] not in args.only}
    results = []
    for role, sid, action in grants():
        if (role, sid, action) in kept:
            results.append(kept[(role, sid, action)])
            continue
        tried = candidates(records, role, sid, action)[: args.tests_per_grant]
        failing = []
        for test in tried:
            log = logs / f"{role}-{sid}-{action.replace(':', '_')}.log"
            rc = pytest([test], {"ROLLGATE_EMU_IAM_DROP": f"*-{role}-*:{sid}:{action}"}, log)
            # A failure counts only when the local AWS did deny the action in that run.
            if rc != 0 and denied(action):
                failing.append(test)
                break
        results.append({"role": role, "sid": sid, "action": action, "tried": tried, "fails": failing})
        print(f"{role:18} {sid:28} {action:45} {'needed by ' + failing[0] if failing else 'NOT SHOWN'}")
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    write_table(results)
    return 0 if all(r["fails"] for r in results) else 1


def write_table(results: list[dict]) -> None:
    rows = ["| role | statement | action | a test that fails without it |", "|---|---|---|---|"]
    for r in results:
        shown = f"`{r['fails'][0]}`" if r["fails"] else "**none** (tried: " + (", ".join(r["tried"]) or "no test calls it") + ")"
        rows.append(f"| {r['role']} | {r['sid']} | `{r['action']}` | {shown} |")
    text = DOC.read_text()
    if START in text:
        head, rest = text.split(START, 1)
        text = head + START + "\n" + "\n".join(rows) + "\n" + END + rest.split(END, 1)[1]
    else:
        text += f"\n{START}\n" + "\n".join(rows) + f"\n{END}\n"
    DOC.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
