"""The report page of a deployment, as a real browser shows it.

The page is rendered by `rollgate::report_page` (through `cargo run --example report_page`)
from a synthetic fixture, tests/fixtures/report-page/rolled-back.json: a release of
orders:live from version 6 to 7 whose pre-traffic gate passed, whose traffic shifted to
10 %, and which alarm-rollback stopped on an alarm (CodeDeploy rolled the alias back). The
alarm's reason carries an injected `<script>` and `<img>`.

Headless Chromium (Debian's package, tests/support/browser.py) opens the file; the tests
read what it rendered: the deployment, the decision, the timeline in order, every check
with its expected and actual values, both versions' lines on each chart with a nonzero
size, no script run, no request but the page itself. The screenshot is kept at
target/report-page/rolled-back.png.
Run: .venv/bin/python -m pytest tests/test_report_page.py
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from support.browser import PageView, open_page

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report-page" / "rolled-back.json"
OUT = ROOT / "target" / "report-page"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(data: Path, html: Path) -> None:
    """The page as rollgate renders it (later: `rollgate report DEPLOYMENT --html FILE`)."""
    subprocess.run([os.environ.get("CARGO", "cargo"), "run", "-q", "-p", "rollgate", "--example",
                    "report_page", "--", str(data), str(html)], cwd=ROOT, check=True, timeout=1800)


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def page() -> PageView:
    html = OUT / "rolled-back.html"
    html.unlink(missing_ok=True)
    render(FIXTURE, html)
    return open_page(html, OUT / "rolled-back.png")


def shown(text: str, value):
    """A value as the page shows it: a string as it is, anything else as JSON."""
    return text if isinstance(value, str) else json.loads(text)


def test_the_deployment_and_its_decision_are_shown(page, data):
    s = page.summary
    assert s["deploymentId"] == data["deployment_id"]
    assert data["deployment_id"] in s["title"]
    decision = s["decision"]
    assert decision["outcome"] == "fail"
    assert decision["action"].startswith(data["decision"]["action"])
    assert decision["reason"] == data["decision"]["reason"]
    assert decision["box"]["height"] > 0
    assert "orders:live" in s["bodyText"] and "Stopped" in s["bodyText"]


def test_every_check_shows_its_expected_and_actual_values(page, data):
    rows = {(r["component"], r["name"]): r for r in page.summary["checks"]}
    assert len(page.summary["checks"]) == len(data["checks"])
    for item in data["checks"]:
        check = item["check"]
        row = rows[(item["component"], check["name"])]
        assert row["outcome"] == check["outcome"], check["name"]
        assert shown(row["expected"], check["expected"]) == check["expected"], check["name"]
        assert shown(row["actual"], check["actual"]) == check["actual"], check["name"]
        if check.get("detail"):
            assert check["detail"] in row["detail"]
        assert row["box"]["height"] > 0 and row["box"]["width"] > 0, check["name"]


def test_the_timeline_is_in_time_order(page, data):
    want = sorted(data["timeline"], key=lambda e: e["at_ms"])
    got = page.summary["timeline"]
    assert [(e["kind"], e["at"], e["title"]) for e in got] == \
        [(e["kind"], iso(e["at_ms"]), e["title"]) for e in want]
    kinds = [e["kind"] for e in got]
    story = [kinds.index(k) for k in ("deployment", "gate", "shift", "alarm", "stop", "rollback")]
    assert story == sorted(story), kinds
    # The fixture gives it out of order: the page sorted it.
    assert [e["at_ms"] for e in data["timeline"]] != sorted(e["at_ms"] for e in data["timeline"])
    assert all(e["box"]["height"] > 0 for e in got)


def test_each_chart_draws_both_versions(page, data):
    charts = {c["metric"]: c for c in page.summary["charts"]}
    assert list(charts) == [s["metric"] for s in data["series"]]
    drawn = [s for s in data["series"] if s["old"] and s["new"]]
    assert {s["metric"] for s in drawn} == {"error rate", "p99 latency"}
    for series in drawn:
        chart = charts[series["metric"]]
        assert chart["svg"]["width"] > 300 and chart["svg"]["height"] > 100, chart["metric"]
        lines = {line["class"]: line for line in chart["series"]}
        assert set(lines) == {"series old", "series new"}, chart["metric"]
        for which in ("old", "new"):
            line = lines[f"series {which}"]
            assert line["points"] == len(series[which]), (chart["metric"], which)
            assert line["box"]["width"] > 0 and line["box"]["height"] > 0, (chart["metric"], which)
            assert line["length"] > 0
        assert f"old: version {data['from_version']}" in chart["legend"]
        assert f"new: version {data['to_version']}" in chart["legend"]
        assert chart["xTicks"] and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in chart["xTicks"])
    empty = charts["throttles"]
    assert empty["noData"] == "no data"
    assert empty["svg"] is None and empty["series"] == []


def test_an_injected_script_stays_inert_text(page, data):
    s = page.summary
    assert s["injected"] is False
    assert s["title"] != "injected"
    for tag in ("script", "img", "iframe", "object", "embed", "link", "base", "form"):
        assert s["elements"][tag] == 0, tag
    injected = "<script>window.__rollgateInjected = true; document.title = 'injected'</script>"
    assert injected in data["decision"]["reason"]
    assert injected in s["decision"]["reason"]
    alarm = next(e for e in s["timeline"] if e["kind"] == "alarm")
    assert injected in alarm["detail"]
    assert s["bodyText"].count(injected) >= 3  # timeline, the alarm check, the decision


def test_the_page_asks_for_nothing(page):
    assert page.summary["csp"].startswith("default-src 'none';")
    assert page.requests and page.requests[0] == page.url
    assert [r for r in page.requests if r != page.url] == []
    # A blocked fetch or a script would show here as a CSP violation or a console call.
    assert page.console == []


def test_a_screenshot_is_kept(page):
    png = page.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1280
    assert height >= min(page.summary["size"]["height"], 16_000) > 900
    assert len(png) > 20_000
