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
        "post_traffic": {"anything": [1, 2]},
    }
    assert not list(validator.iter_errors(doc))

