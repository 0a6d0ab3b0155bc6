"""EventBridge event-pattern matching, as the EventBridge User Guide documents it
("Creating event patterns", "Content filtering"), for testing the stack's rules offline
(moto's TestEventPattern does not implement these semantics).

    matches({"source": ["aws.cloudwatch"]}, event)  -> bool
    validate(pattern)                                -> raises InvalidPattern

Semantics implemented:
- every field of the pattern must match (AND); fields the pattern does not name are
  ignored; a nested object in the pattern matches the nested object of the event;
- a leaf is an array of matchers: the field matches if ANY matcher matches (OR); when the
  event's value is an array, the field matches if ANY element matches (arrays of objects
  are matched element by element against a nested pattern);
- matchers: exact string / number / boolean / null; {"prefix"}, {"suffix"} (both also
  with {"equals-ignore-case": ...}), {"equals-ignore-case"}, {"wildcard"} (`*` only),
  {"anything-but": value | [values] | {"prefix"} | {"suffix"} | {"equals-ignore-case"} |
  {"wildcard"}}, {"numeric": [op, n, (op, n)]}, {"exists": bool}, {"cidr"};
- {"$or": [pattern, ...]} at any object level;
- numbers compare numerically (300 matches 300.0), and a string never equals a number;
- a missing field matches only {"exists": false}; {"anything-but"}, {"numeric"} and the
  other matchers need the field to be present.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_MISSING = object()
_NUMERIC_OPS = {"=", "<", "<=", ">", ">="}


class InvalidPattern(ValueError):
    """The pattern is one EventBridge would reject (InvalidEventPatternException)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar_equal(expected: Any, value: Any) -> bool:
    if _is_number(expected) or _is_number(value):
        return _is_number(expected) and _is_number(value) and float(expected) == float(value)
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    return expected == value


def _wildcard(pattern: str, value: str) -> bool:
    rx = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(rx, value, flags=re.DOTALL) is not None


def _string_rule(kind: str, arg: Any, value: Any) -> bool:
    """prefix/suffix (optionally {"equals-ignore-case": s}), equals-ignore-case, wildcard."""
    if not isinstance(value, str):
        return False
    if kind in ("prefix", "suffix"):
        if isinstance(arg, dict):
            text, value = arg["equals-ignore-case"].lower(), value.lower()
        else:
            text = arg
        return value.startswith(text) if kind == "prefix" else value.endswith(text)
    if kind == "equals-ignore-case":
        return value.lower() == arg.lower()
    if kind == "wildcard":
        return _wildcard(arg, value)
    raise InvalidPattern(f"unknown string matcher {kind}")


def _numeric(spec: list, value: Any) -> bool:
    if not _is_number(value):
        return False
    for op, bound in zip(spec[0::2], spec[1::2]):
        ok = {"=": value == bound, "<": value < bound, "<=": value <= bound,
              ">": value > bound, ">=": value >= bound}[op]
        if not ok:
            return False
    return True


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        (kind, inner), = arg.items()
        if isinstance(inner, list):
            return isinstance(value, str) and not any(_string_rule(kind, i, value) for i in inner)
        return isinstance(value, str) and not _string_rule(kind, inner, value)
    values = arg if isinstance(arg, list) else [arg]
    return not any(_scalar_equal(v, value) for v in values)


def _matcher(m: Any, value: Any) -> bool:
    """One matcher against one present scalar value (never an array)."""
    if not isinstance(m, dict):
        return _scalar_equal(m, value)
    (kind, arg), = m.items()
    if kind == "exists":
        return arg is True
    if kind == "anything-but":
        return _anything_but(arg, value)
    if kind == "numeric":
        return _numeric(arg, value)
    if kind == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except (TypeError, ValueError):
            return False
    return _string_rule(kind, arg, value)


def _leaf(matchers: list, value: Any) -> bool:
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    if isinstance(value, dict):
        # A leaf matcher never matches an object; only "exists" cares that it is there.
        return any(isinstance(m, dict) and m.get("exists") is True for m in matchers)
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        return any(isinstance(m, dict) and m.get("exists") is True for m in matchers)
    return any(_matcher(m, v) for m in matchers for v in values
               if not (isinstance(m, dict) and m.get("exists") is False))


def _object(pattern: dict, event: Any) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_object(alt, event) for alt in sub):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(sub, dict):
            if isinstance(value, list):
                if not any(_object(sub, v) for v in value if isinstance(v, dict)):
                    return False
            elif not _object(sub, value if isinstance(value, dict) else {}):
                return False
        elif not _leaf(sub, value):
            return False
    return True


def matches(pattern: dict, event: dict) -> bool:
    """Whether EventBridge would deliver `event` to a rule with `pattern`."""
    validate(pattern)
    return _object(pattern, event)


def _validate_matcher(m: Any, path: str) -> None:
    if m is None or isinstance(m, (str, bool)) or _is_number(m):
        return
    if not isinstance(m, dict) or len(m) != 1:
        raise InvalidPattern(f"{path}: a matcher is a value or an object with one key, got {m!r}")
    (kind, arg), = m.items()
    if kind in ("prefix", "suffix"):
        if isinstance(arg, dict):
            if set(arg) != {"equals-ignore-case"} or not isinstance(arg["equals-ignore-case"], str):
                raise InvalidPattern(f"{path}: {kind} takes a string or {{equals-ignore-case: string}}")
        elif not isinstance(arg, str):
            raise InvalidPattern(f"{path}: {kind} takes a string")
    elif kind in ("equals-ignore-case", "wildcard", "cidr"):
        if not isinstance(arg, str):
            raise InvalidPattern(f"{path}: {kind} takes a string")
        if kind == "wildcard" and "**" in arg:
            raise InvalidPattern(f"{path}: consecutive wildcards are not allowed")
        if kind == "cidr":
            try:
                ipaddress.ip_network(arg, strict=False)
            except ValueError as e:
                raise InvalidPattern(f"{path}: {e}") from e
    elif kind == "exists":
        if not isinstance(arg, bool):
            raise InvalidPattern(f"{path}: exists takes true or false")
    elif kind == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise InvalidPattern(f"{path}: numeric takes [op, n] or [op, n, op, n]")
        for op, n in zip(arg[0::2], arg[1::2]):
            if op not in _NUMERIC_OPS or not _is_number(n):
                raise InvalidPattern(f"{path}: bad numeric comparison {op!r} {n!r}")
    elif kind == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise InvalidPattern(f"{path}: anything-but takes values, prefix, suffix, "
                                     "equals-ignore-case or wildcard")
        elif isinstance(arg, list):
            for v in arg:
                if isinstance(v, (dict, list)):
                    raise InvalidPattern(f"{path}: anything-but list holds plain values")
    else:
        raise InvalidPattern(f"{path}: unknown matcher {kind!r}")


def validate(pattern: Any, path: str = "$") -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPattern(f"{path}: a pattern is a non-empty JSON object")
    for key, sub in pattern.items():
        here = f"{path}.{key}"
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise InvalidPattern(f"{here}: $or takes a list of at least two patterns")
            for i, alt in enumerate(sub):
                validate(alt, f"{here}[{i}]")
        elif isinstance(sub, dict):
            validate(sub, here)
        elif isinstance(sub, list):
            if not sub:
                raise InvalidPattern(f"{here}: empty array matches nothing")
            for m in sub:
                _validate_matcher(m, here)
        else:
            raise InvalidPattern(f"{here}: a leaf must be an array of matchers, got {sub!r}")
