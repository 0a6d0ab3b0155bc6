"""The policy JSON Schema accepts every example policy and rejects malformed ones.

The Rust parser test `policy::tests::every_example_policy_parses` loads the same
examples, so schema, examples and parser are checked against each other.
Run: .venv/bin/python -m pytest tests/test_policy_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schema" / "policy.schema.json"
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.json"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert "minimal.json" in names
    assert len(names) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(validator, path):
    errors = list(validator.iter_errors(json.loads(path.read_text())))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_every_field_has_a_description():
    schema = json.loads(SCHEMA_PATH.read_text())
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                # Range-only refinements of a $ref'd definition inherit its descriptions.
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    if set(sub) - {"minimum", "maximum"}:
                        missing.append(f"{where}.{name}")
                walk(sub, f"{where}.{name}")
            for name, sub in node.get("$defs", {}).items():
                if "description" not in sub:
                    missing.append(f"$defs.{name}")
                walk(sub, f"$defs.{name}")

    walk(schema, "(root)")
    assert not missing, missing


VALID_SMOKE = {"name": "health"}

# (id, document, JSON path of the field the schema must complain about)
INVALID = [
    ("not-an-object", [], ""),
    ("unknown-top-level-field", {"pre_trafic": {}}, ""),
    ("version-2", {"version": 2}, "version"),
    ("version-string", {"version": "1"}, "version"),
    ("post-traffic-array", {"post_traffic": []}, "post_traffic"),
    ("post-traffic-null", {"post_traffic": None}, "post_traffic"),
    ("post-traffic-misspelt-field", {"post_traffic": {"bake_minute": 5}}, "post_traffic"),
    ("bake-minutes-46", {"post_traffic": {"bake_minutes": 46}}, "post_traffic/bake_minutes"),
    ("extend-negative", {"post_traffic": {"max_extend_minutes": -1}}, "post_traffic/max_extend_minutes"),
    ("poll-zero", {"post_traffic": {"poll_seconds": 0}}, "post_traffic/poll_seconds"),
    ("poll-301", {"post_traffic": {"poll_seconds": 301}}, "post_traffic/poll_seconds"),
    ("period-90", {"post_traffic": {"period_seconds": 90}}, "post_traffic/period_seconds"),
    ("period-2", {"post_traffic": {"period_seconds": 2}}, "post_traffic/period_seconds"),
    ("period-7200", {"post_traffic": {"period_seconds": 7200}}, "post_traffic/period_seconds"),
    ("min-invocations-negative", {"post_traffic": {"min_invocations": -1}}, "post_traffic/min_invocations"),
    ("on-no-data-maybe", {"post_traffic": {"on_no_data": "maybe"}}, "post_traffic/on_no_data"),
    ("alpha-0.9", {"post_traffic": {"alpha": 0.9}}, "post_traffic/alpha"),
    ("canary-array", {"post_traffic": {"canary": []}}, "post_traffic/canary"),
    ("canary-misspelt-field", {"post_traffic": {"canary": {"tolerance": 1}}}, "post_traffic/canary"),
    ("canary-error-increase-2", {"post_traffic": {"canary": {"max_error_rate_increase": 2}}}, "post_traffic/canary/max_error_rate_increase"),
    ("canary-latency-1001", {"post_traffic": {"canary": {"max_latency_increase_pct": 1001}}}, "post_traffic/canary/max_latency_increase_pct"),
    ("canary-min-periods-zero", {"post_traffic": {"canary": {"min_periods": 0}}}, "post_traffic/canary/min_periods"),
    ("canary-error-ratio-below-1", {"post_traffic": {"canary": {"max_error_rate_ratio": 0.5}}}, "post_traffic/canary/max_error_rate_ratio"),
    ("canary-warmup-1801", {"post_traffic": {"canary": {"warmup_seconds": 1801}}}, "post_traffic/canary/warmup_seconds"),
    ("ingestion-delay-601", {"post_traffic": {"ingestion_delay_seconds": 601}}, "post_traffic/ingestion_delay_seconds"),
    ("bake-misspelt-field", {"post_traffic": {"bake": {"max_p99": 800}}}, "post_traffic/bake"),
    ("bake-error-rate-null", {"post_traffic": {"bake": {"max_error_rate": None}}}, "post_traffic/bake/max_error_rate"),
    ("bake-p99-zero", {"post_traffic": {"bake": {"max_p99_ms": 0}}}, "post_traffic/bake/max_p99_ms"),
    ("bake-throttles-negative", {"post_traffic": {"bake": {"max_throttles": -1}}}, "post_traffic/bake/max_throttles"),
    ("alarm-duplicate", {"post_traffic": {"alarms": ["a", "a"]}}, "post_traffic/alarms"),
    ("alarm-empty", {"post_traffic": {"alarms": [""]}}, "post_traffic/alarms/0"),
    ("alarm-blank", {"post_traffic": {"alarms": ["  "]}}, "post_traffic/alarms/0"),
    ("too-many-alarms", {"post_traffic": {"alarms": [f"a{i}" for i in range(101)]}}, "post_traffic/alarms"),
    ("metric-bad-name", {"post_traffic": {"metrics": [{"name": "x y", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 1}]}}, "post_traffic/metrics/0/name"),
    ("metric-p101", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "p101", "comparison": "GreaterThanThreshold", "threshold": 1}]}}, "post_traffic/metrics/0/statistic"),
    ("metric-lowercase-sum", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "sum", "comparison": "GreaterThanThreshold", "threshold": 1}]}}, "post_traffic/metrics/0/statistic"),
    ("metric-comparison-above", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "Above", "threshold": 1}]}}, "post_traffic/metrics/0/comparison"),
    ("metric-without-threshold", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold"}]}}, "post_traffic/metrics/0"),
    ("metric-misspelt-field", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 1, "dimension": {}}]}}, "post_traffic/metrics/0"),
    ("metric-31-dimensions", {"post_traffic": {"metrics": [{"name": "x", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 1, "dimensions": {f"d{i}": "v" for i in range(31)}}]}}, "post_traffic/metrics/0/dimensions"),
    ("too-many-metrics", {"post_traffic": {"metrics": [{"name": f"m{i}", "namespace": "n", "metric_name": "m", "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 1} for i in range(21)]}}, "post_traffic/metrics"),
    ("probe-ftp", {"post_traffic": {"probes": [{"name": "p", "url": "ftp://x"}]}}, "post_traffic/probes/0/url"),
    ("probe-scheme-only", {"post_traffic": {"probes": [{"name": "p", "url": "https://"}]}}, "post_traffic/probes/0/url"),
    ("probe-url-space", {"post_traffic": {"probes": [{"name": "p", "url": "https://x/a b"}]}}, "post_traffic/probes/0/url"),
    ("probe-lowercase-method", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "method": "get"}]}}, "post_traffic/probes/0/method"),
    ("probe-without-url", {"post_traffic": {"probes": [{"name": "p"}]}}, "post_traffic/probes/0"),
    ("probe-misspelt-field", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "status": 200}]}}, "post_traffic/probes/0"),
    ("probe-status-99", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "expect_status": [99]}]}}, "post_traffic/probes/0/expect_status/0"),
    ("probe-no-status", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "expect_status": []}]}}, "post_traffic/probes/0/expect_status"),
    ("probe-count-zero", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "count": 0}]}}, "post_traffic/probes/0/count"),
    ("probe-timeout-99", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "timeout_ms": 99}]}}, "post_traffic/probes/0/timeout_ms"),
    ("probe-header-name", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "headers": {"a b": "1"}}]}}, "post_traffic/probes/0/headers"),
    ("probe-header-line-break", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "headers": {"x": "1\r\nHost: evil"}}]}}, "post_traffic/probes/0/headers/x"),
    ("probe-failure-rate-2", {"post_traffic": {"probes": [{"name": "p", "url": "https://x", "max_failure_rate": 2}]}}, "post_traffic/probes/0/max_failure_rate"),
    ("probes-object", {"post_traffic": {"probes": {"name": "p"}}}, "post_traffic/probes"),
    ("too-many-probes", {"post_traffic": {"probes": [{"name": f"p{i}", "url": "https://x"} for i in range(11)]}}, "post_traffic/probes"),
    ("pre-traffic-array", {"pre_traffic": [120, 4]}, "pre_traffic"),
    ("unknown-pre-traffic-field", {"pre_traffic": {"budget": 10}}, "pre_traffic"),
    ("budget-zero", {"pre_traffic": {"budget_seconds": 0}}, "pre_traffic/budget_seconds"),
    ("budget-too-long", {"pre_traffic": {"budget_seconds": 841}}, "pre_traffic/budget_seconds"),
    ("concurrency-zero", {"pre_traffic": {"concurrency": 0}}, "pre_traffic/concurrency"),
    ("concurrency-33", {"pre_traffic": {"concurrency": 33}}, "pre_traffic/concurrency"),
    ("concurrency-string", {"pre_traffic": {"concurrency": "4"}}, "pre_traffic/concurrency"),
    ("architecture-amd64", {"pre_traffic": {"checks": {"architecture": "amd64"}}}, "pre_traffic/checks/architecture"),
    ("runtime-blank", {"pre_traffic": {"checks": {"runtime": " "}}}, "pre_traffic/checks/runtime"),
    ("runtime-null", {"pre_traffic": {"checks": {"runtime": None}}}, "pre_traffic/checks/runtime"),
    ("memory-empty-bounds", {"pre_traffic": {"checks": {"memory_mb": {}}}}, "pre_traffic/checks/memory_mb"),
    ("memory-below-lambda", {"pre_traffic": {"checks": {"memory_mb": {"min": 64}}}}, "pre_traffic/checks/memory_mb/min"),
    ("memory-unknown-bound", {"pre_traffic": {"checks": {"memory_mb": {"minimum": 128}}}}, "pre_traffic/checks/memory_mb"),
    ("timeout-above-lambda", {"pre_traffic": {"checks": {"timeout_seconds": {"max": 901}}}}, "pre_traffic/checks/timeout_seconds/max"),
    ("env-bad-name", {"pre_traffic": {"checks": {"required_env": ["1BAD"]}}}, "pre_traffic/checks/required_env/0"),
    ("env-duplicate", {"pre_traffic": {"checks": {"required_env": ["A", "A"]}}}, "pre_traffic/checks/required_env"),
    ("unknown-guard", {"pre_traffic": {"checks": {"handler": "x"}}}, "pre_traffic/checks"),
    ("smoke-without-name", {"pre_traffic": {"smoke_tests": [{"payload": {}}]}}, "pre_traffic/smoke_tests/0"),
    ("smoke-bad-name", {"pre_traffic": {"smoke_tests": [{"name": "has space"}]}}, "pre_traffic/smoke_tests/0/name"),
    ("smoke-long-name", {"pre_traffic": {"smoke_tests": [{"name": "x" * 65}]}}, "pre_traffic/smoke_tests/0/name"),
    ("smoke-retries-6", {"pre_traffic": {"smoke_tests": [{"name": "a", "retries": 6}]}}, "pre_traffic/smoke_tests/0/retries"),
    ("smoke-unknown-field", {"pre_traffic": {"smoke_tests": [{"name": "a", "timeout": 3}]}}, "pre_traffic/smoke_tests/0"),
    (
        "too-many-smoke-tests",
        {"pre_traffic": {"smoke_tests": [{"name": f"t{i}"} for i in range(51)]}},
        "pre_traffic/smoke_tests",
    ),
    ("expect-unknown-field", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"status": 200}}]}}, "pre_traffic/smoke_tests/0/expect"),
    ("function-error-empty", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"function_error": ""}}]}}, "pre_traffic/smoke_tests/0/expect/function_error"),
    ("function-error-bool", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"function_error": True}}]}}, "pre_traffic/smoke_tests/0/expect/function_error"),
    ("pointer-without-slash", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"json_pointer": {"statusCode": 200}}}]}}, "pre_traffic/smoke_tests/0/expect/json_pointer"),
    ("pointer-bad-escape", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"json_pointer": {"/a~2": 1}}}]}}, "pre_traffic/smoke_tests/0/expect/json_pointer"),
    ("regex-not-string", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"body_regex": 1}}]}}, "pre_traffic/smoke_tests/0/expect/body_regex"),
    ("max-duration-zero", {"pre_traffic": {"smoke_tests": [{"name": "a", "expect": {"max_duration_ms": 0}}]}}, "pre_traffic/smoke_tests/0/expect/max_duration_ms"),
]


@pytest.mark.parametrize("doc,where", [(d, w) for _, d, w in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_document_is_rejected(validator, doc, where):
    errors = list(validator.iter_errors(doc))
    assert errors, "schema accepted an invalid policy"
    paths = {"/".join(map(str, e.absolute_path)) for e in errors}
    assert where in paths, f"expected an error at {where!r}, got {paths}"


def test_valid_edge_values_are_accepted(validator):
    doc = {
        "version": 1,
        "pre_traffic": {
            "budget_seconds": 840,
            "concurrency": 32,
            "checks": {"memory_mb": {"min": 128}, "timeout_seconds": {"max": 900}, "required_env": []},
            "smoke_tests": [
                {
                    "name": "A-z_0.9",
                    "payload": None,
                    "retries": 5,
                    "expect": {
                        "json_subset": None,
                        "json_pointer": {"": {}, "/a~0b/~1c/0": None},
                        "body_regex": "",
                        "max_duration_ms": 900000,
                    },
                }
            ],
        },
    }
    assert not list(validator.iter_errors(doc))


def test_post_traffic_example_is_complete(validator):
    """The post-traffic example sets every field of the section (docs/policy.md shows it)."""
    doc = json.loads((ROOT / "examples" / "policies" / "post-traffic.json").read_text())
    assert not list(validator.iter_errors(doc))
    schema = json.loads(SCHEMA_PATH.read_text())
    post = doc["post_traffic"]
    assert set(post) == set(schema["$defs"]["post_traffic"]["properties"])
    for section, definition in [("canary", "post_traffic_canary"), ("bake", "post_traffic_bake")]:
        assert set(post[section]) == set(schema["$defs"][definition]["properties"]), section


def test_post_traffic_edge_values_are_accepted(validator):
    doc = {
        "post_traffic": {
            "bake_minutes": 0,
            "max_extend_minutes": 45,
            "poll_seconds": 300,
            "period_seconds": 3600,
            "min_invocations": 0,
            "on_no_data": "fail",
            "alpha": 0.0001,
            # The bake, its extension and the ingestion delay share the 45 minutes.
            "ingestion_delay_seconds": 0,
            "canary": {"max_error_rate_increase": 1, "max_error_rate_ratio": 1000, "max_latency_increase_pct": 1000,
                       "min_invocations": 0, "min_periods": 1000, "warmup_seconds": 1800},
            "bake": {"max_error_rate": 0, "max_p99_ms": 1, "max_throttles": 0},
            "alarms": ["a" * 255],
            "metrics": [
                {"name": "A-z_0.9", "namespace": "AWS/Lambda", "metric_name": "Errors", "dimensions": {},
                 "statistic": "p99.9", "comparison": "LessThanOrEqualToThreshold", "threshold": -1.5},
                {"name": "count", "namespace": "n", "metric_name": "m", "statistic": "SampleCount",
                 "comparison": "GreaterThanOrEqualToThreshold", "threshold": 0},
            ],
            "probes": [
                {"name": "p", "url": "HTTP://x", "method": "OPTIONS", "headers": {"X-Canary": "1", "a!#$%&'*+.^_`|~-": ""},
                 "body": "", "expect_status": [100, 599], "max_latency_ms": 30000, "count": 20, "timeout_ms": 30000,
                 "max_failure_rate": 1},
            ],
        }
    }
    assert not list(validator.iter_errors(doc))
    for period in (1, 5, 10, 30, 60, 120):
        assert not list(validator.iter_errors({"post_traffic": {"period_seconds": period}})), period

