"""Deploy a SAM template onto the local AWS (the moto emulator), the way `sam deploy`
would on AWS, for `make demo` and the tests:

    outputs = deploy_stack(aws, "infra/template.yaml", {"DryRun": "true"}, stack_name="rollgate")

1. SAM is expanded offline (aws-sam-translator); `CodeUri` becomes a placeholder.
2. Each function gets `Handler` = its cargo binary (`Metadata.BuildProperties.Binary`):
   the emulator forwards an invoke to the `cargo lambda watch` binary the handler names.
3. The resource types moto's CloudFormation does not implement (it only warns and skips
   them) are taken out of the stack and created through their service APIs afterwards,
   with their intrinsic functions resolved against the created stack: see API_CREATED.
4. What moto's CloudFormation drops from resources it does create is set through the
   APIs: function Architectures/Tags (the function is recreated with every property and
   its permissions and versions restored), the table's point-in-time recovery, log
   group retention and KMS key.

Returns the stack's outputs (name -> value); exports are visible to later stacks'
Fn::ImportValue, as on AWS.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn  # noqa: E402

REGION = cfn.REGION
ACCOUNT = cfn.ACCOUNT
PLACEHOLDER_ZIP = "rollgate: this function is served by cargo lambda watch"
# Types moto's CloudFormation creates, but not well enough: a Lambda::Version gets no
# physical id (so nothing can refer to it), so versions are published through the API.
API_ANYWAY = {"AWS::Lambda::Version"}
# Types moto's CloudFormation skips that other resources name: created through the API
# before the stack (their properties may use only parameters), their Ref and GetAtt Arn
# written into the template moto sees.
API_FIRST = {"AWS::Scheduler::ScheduleGroup"}


def moto_cfn_types() -> set[str]:
    """Resource types moto's CloudFormation really creates (the rest it skips)."""
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def _refs(value: Any) -> set[str]:
    """Logical ids a value refers to (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _refs(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(v, str):
                    found |= _refs(v[1])
            else:
                found |= _refs(v)
    return found


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names -> the CodeDeploy API's camelCase."""
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    return value


