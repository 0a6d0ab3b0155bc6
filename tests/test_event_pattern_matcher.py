"""The EventBridge pattern matcher in infra/local/event_pattern.py, pinned to the
matching rules the EventBridge User Guide documents (one case per rule)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra" / "local"))
from event_pattern import InvalidPattern, matches, validate  # noqa: E402

EVENT = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-errors", "arn:other"],
    "detail": {
        "alarmName": "orders-errors",
        "state": {"value": "ALARM"},
        "count": 5,
        "ratio": 0.25,
        "enabled": True,
        "nothing": None,
        "empty": "",
        "tags": ["blue", "canary"],
        "ip": "10.0.3.7",
        "metrics": [{"id": "m1", "name": "Errors"}, {"id": "m2", "name": "Invocations"}],
    },
}


@pytest.mark.parametrize("pattern, expected", [
    # exact values, arrays as OR, every field must match (AND)
    ({"source": ["aws.cloudwatch"]}, True),
    ({"source": ["aws.ec2", "aws.cloudwatch"]}, True),
    ({"source": ["aws.ec2"]}, False),
    ({"source": ["aws.cloudwatch"], "detail-type": ["Other"]}, False),
    ({"source": ["AWS.CLOUDWATCH"]}, False),  # case-sensitive
    # nested objects
    ({"detail": {"state": {"value": ["ALARM"]}}}, True),
    ({"detail": {"state": {"value": ["OK"]}}}, False),
    ({"detail": {"missing": {"value": ["ALARM"]}}}, False),
    # arrays in the event: any element
    ({"resources": ["arn:other"]}, True),
    ({"detail": {"tags": ["canary"]}}, True),
    ({"detail": {"tags": ["green"]}}, False),
    ({"detail": {"metrics": {"name": ["Invocations"]}}}, True),
    ({"detail": {"metrics": {"name": ["Throttles"]}}}, False),
    # prefix / suffix / equals-ignore-case / wildcard
    ({"detail": {"alarmName": [{"prefix": "orders-"}]}}, True),
    ({"detail": {"alarmName": [{"prefix": "payments-"}]}}, False),
    ({"detail": {"alarmName": [{"prefix": {"equals-ignore-case": "ORDERS"}}]}}, True),
    ({"detail": {"alarmName": [{"suffix": "-errors"}]}}, True),
    ({"detail": {"alarmName": [{"suffix": "-latency"}]}}, False),
    ({"detail": {"alarmName": [{"equals-ignore-case": "Orders-Errors"}]}}, True),
    ({"detail": {"alarmName": [{"wildcard": "ord*err*"}]}}, True),
    ({"detail": {"alarmName": [{"wildcard": "pay*"}]}}, False),
    ({"resources": [{"prefix": "arn:aws:cloudwatch:"}]}, True),
    # anything-but
    ({"detail": {"state": {"value": [{"anything-but": "OK"}]}}}, True),
    ({"detail": {"state": {"value": [{"anything-but": ["OK", "ALARM"]}]}}}, False),
    ({"detail": {"alarmName": [{"anything-but": {"prefix": "orders"}}]}}, False),
    ({"detail": {"alarmName": [{"anything-but": {"suffix": "-latency"}}]}}, True),
    ({"detail": {"count": [{"anything-but": [5]}]}}, False),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),  # needs the field
    # numeric, and numbers compare as numbers, never as strings
    ({"detail": {"count": [{"numeric": [">", 0, "<=", 5]}]}}, True),
    ({"detail": {"count": [{"numeric": [">", 5]}]}}, False),
    ({"detail": {"ratio": [{"numeric": ["=", 0.25]}]}}, True),
    ({"detail": {"count": [5.0]}}, True),
    ({"detail": {"count": ["5"]}}, False),
    ({"detail": {"alarmName": [{"numeric": [">", 0]}]}}, False),
    # booleans, null, empty string
    ({"detail": {"enabled": [True]}}, True),
    ({"detail": {"enabled": [1]}}, False),
    ({"detail": {"nothing": [None]}}, True),
    ({"detail": {"empty": [""]}}, True),
    ({"detail": {"empty": [None]}}, False),
    # exists
    ({"detail": {"alarmName": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"alarmName": [{"exists": False}]}}, False),
    ({"absent": {"deeper": [{"exists": False}]}}, True),
    # cidr
    ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"ip": [{"cidr": "192.168.0.0/16"}]}}, False),
    # $or
    ({"$or": [{"source": ["aws.ec2"]}, {"detail": {"count": [5]}}]}, True),
    ({"$or": [{"source": ["aws.ec2"]}, {"detail": {"count": [6]}}]}, False),
    # a leaf never matches an object
    ({"detail": ["orders-errors"]}, False),
])
def test_matching_rules(pattern, expected):
    assert matches(pattern, EVENT) is expected


@pytest.mark.parametrize("pattern", [
    {},
    {"source": "aws.cloudwatch"},                       # leaf must be an array
    {"source": []},
    {"detail": {"count": [{"numeric": [">>", 1]}]}},
    {"detail": {"count": [{"numeric": [">", "1"]}]}},
    {"detail": {"x": [{"prefix": 1}]}},
    {"detail": {"x": [{"exists": "yes"}]}},
    {"detail": {"x": [{"nonsense": "a"}]}},
    {"detail": {"x": [{"prefix": "a", "suffix": "b"}]}},
    {"detail": {"x": [{"anything-but": {"numeric": [">", 1]}}]}},
    {"detail": {"x": [{"wildcard": "a**b"}]}},
    {"$or": [{"source": ["a"]}]},
])
def test_invalid_patterns_are_rejected(pattern):
    with pytest.raises(InvalidPattern):
        validate(pattern)
