"""The gates keep their decisions in the ledger, and the operators' CLI shows them: a real
CodeDeploy deployment through both hooks on the local AWS (IAM deciding each hook's
PutItem, which may write only the `gate#` partitions), the rows read back against what the hooks announced on SNS, then `rollgate
status`, `history` and the deployment's report page (in Chromium) with every check's
expected and actual values."""

from __future__ import annotations

import json
import math

from harness import wait_for
from support.helpers import LEDGER_TABLE, ROOT, alias_version, make_app
from test_cli import as_json, rollgate  # noqa: F401 (the CLI fixture)
from test_post_traffic import CANARY, policy, run_deployment
from traffic import HEALTHY


def kept(stack, app, dep) -> dict[str, dict]:
    """The deployment's decision rows, by component: both gates' (each hook writes its row
    just after announcing the decision)."""
    def both():
        items = stack.client("dynamodb").query(
            TableName=LEDGER_TABLE, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": {"S": f"gate#{app.name}#live"}, ":p": {"S": f"decision#{dep}#"}})
        rows = {r["component"]["S"]: r for r in items["Items"]}
        return rows if len(rows) >= 2 else None
    return wait_for(both, 15, f"both gates' decisions of {dep} in the ledger")


def same(a, b) -> bool:
    """Equal JSON values, floats within a few ULPs: the CLI reads the ledger's JSON with
    serde_json's fast float parser, which may land one ULP from Python's."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-14)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_both_gates_keep_their_decisions_and_the_cli_shows_every_check(stack, rollgate, decisions):
    from support.browser import open_page

    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": {"errors": 0.4, "latency": (40, 90)}})
    assert info["status"] == "Failed" and alias_version(stack, app) == "1", info
    announced = {c: json.loads(decisions(dep, component=c)["Message"])
                 for c in ("pre-traffic-hook", "post-traffic-hook")}
    rows = kept(stack, app, dep)
    assert set(rows) == set(announced), rows
    for component, row in rows.items():
        sns = announced[component]
        stored = json.loads(row["decision"]["S"])
        assert row["verdict"]["S"] == sns["verdict"] == stored["verdict"], (row, sns)
        assert row["reason"]["S"] == sns["reason"]
        assert row["sk"]["S"] == f"decision#{dep}#{int(row['at_ms']['N']):013d}#{component}"
        # Every check, with what was expected and what was seen, as announced.
        assert [(c["name"], c["outcome"], c["expected"], c["actual"]) for c in stored["checks"]] == \
            [(c["name"], c["outcome"], c["expected"], c["actual"]) for c in sns["checks"]], component
    assert rows["pre-traffic-hook"]["verdict"]["S"] == "Succeeded"
    assert rows["post-traffic-hook"]["verdict"]["S"] == "Failed"
    assert int(rows["pre-traffic-hook"]["at_ms"]["N"]) < int(rows["post-traffic-hook"]["at_ms"]["N"])

    # status and history: the gates' decisions among the last decisions.
    [s] = as_json(rollgate("status", f"{app.name}:live", "--json"))
    gates = [e for e in s["last_decisions"] if e["kind"] == "gate"]
    assert gates and gates[0]["summary"].startswith(f"post-traffic-hook Failed {dep} (version 1 -> 2)"), s
    history = as_json(rollgate("history", app.name, "--json"))
    assert [h["summary"].split(" ")[0] for h in history if h["kind"] == "gate"] == \
        ["post-traffic-hook", "pre-traffic-hook"], "newest first"

    # The report page: both gates' checks with their values, their moments, the decision.
    out = ROOT / "target" / "report-page"
    out.mkdir(parents=True, exist_ok=True)
    html = out / f"gates-{app.name}.html"
    data = as_json(rollgate("report", dep, "--html", str(html), "--json"))
    by_name = {(c["component"], c["check"]["name"]): c["check"] for c in data["checks"]}
    for component, sns in announced.items():
        for c in sns["checks"]:
            got = by_name[(component, c["name"])]
            assert same((got["expected"], got["actual"], got["outcome"]), (c["expected"], c["actual"], c["outcome"])), \
                (component, c["name"], got, c)
    assert data["decision"]["action"] == "stopped" and data["decision"]["component"] == "post-traffic-hook"
    assert data["decision"]["reason"].startswith("post-traffic-hook Failed: "), data["decision"]
    view = open_page(html, out / f"gates-{app.name}.png").summary
    shown = {(c["component"], c["name"]): c for c in view["checks"]}
    error_rate = shown[("post-traffic-hook", "canary.error_rate")]
    assert error_rate["outcome"] == "fail", error_rate
    sns_check = next(c for c in announced["post-traffic-hook"]["checks"] if c["name"] == "canary.error_rate")
    # The values as the page prints them (JSON; a long one cut at 1,500 characters, marked).
    for field in ("expected", "actual"):
        cell = error_rate[field]
        try:
            assert same(json.loads(cell), sns_check[field]), (field, cell)
        except json.JSONDecodeError:
            assert len(cell) >= 1_000 and json.dumps(sns_check[field], indent=2)[:200] == cell[:200], (field, cell)
    assert ("pre-traffic-hook", "config.state") in shown, sorted(shown)
    gate_titles = [e["title"] for e in view["timeline"] if e["kind"] == "gate"]
    assert gate_titles == ["pre-traffic-hook: Succeeded", "post-traffic-hook: Failed"], gate_titles
    assert view["decision"]["outcome"] == "fail" and "post-traffic-hook Failed" in view["decision"]["reason"]


def test_a_release_whose_gates_pass_reads_released(stack, rollgate):
    app = make_app(stack, policy=policy(), config=CANARY)
    dep, info = run_deployment(stack, app, {"1": HEALTHY, "2": HEALTHY})
    assert info["status"] == "Succeeded", info
    rows = kept(stack, app, dep)
    assert {c: r["verdict"]["S"] for c, r in rows.items()} == \
        {"pre-traffic-hook": "Succeeded", "post-traffic-hook": "Succeeded"}
    data = as_json(rollgate("report", dep, "--function", app.name, "--json"))
    assert data["decision"]["action"] == "released" and data["decision"]["outcome"] == "pass", data["decision"]
    assert {c["component"] for c in data["checks"]} == {"pre-traffic-hook", "post-traffic-hook"}
    # Looked for in another function's aliases only: not there.
    other = rollgate("report", dep, "--function", "no-such-function", code=3)
    assert f"no deployment {dep}" in other.stderr