class LocalDeploy:
    def __init__(self, aws, template_path: str | Path, parameters: dict[str, str] | None,
                 stack_name: str):
        self.aws = aws
        self.stack_name = stack_name
        self.parameters = {k: str(v) for k, v in (parameters or {}).items()}
        source = cfn.load(template_path)
        self.binaries = {
            lid: res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            for lid, res in source.get("Resources", {}).items()
            if res.get("Type") == "AWS::Serverless::Function"
        }
        self.template = cfn.expand_sam(source, self.parameters)
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], Any] = {}
        self.types = {lid: res["Type"] for lid, res in self.template["Resources"].items()}
        exports = {}
        for page in aws.client("cloudformation").get_paginator("list_exports").paginate():
            exports.update({e["Name"]: e["Value"] for e in page.get("Exports", [])})
        self.resolver = cfn.Resolver(self.template, self.parameters, stack_name=stack_name,
                                     ref=self._ref, getatt=self._getatt, imports=exports)

    # ---------------------------------------------------------------- resolution
    def _ref(self, lid: str) -> Any:
        if lid not in self.physical:
            raise cfn.Unresolved(f"Ref {lid} (not created yet)")
        return self.physical[lid]

    def _getatt(self, lid: str, attribute: str) -> Any:
        if (lid, attribute) in self.attributes:
            return self.attributes[(lid, attribute)]
        physical, type_ = self._ref(lid), self.types[lid]
        arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
        if type_ == "AWS::Lambda::Function" and attribute == "Arn":
            return arn.format("lambda", f"function:{physical}")
        if type_ == "AWS::Lambda::Version" and attribute == "Version":
            return physical.rsplit(":", 1)[1]
        if type_ == "AWS::IAM::Role" and attribute == "Arn":
            return self.aws.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
        if type_ == "AWS::SQS::Queue" and attribute == "Arn":
            return self.aws.client("sqs").get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if type_ == "AWS::SQS::Queue" and attribute == "QueueName":  # its physical id is the URL
            return physical.rsplit("/", 1)[1]
        if type_ == "AWS::DynamoDB::Table" and attribute == "Arn":
            return arn.format("dynamodb", f"table/{physical}")
        if type_ == "AWS::Logs::LogGroup" and attribute == "Arn":
            return arn.format("logs", f"log-group:{physical}:*")
        if type_ == "AWS::SNS::Topic" and attribute == "TopicName":
            return physical.rsplit(":", 1)[1]
        if type_ == "AWS::Scheduler::ScheduleGroup" and attribute == "Arn":
            return arn.format("scheduler", f"schedule-group/{physical}")
        if type_ == "AWS::Events::Rule" and attribute == "Arn":
            return arn.format("events", f"rule/{physical}")
        raise cfn.Unresolved(f"GetAtt {lid}.{attribute} ({type_})")

    # ---------------------------------------------------------------- the deploy
    def run(self) -> dict[str, str]:
        supported = moto_cfn_types()
        resources = self.template["Resources"]
        active = {lid: res for lid, res in resources.items()
                  if "Condition" not in res or self.resolver.condition(res["Condition"])}
        first = sorted(lid for lid, res in active.items() if res["Type"] in API_FIRST)
        for lid in first:
            self._create(lid, active[lid])
        active = {lid: self._inline(res, first) for lid, res in active.items() if lid not in first}
        api_created = {lid for lid, res in active.items()
                       if res["Type"] not in supported or res["Type"] in API_ANYWAY}
        for lid in set(active) - api_created:
            needs = _refs(active[lid].get("Properties", {})) & api_created
            if needs:
                raise NotImplementedError(f"{lid} refers to {sorted(needs)}, which moto's CloudFormation "
                                          "skips; deploy.py cannot order that")

        stack_template = {k: v for k, v in self.template.items() if k not in ("Resources", "Outputs")}
        stack_template["Resources"] = {}
        for lid in set(active) - api_created:
            res = json.loads(json.dumps(active[lid]))
            res.pop("UpdatePolicy", None)
            res.pop("Condition", None)
            res["DependsOn"] = [d for d in ([res["DependsOn"]] if isinstance(res.get("DependsOn"), str)
                                            else res.get("DependsOn", [])) if d not in api_created]
            if not res["DependsOn"]:
                del res["DependsOn"]
            if res["Type"] == "AWS::Lambda::Function":
                self._localise_function(lid, res["Properties"])
            stack_template["Resources"][lid] = self._settle_list_conditions(res)
        # An output under a condition that does not hold is not there, as on AWS (its value
        # may name a resource that was not created).
        outputs = {k: v for k, v in self.template.get("Outputs", {}).items()
                   if "Condition" not in v or self.resolver.condition(v["Condition"])}
        stack_template["Outputs"] = {k: {kk: vv for kk, vv in v.items() if kk != "Condition"}
                                     for k, v in outputs.items() if not (_refs(v) & api_created)}

        cf = self.aws.client("cloudformation")
        declared = self.template.get("Parameters", {})
        cf.create_stack(
            StackName=self.stack_name, TemplateBody=json.dumps(stack_template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()
                        if k in declared],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
        stack = cf.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"stack {self.stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        for r in cf.describe_stack_resources(StackName=self.stack_name)["StackResources"]:
            if r.get("PhysicalResourceId"):  # moto gives Lambda::Permission none
                self.physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]

        self._restore_dropped_properties(stack_template["Resources"])
        for lid in self._dependency_order(api_created, active):
            self._create(lid, active[lid])

        result = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        for key, out in outputs.items():
            if key not in result:
                result[key] = self.resolver.resolve(out["Value"])
        return result

    def _inline(self, value: Any, ids: list[str]) -> Any:
        """`value` with `Ref`, `GetAtt .Arn` and `${...}` of the resources `ids` replaced
        by what they resolved to."""
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in ids:
                return self.physical[value["Ref"]]
            if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in ids:
                return self._getatt(*value["Fn::GetAtt"][:2])
            if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
                text = value["Fn::Sub"]
                for lid in ids:
                    text = text.replace("${" + lid + ".Arn}", self._getatt(lid, "Arn"))
                    text = text.replace("${" + lid + "}", self.physical[lid])
                return {"Fn::Sub": text}
            return {k: self._inline(v, ids) for k, v in value.items()}
        if isinstance(value, list):
            return [self._inline(v, ids) for v in value]
        return value

    def _settle_list_conditions(self, value: Any) -> Any:
        """`!If [C, item, !Ref AWS::NoValue]` as a list item is decided here: moto's
        CloudFormation leaves a null in the list (an IAM statement of None), where AWS
        drops the item. So is a property or map entry whose `!If` comes to
        `AWS::NoValue` (an environment variable set only under a condition): AWS leaves the
        key out, moto would keep it with a null value."""
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, dict) and set(item) == {"Fn::If"}:
                    cond, yes, no = item["Fn::If"]
                    item = yes if self.resolver.condition(cond) else no
                    if item == {"Ref": "AWS::NoValue"}:
                        continue
                out.append(self._settle_list_conditions(item))
            return out
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(v, dict) and set(v) == {"Fn::If"}:
                    cond, yes, no = v["Fn::If"]
                    if (yes if self.resolver.condition(cond) else no) == {"Ref": "AWS::NoValue"}:
                        continue
                out[k] = self._settle_list_conditions(v)
            return out
        return value

    def _localise_function(self, lid: str, props: dict) -> None:
        binary = self.binaries.get(lid) or self.template["Resources"][lid].get("Metadata", {}) \
            .get("BuildProperties", {}).get("Binary")
        if binary:
            props["Handler"] = binary
        props["Code"] = {"ZipFile": PLACEHOLDER_ZIP}

    def _dependency_order(self, ids: set[str], resources: dict) -> list[str]:
        order: list[str] = []
        pending = set(ids)
        while pending:
            ready = sorted(lid for lid in pending
                           if not (_refs(resources[lid]) | set(_deps(resources[lid]))) & pending)
            if not ready:
                raise RuntimeError(f"circular references among {sorted(pending)}")
            order += ready
            pending -= set(ready)
        return order

    # ---------------------------------------------------------------- fix-ups
    def _restore_dropped_properties(self, created: dict) -> None:
        lam = self.aws.client("lambda")
        for lid, res in created.items():
            props = self.resolver.resolve(res.get("Properties", {}))
            if res["Type"] == "AWS::Lambda::Function":
                self._recreate_function(lam, lid, props, created)
            elif res["Type"] == "AWS::DynamoDB::Table":
                pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
                if pitr:
                    self.aws.client("dynamodb").update_continuous_backups(
                        TableName=self.physical[lid],
                        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            elif res["Type"] == "AWS::Logs::LogGroup":
                logs = self.aws.client("logs")
                if props.get("KmsKeyId"):  # moto has no AssociateKmsKey: create it with the key
                    logs.delete_log_group(logGroupName=self.physical[lid])
                    logs.create_log_group(logGroupName=self.physical[lid], kmsKeyId=props["KmsKeyId"])
                if "RetentionInDays" in props:
                    logs.put_retention_policy(logGroupName=self.physical[lid],
                                              retentionInDays=int(props["RetentionInDays"]))

    def _recreate_function(self, lam, lid: str, props: dict, created: dict) -> None:
        """moto's CloudFormation creates functions without Architectures, Tags and other
        properties: recreate the function with all of them (its ARN is name-based, so
        every reference stays valid), then restore its permissions and versions."""
        name = self.physical[lid]
        versions = [v for v in lam.list_versions_by_function(FunctionName=name)["Versions"]
                    if v["Version"] != "$LATEST"]
        lam.delete_function(FunctionName=name)
        spec = {k: props[k] for k in ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize",
                                      "Environment", "Architectures", "DeadLetterConfig", "LoggingConfig",
                                      "TracingConfig", "EphemeralStorage", "Layers") if k in props}
        if props.get("Tags"):
            spec["Tags"] = {t["Key"]: str(t["Value"]) for t in props["Tags"]}
        lam.create_function(FunctionName=name, Code={"ZipFile": _placeholder_zip()}, **spec)
        # The template's Lambda::Permission resources for this function, added again.
        for pid, res in created.items():
            if res["Type"] != "AWS::Lambda::Permission":
                continue
            p = self.resolver.resolve(res["Properties"])
            if p["FunctionName"] not in (name, self._getatt(lid, "Arn")):
                continue
            kwargs = {"FunctionName": name, "StatementId": pid, "Action": p["Action"], "Principal": p["Principal"]}
            kwargs.update({k: p[k] for k in ("SourceArn", "SourceAccount") if k in p})
            lam.add_permission(**kwargs)
        for _ in versions:
            lam.publish_version(FunctionName=name)

    # ---------------------------------------------------------------- API-created types
    def _create(self, lid: str, res: dict) -> None:
        type_ = res["Type"]
        props = self.resolver.resolve(res.get("Properties", {}))
        handler = getattr(self, "_create_" + type_.replace("AWS::", "").replace("::", "_"), None)
        if handler is None:
            raise NotImplementedError(f"{lid}: {type_} is skipped by moto's CloudFormation and deploy.py "
                                      "cannot create it either")
        self.physical[lid] = handler(lid, props)

    def _name(self, lid: str, limit: int = 100) -> str:
        return f"{self.stack_name}-{lid}-{uuid.uuid4().hex[:12].upper()}"[:limit]

    def _create_SNS_Subscription(self, lid: str, p: dict) -> str:
        attrs = {k: (json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v))
                 for k, v in p.items() if k in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy",
                                                  "FilterPolicyScope", "DeliveryPolicy")}
        return self.aws.client("sns").subscribe(TopicArn=p["TopicArn"], Protocol=p["Protocol"],
                                                Endpoint=p["Endpoint"], Attributes=attrs,
                                                ReturnSubscriptionArn=True)["SubscriptionArn"]

    def _create_Scheduler_ScheduleGroup(self, lid: str, p: dict) -> str:
        name = p.get("Name") or self._name(lid, 64)
        self.aws.client("scheduler").create_schedule_group(Name=name, Tags=p.get("Tags") or [])
        return name

    def _create_SQS_QueuePolicy(self, lid: str, p: dict) -> str:
        sqs = self.aws.client("sqs")
        for url in p["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])})
        return self._name(lid)

    def _create_SNS_TopicPolicy(self, lid: str, p: dict) -> str:
        for arn in p["Topics"]:
            self.aws.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy",
                                                        AttributeValue=json.dumps(p["PolicyDocument"]))
        return self._name(lid)

    def _create_Lambda_Version(self, lid: str, p: dict) -> str:
        kwargs = {k: p[k] for k in ("FunctionName", "Description") if k in p}
        return self.aws.client("lambda").publish_version(**kwargs)["FunctionArn"]

    def _create_Lambda_Alias(self, lid: str, p: dict) -> str:
        kwargs = {"FunctionName": p["FunctionName"], "Name": p["Name"], "FunctionVersion": str(p["FunctionVersion"])}
        if p.get("RoutingConfig"):
            kwargs["RoutingConfig"] = p["RoutingConfig"]
        arn = self.aws.client("lambda").create_alias(**kwargs)["AliasArn"]
        self.attributes[(lid, "Name")] = p["Name"]
        return arn

    def _create_Lambda_EventInvokeConfig(self, lid: str, p: dict) -> str:
        kwargs = {k: p[k] for k in ("FunctionName", "Qualifier", "MaximumRetryAttempts",
                                    "MaximumEventAgeInSeconds", "DestinationConfig") if k in p}
        self.aws.client("lambda").put_function_event_invoke_config(**kwargs)
        return self._name(lid)

    def _create_CloudWatch_Alarm(self, lid: str, p: dict) -> str:
        name = p.pop("AlarmName", None) or self._name(lid, 255)
        tags = p.pop("Tags", [])
        self.aws.client("cloudwatch").put_metric_alarm(AlarmName=name, Tags=tags, **p)
        self.attributes[(lid, "Arn")] = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
        return name

    def _create_CodeDeploy_Application(self, lid: str, p: dict) -> str:
        name = p.get("ApplicationName") or self._name(lid)
        self.aws.client("codedeploy").create_application(applicationName=name,
                                                         computePlatform=p.get("ComputePlatform", "Server"))
        return name

    def _create_CodeDeploy_DeploymentGroup(self, lid: str, p: dict) -> str:
        p = dict(p)
        name = p.pop("DeploymentGroupName", None) or self._name(lid)
        kwargs = _camel(p)
        if "alarmConfiguration" in kwargs:
            kwargs["alarmConfiguration"]["enabled"] = kwargs["alarmConfiguration"].get("enabled") in (True, "true")
        self.aws.client("codedeploy").create_deployment_group(deploymentGroupName=name, **kwargs)
        return name


def _deps(res: dict) -> list[str]:
    d = res.get("DependsOn", [])
    return [d] if isinstance(d, str) else list(d)


def _placeholder_zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("README", PLACEHOLDER_ZIP)
    return buf.getvalue()


def deploy_stack(aws, template_path: str | Path, parameters: dict[str, str] | None = None,
                 stack_name: str = "rollgate") -> dict[str, str]:
    """Deploy `template_path` (SAM or CloudFormation) as `stack_name` onto the emulator
    behind `aws` (harness.LocalAws or anything with `.client(service)`); returns the
    stack's outputs."""
    return LocalDeploy(aws, template_path, parameters, stack_name).run()
