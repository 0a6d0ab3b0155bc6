"""The CloudWatch dashboard of infra/template.yaml (resource `Dashboard`).

- Every metric it graphs in rollgate's namespace is one the code emits, with exactly those
  dimension names. What the code emits is read from the sources (every EMF document is a
  chain starting at `Emf::rollgate()`, with literal `.dimension(..)` and `.metric(..)`
  names) and checked against the EMF lines the functions really write on the local AWS.
- Every AWS/Lambda and AWS/SQS metric names a function or a queue of the stack, and every
  function and dead-letter queue of the stack is graphed.
- The body is JSON after substitution and follows CloudWatch's documented structure and
  quotas (the emulator's own check, rollgate_emulator/dashboards.py).
- The deployed local stack has it (GetDashboard).

The first tests need no local AWS; the last two use the session's (tests/conftest.py)."""

from __future__ import annotations

import functools
import json
import re
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra" / "local"))
import cfn  # noqa: E402
from rollgate_emulator import dashboards  # noqa: E402

STACK = ROOT / "infra" / "template.yaml"
SOURCES = [ROOT / "shared" / "src", ROOT / "functions"]
AWS_NAMESPACES = {"AWS/Lambda": "FunctionName", "AWS/SQS": "QueueName"}


# ---------------------------------------------------------------- what the code emits

