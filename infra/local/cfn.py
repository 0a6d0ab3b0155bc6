"""CloudFormation templates offline: read YAML with the short-form intrinsic tags, expand
SAM with aws-sam-translator, and evaluate the intrinsic functions a deploy or a test needs.

    template = load("infra/template.yaml")                 # !Ref X -> {"Ref": "X"}, ...
    expanded = expand_sam(template, {"DryRun": "true"})      # plain CloudFormation
    value = Resolver(expanded, params).resolve(expanded["Resources"]["X"]["Properties"])
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable

import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Tag value` into CloudFormation's long form."""


def _construct(loader: yaml.Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    value = _construct(loader, node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)
# CloudFormation reads "on"/"yes" as strings, not YAML 1.1 booleans.
_CfnLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CfnLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))


def loads(text: str) -> dict:
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def load(path: str | Path) -> dict:
    return loads(Path(path).read_text())


def expand_sam(template: dict, parameters: dict[str, str] | None = None, region: str = REGION,
               account: str = ACCOUNT) -> dict:
    """The CloudFormation SAM would deploy (offline: no AWS call). `CodeUri` may be a
    local path: it is replaced by a placeholder S3 location, as `sam package` would."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    globals_fn = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = "s3://rollgate-local/code.zip"
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in res.get("Properties", {}):
            res["Properties"]["CodeUri"] = "s3://rollgate-local/code.zip"
    values = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}
    values.update(parameters or {})
    # The session only tells the translator the region; it never calls AWS here.
    session = boto3.session.Session(region_name=region, aws_access_key_id="offline",
                                    aws_secret_access_key="offline")
    translator = Translator({}, Parser(), boto_session=session)
    return translator.translate(template, parameter_values=values, passthrough_metadata=True,
                                get_managed_policy_map=dict)


class Unresolved(Exception):
    """An intrinsic refers to something not known (yet)."""


class Resolver:
    """Evaluates intrinsic functions against parameters (defaults filled in from the
    template), pseudo parameters, conditions, and what `ref`/`getatt` callbacks say
    about resources. Unknown references raise `Unresolved`."""

    def __init__(self, template: dict, parameters: dict[str, str] | None = None,
                 stack_name: str = "rollgate", region: str = REGION, account: str = ACCOUNT,
                 ref: Callable[[str], Any] | None = None,
                 getatt: Callable[[str, str], Any] | None = None,
                 imports: dict[str, str] | None = None):
        self.template = template
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = (parameters or {}).get(name, spec.get("Default"))
            if value is None:
                raise ValueError(f"parameter {name} has no value and no default")
            if spec.get("Type") == "CommaDelimitedList":
                value = [v.strip() for v in str(value).split(",")] if value != "" else []
            self.params[name] = value if isinstance(value, list) else str(value)
        self.params.update({"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws",
                            "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com",
                            "AWS::NoValue": _NO_VALUE})
        self._ref = ref
        self._getatt = getatt
        self.imports = imports or {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self._resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            fn = _FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
        out = {}
        for k, v in value.items():
            r = self._resolve(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if self._ref is not None:
            return self._ref(name)
        raise Unresolved(f"Ref {name}")

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._resolve(arg[1]))

        def one(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".")[0] not in self.params:
                resource, attribute = expr.split(".", 1)
                return str(self._fn_getatt([resource, attribute]))
            value = self.ref(expr)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _fn_getatt(self, arg: Any) -> Any:
        resource, attribute = (arg.split(".", 1) if isinstance(arg, str) else self._resolve(arg))
        if self._getatt is None:
            raise Unresolved(f"GetAtt {resource}.{attribute}")
        return self._getatt(resource, attribute)


class _NoValueType:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValueType()


def _fn_if(r: Resolver, arg: list) -> Any:
    name, yes, no = arg
    return r._resolve(yes if r.condition(name) else no)


def _fn_select(r: Resolver, arg: list) -> Any:
    index, items = r._resolve(arg[0]), r._resolve(arg[1])
    return items[int(index)]


def _fn_import(r: Resolver, arg: Any) -> Any:
    name = r._resolve(arg)
    if name not in r.imports:
        raise Unresolved(f"ImportValue {name}")
    return r.imports[name]


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::If": _fn_if,
    "Fn::Equals": lambda r, a: r._resolve(a[0]) == r._resolve(a[1]),
    "Fn::Not": lambda r, a: not r._resolve(a[0]),
    "Fn::And": lambda r, a: all(r._resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r._resolve(x) for x in a),
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::Join": lambda r, a: str(r._resolve(a[0])).join(str(x) for x in r._resolve(a[1])),
    "Fn::Split": lambda r, a: str(r._resolve(a[1])).split(r._resolve(a[0])),
    "Fn::Select": _fn_select,
    "Fn::GetAtt": lambda r, a: r._fn_getatt(a),
    "Fn::ImportValue": _fn_import,
    "Fn::Base64": lambda r, a: __import__("base64").b64encode(str(r._resolve(a)).encode()).decode(),
    "Fn::ToJsonString": lambda r, a: json.dumps(r._resolve(a)),
}