def _skip_string(text: str, i: int) -> int:
    """The index after the Rust string literal starting at text[i] == '"'."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _call_end(text: str, i: int) -> int:
    """The index after the parenthesised arguments starting at text[i] == '('."""
    depth = 0
    while True:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        depth += c == "("
        depth -= c == ")"
        i += 1
        if depth == 0:
            return i


def emf_chains(text: str) -> list[str]:
    """Each `Emf::rollgate()` and the method calls chained on it, as written."""
    chains = []
    for m in re.finditer(r"Emf::rollgate\(\)", text):
        i = m.end()
        while True:
            call = re.match(r"\s*\.\s*([a-z_]+)\s*\(", text[i:])
            if not call:
                break
            i = _call_end(text, i + call.end() - 1)
        chains.append(text[m.start():i])
    return chains


def code(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))


@functools.cache
def emitted() -> dict[str, set[frozenset[str]]]:
    """Metric name -> the dimension-name sets the code emits it with."""
    found: dict[str, set[frozenset[str]]] = {}
    for root in SOURCES:
        for rs in sorted(root.rglob("*.rs")):
            for chain in emf_chains(code(rs)):
                unnamed = re.findall(r'\.(dimension|metric|metric_opt)\(\s*(?=[^\s"])', chain)
                assert not unnamed, f"{rs}: an EMF {unnamed[0]} whose name is not a literal: {chain[:200]}"
                dims = frozenset(re.findall(r'\.dimension\(\s*"([^"]+)"', chain))
                for metric in re.findall(r'\.metric(?:_opt)?\(\s*"([^"]+)"', chain):
                    found.setdefault(metric, set()).add(dims)
    return found


def test_the_sources_are_read_as_they_emit():
    """The reader finds each function's documents (if it found nothing, every dashboard
    check below would pass for nothing)."""
    e = emitted()
    assert frozenset({"Component", "Verdict"}) in e["GateDecisions"]
    assert frozenset({"Component", "Action"}) in e["RollbackActions"]
    assert frozenset({"Component", "Action", "Status"}) in e["Decisions"]
    assert frozenset({"Component", "Outcome"}) in e["RedriveFailed"]
    # The delivery metrics: per function, and for the account without a dimension.
    for metric in ("DeploymentFrequency", "ChangeFailureRate", "RollbackRate", "TimeToRestoreP50"):
        assert e[metric] == {frozenset({"Function"}), frozenset()}, metric
    chains = emf_chains('x = Emf::rollgate()\n  .dimension("A", f(")", g()))\n  .metric("M", 1.0, "Count");\n'
                        'y.metric("Other", 1.0, "Count")')
    assert chains == ['Emf::rollgate()\n  .dimension("A", f(")", g()))\n  .metric("M", 1.0, "Count")']


# ---------------------------------------------------------------- the dashboard, offline

@functools.cache
def expanded(params: tuple = ()) -> dict:
    return cfn.expand_sam(cfn.load(STACK), dict(params))


def resolver(template: dict, stack_name: str, region: str, params: dict) -> cfn.Resolver:
    """Refs and GetAtts as CloudFormation resolves them for the resources the dashboard
    names: a function's Ref is its name, a queue's QueueName its name, a dashboard's Ref
    its name."""
    names = {"AWS::Lambda::Function": "FunctionName", "AWS::SQS::Queue": "QueueName",
             "AWS::CloudWatch::Dashboard": "DashboardName"}

    def name_of(lid: str) -> str:
        res = template["Resources"][lid]
        if res["Type"] not in names:
            return f"<{lid}>"
        return r.resolve(res["Properties"][names[res["Type"]]])

    def getatt(lid: str, attribute: str) -> str:
        return name_of(lid) if attribute == "QueueName" else f"<{lid}.{attribute}>"

    r = cfn.Resolver(template, params, stack_name=stack_name, region=region, ref=name_of, getatt=getatt)
    return r


def dashboard(stack_name: str = "rollgate", region: str = "us-east-1", **params: str) -> tuple[dict, str, dict]:
    """(the body as CloudFormation would substitute it, the dashboard's name, the stack's
    functions and queues by logical id)."""
    t = expanded(tuple(sorted(params.items())))
    r = resolver(t, stack_name, region, params)
    props = t["Resources"]["Dashboard"]["Properties"]
    named = {lid: (res["Type"], r.ref(lid)) for lid, res in t["Resources"].items()
             if res["Type"] in ("AWS::Lambda::Function", "AWS::SQS::Queue")}
    return json.loads(r.resolve(props["DashboardBody"])), r.resolve(props["DashboardName"]), named


SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*([^']*)'")


def graphed(body: dict) -> list[tuple[str, str, str, frozenset[str], dict]]:
    """(widget title, namespace, metric, dimension names, dimension values) for every
    metric of every metric widget; a SEARCH stands for the metrics its schema matches
    (its dimension names, no values)."""
    out = []
    for w in body["widgets"]:
        if w["type"] != "metric":
            continue
        title, previous = w["properties"].get("title", ""), []
        for entry in w["properties"]["metrics"]:
            opts = entry[-1] if isinstance(entry[-1], dict) else {}
            head = entry[:-1] if opts else entry
            if not head:
                found = SEARCH.findall(opts["expression"])
                assert found, f"{title}: an expression that is not a SEARCH: {opts['expression']}"
                for schema, terms in found:
                    ns, *dims = [part.strip().strip('"') for part in schema.split(",")]
                    metric = re.fullmatch(r'MetricName="([^"]+)"', terms.strip())
                    assert metric, f"{title}: a SEARCH not for one exact metric name: {terms}"
                    out.append((title, ns, metric.group(1), frozenset(dims), {}))
                continue
            # "." repeats what the previous entry has at that position.
            head = [previous[i] if v == "." else v for i, v in enumerate(head)]
            previous = head
            ns, metric, *pairs = head
            values = dict(zip(pairs[::2], pairs[1::2]))
            out.append((title, ns, metric, frozenset(values), values))
    return out


def test_every_rollgate_metric_graphed_is_emitted_with_exactly_those_dimensions():
    body, _, _ = dashboard()
    ours = [g for g in graphed(body) if g[1] not in AWS_NAMESPACES]
    assert len(ours) >= 15
    wrong = [(title, metric, sorted(dims), sorted(map(sorted, emitted().get(metric, set()))))
             for title, _, metric, dims, _ in ours if dims not in emitted().get(metric, set())]
    assert not wrong, f"graphed but not emitted so (widget, metric, dimensions, emitted with): {wrong}"


def test_the_issues_graphs_are_all_there():
    body, _, _ = dashboard()
    shown = {(m, dims) for _, _, m, dims, _ in graphed(body)}
    gates = frozenset({"Component", "Verdict"})
    rollback = frozenset({"Component", "Action"})
    redrive = frozenset({"Component", "Outcome"})
    wanted = {("GateDecisions", gates), ("RollbackActions", rollback), ("RollbackErrors", rollback),
              ("RedriveMoved", redrive), ("RedriveFailed", redrive),
              ("Decisions", frozenset({"Component", "Action", "Status"})),
              ("Errors", frozenset({"FunctionName"})), ("Throttles", frozenset({"FunctionName"})),
              ("ApproximateNumberOfMessagesVisible", frozenset({"QueueName"}))}
    for metric in ("DeploymentFrequency", "ChangeFailureRate", "RollbackRate", "TimeToRestoreP50",
                   "TimeToRestoreP90"):
        wanted |= {(metric, frozenset({"Function"})), (metric, frozenset())}
    assert wanted <= shown, sorted(wanted - shown)


def test_the_namespace_is_the_parameter_the_functions_get():
    body, _, _ = dashboard(MetricsNamespace="Team/Releases")
    assert {ns for _, ns, *_ in graphed(body)} == {"Team/Releases", *AWS_NAMESPACES}
    t = expanded((("MetricsNamespace", "Team/Releases"),))
    r = resolver(t, "rollgate", "us-east-1", {"MetricsNamespace": "Team/Releases"})
    for lid, res in t["Resources"].items():
        if res["Type"] == "AWS::Lambda::Function":
            env = r.resolve(res["Properties"]["Environment"]["Variables"])
            assert env["ROLLGATE_METRICS_NAMESPACE"] == "Team/Releases", lid
    # The default is the code's (shared/src/config.rs DEFAULT_METRICS_NAMESPACE).
    default = re.search(r'DEFAULT_METRICS_NAMESPACE: &str = "([^"]+)"', (ROOT / "shared/src/config.rs").read_text())
    assert cfn.load(STACK)["Parameters"]["MetricsNamespace"]["Default"] == default.group(1)
    pattern = re.compile(cfn.load(STACK)["Parameters"]["MetricsNamespace"]["AllowedPattern"])
    assert pattern.match("Team/Releases") and pattern.match("Rollgate")
    assert not pattern.match("AWS/Lambda") and not pattern.match('quo"te') and not pattern.match("a" * 256)


def test_every_aws_metric_names_a_resource_of_the_stack_and_every_one_is_graphed():
    body, _, named = dashboard(stack_name="team-rollgate")
    functions = {name for type_, name in named.values() if type_ == "AWS::Lambda::Function"}
    queues = {name for type_, name in named.values() if type_ == "AWS::SQS::Queue"}
    assert len(functions) >= 5 and len(queues) >= 7, named
    assert all(name.startswith("team-rollgate-") or "_team-rollgate-" in name for name in functions | queues)
    seen: dict[tuple[str, str], set[str]] = {}
    for title, ns, metric, dims, values in graphed(body):
        if ns not in AWS_NAMESPACES:
            continue
        assert dims == {AWS_NAMESPACES[ns]}, (title, metric, dims)
        value = values[AWS_NAMESPACES[ns]]
        assert value in (functions if ns == "AWS/Lambda" else queues), f"{title}: {metric} of {value}, not the stack's"
        seen.setdefault((ns, metric), set()).add(value)
    assert seen == {("AWS/Lambda", "Errors"): functions, ("AWS/Lambda", "Throttles"): functions,
                    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): queues}


def test_the_body_follows_cloudwatchs_documented_structure_in_the_stacks_region():
    body, name, _ = dashboard(stack_name="x" * 36, region="eu-west-2")
    assert dashboards.problems(body) == []
    # Dashboards are global to the account: the region keeps two regions' apart.
    assert name == "x" * 36 + "-eu-west-2" and dashboards.NAME.match(name)
    cells: dict[tuple[int, int], str] = {}
    for w in body["widgets"]:
        assert {"x", "y", "width", "height"} <= set(w), w
        if w["type"] == "metric":
            assert w["properties"]["region"] == "eu-west-2"
            assert w["properties"].get("title"), w
            for entry in w["properties"]["metrics"]:
                if isinstance(entry[-1], dict) and "id" in entry[-1]:
                    assert re.fullmatch(r"[a-z][A-Za-z0-9_]*", entry[-1]["id"])
        assert w["x"] + w["width"] <= 24
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, f"widgets overlap at {(x, y)}: {cells[(x, y)]} and {w}"
                cells[(x, y)] = w["properties"].get("title", w["type"])
    # Each metric widget's expressions have distinct ids.
    for w in body["widgets"]:
        ids = [e[-1]["id"] for e in w["properties"].get("metrics", []) if isinstance(e[-1], dict) and "id" in e[-1]]
        assert len(ids) == len(set(ids)), w


def test_the_check_would_refuse_a_broken_dashboard():
    """The structure check above can fail: a widget one column too wide and a metric
    widget without its region are problems."""
    body, _, _ = dashboard()
    body["widgets"][1]["width"] = 25
    del body["widgets"][2]["properties"]["region"]
    assert [p for p, _ in dashboards.problems(body)] == ["/widgets/1/width", "/widgets/2/properties"]


# ---------------------------------------------------------------- on the local AWS

def emf_lines(log: Path) -> list[dict]:
    """The EMF documents among the lines the functions wrote (cargo lambda watch's log)."""
    docs = []
    for line in log.read_text(errors="replace").splitlines():
        if '"_aws"' not in line:
            continue
        start = line.find('{"')
        while start >= 0:
            try:
                doc = json.loads(line[start:])
            except ValueError:
                start = line.find('{"', start + 1)
                continue
            if isinstance(doc, dict) and "_aws" in doc:
                docs.append(doc)
            break
    return docs


def test_the_deployed_stack_has_the_dashboard(stack):
    from support.helpers import STACK_NAME

    body, name, _ = dashboard(stack_name=STACK_NAME)
    got = stack.client("cloudwatch").get_dashboard(DashboardName=name)
    assert json.loads(got["DashboardBody"]) == body
    outputs = stack.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["Outputs"]
    assert {o["OutputKey"]: o["OutputValue"] for o in outputs}["DashboardName"] == name


def test_what_the_functions_write_is_what_the_sources_say(stack):
    """Real EMF lines of the session (one redrive at least, made here) name only metrics
    the sources emit, with the same dimension names, in the stack's namespace."""
    from support.helpers import STACK_FUNCTIONS

    sqs = stack.client("sqs")
    base = f"redrive-dash-{uuid.uuid4().hex[:6]}"
    dlq = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=base, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    out = stack.client("lambda").invoke(FunctionName=STACK_FUNCTIONS["dlq-redrive"],
                                        Payload=json.dumps({"source": dlq}).encode())
    report = json.loads(out["Payload"].read())
    assert not out.get("FunctionError") and report["moved"] == 1, report

    docs = emf_lines(stack.log_dir / "watch.log")
    seen = {(cw["Namespace"], m["Name"], frozenset(dims))
            for doc in docs for cw in doc["_aws"]["CloudWatchMetrics"]
            for dims in cw["Dimensions"] for m in cw["Metrics"]}
    assert ("Rollgate", "RedriveMoved", frozenset({"Component", "Outcome"})) in seen, sorted(seen)[:20]
    unknown = sorted((ns, metric, sorted(dims)) for ns, metric, dims in seen
                     if ns != "Rollgate" or dims not in emitted().get(metric, set()))
    assert not unknown, f"written by the functions, not found in the sources: {unknown}"


def test_the_hourly_schedule_emits_the_account_figures_the_cli_computes(stack):
    """The stack's schedule rule targets alarm-rollback; the event it sends (the published
    shape, tests/fixtures/samples) makes it read every release of the ledger in one
    paginated Scan (IAM deciding it) and emit the account's document, which the dashboard's
    "Delivery, whole account" widget graphs: the same figures `rollgate report` gives."""
    from support.helpers import STACK_FUNCTIONS, STACK_NAME, make_app
    from test_alarm_rollback import released
    from test_cli import cli_as, operator_session

    events = stack.client("events")
    rule = events.describe_rule(Name=f"{STACK_NAME}-delivery-summary")
    assert rule["ScheduleExpression"] == "rate(1 hour)" and rule["State"] == "ENABLED", rule
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    function = STACK_FUNCTIONS["alarm-rollback"]
    assert target["Arn"].endswith(f":function:{function}"), target

    released(stack, make_app(stack), ended_minutes_ago=5)
    event = json.loads((ROOT / "tests/fixtures/samples/eventbridge-scheduled-event.json").read_text())
    event["resources"] = [rule["Arn"]]
    out = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    body = json.loads(out["Payload"].read())
    assert not out.get("FunctionError"), body
    (result,) = body["results"]
    assert result["schedule"] == rule["Arn"]
    summary = result["delivery"]

    # The same figures through the CLI's read path, as a reader (the read policy only).
    reader = cli_as(stack, operator_session(stack, ("OperatorsReadPolicy",)))
    report = json.loads(reader("report", "--json").stdout)
    assert summary["account"]["counts"]["releases"] >= 1
    assert summary["account"]["counts"] == report["account"]["counts"], (summary["account"], report["account"])
    assert sorted(f["function"] for f in summary["functions"]) == sorted(f["function"] for f in report["functions"])

    releases = summary["account"]["counts"]["releases"]
    account_docs = [doc for doc in emf_lines(stack.log_dir / "watch.log")
                    for cw in doc["_aws"]["CloudWatchMetrics"]
                    if cw["Dimensions"] in ([], [[]]) and any(m["Name"] == "DeploymentFrequency" for m in cw["Metrics"])]
    assert account_docs, "no account document was written"
    assert account_docs[-1]["Releases"] == releases, account_docs[-1]
