"""Checks for authpulse's deployment files (deploy/, systemd/, .dockerignore).

Run from the repository root with the project's virtualenv:

    .venv/bin/python -m unittest discover -s tests/deploy -v

The virtualenv (tests/aws_emulator/requirements.txt) provides cfn-lint 1.58.0 and,
as dependencies of cfn-lint and moto, PyYAML and botocore. The only tests
allowed to skip are the systemd-analyze ones, and only when systemd-analyze
is not installed.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SYSTEMD = REPO / "systemd"

CFN_TEMPLATE = DEPLOY / "cloudformation.yaml"
IAM_POLICY = DEPLOY / "iam-policy.json"
ECS_TASKDEF = DEPLOY / "ecs-task-definition.json"
DEPLOY_README = DEPLOY / "README.md"
CONFIG_TEMPLATE = DEPLOY / "authpulse.toml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = SYSTEMD / "authpulse.service"
ENV_EXAMPLE = SYSTEMD / "authpulse.env.example"

# The AWS calls the daemon makes, and therefore the only actions it may hold.
EXPECTED_ACTIONS = {
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:StopQuery",
    "sns:Publish",
    # [ha]: leases and alert state (transactions are authorized per item action).
    "dynamodb:DescribeTable",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
}
OKTA_LOG_GROUP = "/aws/events/okta"
ALERT_TOPIC = "authpulse-alerts"
HA_TABLE = "authpulse-ha"
STATE_DIR = "/var/lib/authpulse"
MAX_EXPOSURE = 2.0

# CloudWatch Logs retention values (AWS::Logs::LogGroup RetentionInDays).
CLOUDWATCH_RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
    1827, 2192, 2557, 2922, 3288, 3653,
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def find_venv_tool(name: str) -> Path | None:
    """A console script of the test virtualenv: the repo's .venv first, then
    the environment of the interpreter running the tests."""
    for candidate in (REPO / ".venv" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )


class CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation short-form intrinsics
    (!Ref, !Sub, !GetAtt, ...) and turns them into their long JSON form."""


def _cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn() -> dict:
    return yaml.load(CFN_TEMPLATE.read_text(), Loader=CfnLoader)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statement_actions(stmt: dict) -> set[str]:
    return set(as_list(stmt.get("Action", [])))


def is_wildcard(resource) -> bool:
    return resource == "*"


def documented_wildcard_exceptions() -> set[str]:
    """Actions listed in deploy/README.md between the
    iam-wildcard-exceptions markers (first column of the table)."""
    text = DEPLOY_README.read_text()
    match = re.search(
        r"<!-- iam-wildcard-exceptions:begin -->(.*?)<!-- iam-wildcard-exceptions:end -->",
        text,
        re.S,
    )
    if not match:
        raise AssertionError("deploy/README.md lacks the iam-wildcard-exceptions section")
    actions = set()
    for line in match.group(1).splitlines():
        line = line.strip()
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        first_cell = line.strip("|").split("|")[0]
        actions.update(re.findall(r"`([a-z0-9-]+:[A-Za-z0-9]+)`", first_cell))
    return actions


def wildcard_and_scoped(statements: list[dict]) -> tuple[set[str], set[str]]:
    """Actions granted on "*" and actions granted on specific resources."""
    wildcard, scoped = set(), set()
    for stmt in statements:
        resources = as_list(stmt.get("Resource", []))
        target = wildcard if any(is_wildcard(r) for r in resources) else scoped
        target.update(statement_actions(stmt))
    return wildcard, scoped


# --------------------------------------------------------------------------
# CloudFormation
# --------------------------------------------------------------------------

class CloudFormationTemplateTest(unittest.TestCase):
    def test_cfn_lint_passes(self):
        cfn_lint = find_venv_tool("cfn-lint")
        self.assertIsNotNone(
            cfn_lint,
            "cfn-lint not found in .venv/bin or next to this interpreter; "
            "install tests/aws_emulator/requirements.txt into the venv",
        )
        result = run([cfn_lint, "--", CFN_TEMPLATE])
        self.assertEqual(
            result.returncode, 0,
            f"cfn-lint reported problems:\n{result.stdout}{result.stderr}",
        )

    def test_parameters(self):
        params = load_cfn()["Parameters"]
        self.assertIn("OktaEventSourceName", params)
        self.assertEqual(params["LogGroupName"]["Default"], OKTA_LOG_GROUP)
        self.assertEqual(params["AlertTopicName"]["Default"], ALERT_TOPIC)
        retention = params["RetentionInDays"]
        self.assertEqual(retention["Default"], 90)
        self.assertEqual(retention["AllowedValues"], CLOUDWATCH_RETENTION_DAYS)

    def test_eventbridge_rule_on_partner_bus_targets_log_group(self):
        resources = load_cfn()["Resources"]
        rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
        self.assertEqual(len(rules), 1)
        props = rules[0]["Properties"]
        self.assertIn({"Ref": "OktaEventSourceName"}, json_values(props["EventBusName"]))
        self.assertEqual(
            props["EventPattern"],
            {"account": [{"Ref": "AWS::AccountId"}], "source": [{"Ref": "OktaEventSourceName"}]},
        )
        self.assertEqual(
            [t["Arn"] for t in props["Targets"]], [{"Fn::GetAtt": ["OktaLogGroup", "Arn"]}]
        )
        self.assertFalse(
            any("RoleArn" in t for t in props["Targets"]),
            "CloudWatch Logs targets are authorized by a Logs resource policy, not a role",
        )

    def test_optional_partner_event_bus(self):
        resources = load_cfn()["Resources"]
        buses = [r for r in resources.values() if r["Type"] == "AWS::Events::EventBus"]
        self.assertEqual(len(buses), 1)
        bus = buses[0]
        self.assertIn("Condition", bus, "the partner bus must stay optional")
        self.assertEqual(bus["Properties"]["Name"], {"Ref": "OktaEventSourceName"})
        self.assertEqual(bus["Properties"]["EventSourceName"], {"Ref": "OktaEventSourceName"})

    def test_log_group_and_resource_policy(self):
        resources = load_cfn()["Resources"]
        group = resources["OktaLogGroup"]
        self.assertEqual(group["Type"], "AWS::Logs::LogGroup")
        self.assertEqual(group["Properties"]["RetentionInDays"], {"Ref": "RetentionInDays"})
        policies = [r for r in resources.values() if r["Type"] == "AWS::Logs::ResourcePolicy"]
        self.assertEqual(len(policies), 1)
        doc = policies[0]["Properties"]["PolicyDocument"]
        self.assertIsInstance(doc, dict)
        (stmt,) = doc["Statement"]
        self.assertEqual(stmt["Effect"], "Allow")
        self.assertEqual(
            set(as_list(stmt["Principal"]["Service"])),
            {"events.amazonaws.com", "delivery.logs.amazonaws.com"},
        )
        self.assertEqual(statement_actions(stmt), {"logs:CreateLogStream", "logs:PutLogEvents"})
        self.assertEqual(stmt["Resource"], {"Fn::GetAtt": ["OktaLogGroup", "Arn"]})

    def test_outputs(self):
        outputs = load_cfn()["Outputs"]
        for name in ("LogGroupName", "LogGroupArn", "AlertTopicArn", "TaskRoleArn", "HaTableName"):
            self.assertIn(name, outputs)

    def test_ha_table(self):
        cfn = load_cfn()
        self.assertEqual(cfn["Parameters"]["HaTableName"]["Default"], HA_TABLE)
        table = cfn["Resources"]["HaTable"]
        self.assertEqual(table["Type"], "AWS::DynamoDB::Table")
        props = table["Properties"]
        self.assertEqual(props["TableName"], {"Ref": "HaTableName"})
        self.assertEqual(props["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(
            {(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]},
            {("pk", "HASH"), ("sk", "RANGE")},
        )
        self.assertEqual(
            {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]},
            {("pk", "S"), ("sk", "S")},
        )
        self.assertEqual(
            props["TimeToLiveSpecification"], {"AttributeName": "expires_at", "Enabled": True}
        )


def json_values(value) -> list:
    """Every leaf/dict inside an intrinsic-function tree, for membership tests."""
    found = [value]
    if isinstance(value, dict):
        for v in value.values():
            found.extend(json_values(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(json_values(v))
    return found


# --------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------

class IamPolicyTest(unittest.TestCase):
    def setUp(self):
        self.policy = json.loads(IAM_POLICY.read_text())
        self.statements = as_list(self.policy["Statement"])
        self.exceptions = documented_wildcard_exceptions()

    def test_statements_are_plain_allows(self):
        self.assertEqual(self.policy.get("Version"), "2012-10-17")
        for stmt in self.statements:
            self.assertEqual(stmt.get("Effect"), "Allow", stmt)
            for key in ("NotAction", "NotResource", "NotPrincipal", "Principal"):
                self.assertNotIn(key, stmt, f"{key} has no place in this policy: {stmt}")
            for action in statement_actions(stmt):
                self.assertNotIn("*", action, f"wildcard action {action!r}")

    def test_actions_are_exactly_the_daemons_calls(self):
        actions = set().union(*(statement_actions(s) for s in self.statements))
        self.assertEqual(actions, EXPECTED_ACTIONS)

    def test_wildcard_resources_only_for_documented_exceptions(self):
        self.assertTrue(self.exceptions, "no exceptions parsed from deploy/README.md")
        for stmt in self.statements:
            resources = as_list(stmt["Resource"])
            if any(is_wildcard(r) for r in resources):
                self.assertEqual(resources, ["*"], f"'*' mixed with ARNs: {stmt}")
                extra = statement_actions(stmt) - self.exceptions
                self.assertFalse(
                    extra, f"{sorted(extra)} granted on '*' but not documented in deploy/README.md"
                )
        wildcard, _ = wildcard_and_scoped(self.statements)
        self.assertEqual(
            wildcard, self.exceptions,
            "deploy/README.md's exception table and the policy disagree",
        )

    def test_scoped_resources_name_the_log_group_and_topic(self):
        for stmt in self.statements:
            resources = as_list(stmt["Resource"])
            if resources == ["*"]:
                continue
            for action in statement_actions(stmt):
                for arn in resources:
                    if action.startswith("logs:"):
                        self.assertRegex(
                            arn,
                            rf"^arn:aws:logs:[^:]+:[^:]+:log-group:{re.escape(OKTA_LOG_GROUP)}(:\*)?$",
                        )
                    elif action.startswith("sns:"):
                        self.assertRegex(arn, rf"^arn:aws:sns:[^:]+:[^:]+:{re.escape(ALERT_TOPIC)}$")
                    elif action.startswith("dynamodb:"):
                        self.assertRegex(
                            arn, rf"^arn:aws:dynamodb:[^:]+:[^:]+:table/{re.escape(HA_TABLE)}$"
                        )
                    else:
                        self.fail(f"unexpected service in {action}")

    def test_wildcards_agree_with_service_authorization_data(self):
        """cfn-lint ships the IAM reference data (resource types per action).
        An action with no resource type must be a documented '*' exception;
        an action with one must be scoped."""
        data = json.loads(
            importlib.resources.files("cfnlint.data.AdditionalSpecs")
            .joinpath("Policies.json")
            .read_text()
        )
        wildcard, scoped = wildcard_and_scoped(self.statements)
        for action in sorted(EXPECTED_ACTIONS):
            service, name = action.split(":")
            entry = data[service]["Actions"][name.lower()]
            has_resource_type = bool(entry.get("Resources"))
            if has_resource_type:
                self.assertIn(action, scoped, f"{action} supports resource-level permissions")
                self.assertNotIn(action, wildcard, f"{action} supports resource-level permissions")
            else:
                self.assertIn(action, wildcard, f"{action} has no resource type; it needs '*'")

    def test_policy_passes_cfn_lint_iam_rules(self):
        """Run the standalone policy through cfn-lint's IAM policy rules
        (valid actions, ARN syntax), with the placeholders filled in."""
        cfn_lint = find_venv_tool("cfn-lint")
        self.assertIsNotNone(cfn_lint, "cfn-lint not found in the venv")
        filled = json.loads(
            IAM_POLICY.read_text().replace("REGION", "us-east-1").replace("ACCOUNT_ID", "123456789012")
        )
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "AuthpulsePolicy": {
                    "Type": "AWS::IAM::ManagedPolicy",
                    "Properties": {"PolicyDocument": filled},
                }
            },
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "policy-template.json"
            path.write_text(json.dumps(template))
            result = run([cfn_lint, "--", path])
        self.assertEqual(result.returncode, 0, f"{result.stdout}{result.stderr}")

    def test_cloudformation_role_grants_the_same(self):
        role = load_cfn()["Resources"]["AuthpulseTaskRole"]
        self.assertEqual(role["Type"], "AWS::IAM::Role")
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual(
            {p for s in trust for p in as_list(s["Principal"]["Service"])},
            {"ecs-tasks.amazonaws.com"},
        )
        self.assertNotIn("ManagedPolicyArns", role["Properties"])
        (inline,) = role["Properties"]["Policies"]
        cfn_statements = as_list(inline["PolicyDocument"]["Statement"])
        for stmt in cfn_statements:
            self.assertEqual(stmt["Effect"], "Allow")
        cfn_actions = set().union(*(statement_actions(s) for s in cfn_statements))
        self.assertEqual(cfn_actions, EXPECTED_ACTIONS)
        # Same split between '*' and scoped actions as deploy/iam-policy.json.
        self.assertEqual(wildcard_and_scoped(cfn_statements), wildcard_and_scoped(self.statements))
        for stmt in cfn_statements:
            resources = as_list(stmt["Resource"])
            if resources == ["*"]:
                continue
            for action in statement_actions(stmt):
                if action.startswith("logs:"):
                    for r in resources:
                        sub = r.get("Fn::Sub") if isinstance(r, dict) else None
                        self.assertTrue(
                            r == {"Fn::GetAtt": ["OktaLogGroup", "Arn"]}
                            or (isinstance(sub, str) and sub.endswith(":log-group:${LogGroupName}")),
                            f"{action} resource {r!r} is not the stack's log group",
                        )
                elif action.startswith("sns:"):
                    self.assertEqual(resources, [{"Ref": "AlertTopic"}])
                elif action.startswith("dynamodb:"):
                    self.assertEqual(resources, [{"Fn::GetAtt": ["HaTable", "Arn"]}])
                else:
                    self.fail(f"unexpected service in {action}")


# --------------------------------------------------------------------------
# ECS
# --------------------------------------------------------------------------

SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|CREDENTIAL|ACCESS_KEY|API_KEY", re.I)


class EcsTaskDefinitionTest(unittest.TestCase):
    def setUp(self):
        self.taskdef = json.loads(ECS_TASKDEF.read_text())
        (self.container,) = [
            c for c in self.taskdef["containerDefinitions"] if c["name"] == "authpulse"
        ]

    def test_valid_register_task_definition_input(self):
        import botocore.session
        from botocore.validate import validate_parameters

        model = botocore.session.get_session().get_service_model("ecs")
        shape = model.operation_model("RegisterTaskDefinition").input_shape
        validate_parameters(self.taskdef, shape)  # raises on unknown or mistyped fields

    def test_fargate_and_roles(self):
        self.assertEqual(self.taskdef["requiresCompatibilities"], ["FARGATE"])
        self.assertEqual(self.taskdef["networkMode"], "awsvpc")
        self.assertRegex(self.taskdef["taskRoleArn"], r"^arn:aws:iam::[^:]+:role/.+")
        self.assertRegex(self.taskdef["executionRoleArn"], r"^arn:aws:iam::[^:]+:role/.+")
        self.assertNotEqual(self.taskdef["taskRoleArn"], self.taskdef["executionRoleArn"])

    def test_health_check_uses_the_binary(self):
        hc = self.container["healthCheck"]
        self.assertEqual(
            hc["command"],
            ["CMD", "/usr/local/bin/authpulse", "healthcheck", "--url",
             "http://127.0.0.1:9750/healthz"],
            "the image has no shell: CMD form with the healthcheck subcommand",
        )
        self.assertGreaterEqual(hc.get("startPeriod", 0), 60)

    def test_non_root_and_read_only(self):
        user = self.container.get("user", "")
        self.assertTrue(user, "container must set a user")
        uid = user.split(":")[0]
        self.assertNotIn(uid, ("0", "root"))
        self.assertIs(self.container.get("readonlyRootFilesystem"), True)
        self.assertIs(self.container.get("privileged", False), False)
        self.assertEqual(
            self.container.get("linuxParameters", {}).get("capabilities", {}).get("drop"), ["ALL"]
        )

    def test_awslogs(self):
        logging = self.container["logConfiguration"]
        self.assertEqual(logging["logDriver"], "awslogs")
        self.assertEqual(logging["options"]["awslogs-group"], "/ecs/authpulse")
        self.assertIn("awslogs-region", logging["options"])
        self.assertIn("awslogs-stream-prefix", logging["options"])

    def test_secrets_only_by_reference(self):
        secrets = self.container.get("secrets", [])
        self.assertIn("AUTHPULSE_WEBHOOK_SECRET", [s["name"] for s in secrets])
        for secret in secrets:
            self.assertEqual(set(secret), {"name", "valueFrom"})
            self.assertRegex(
                secret["valueFrom"],
                r"^arn:aws:(secretsmanager:[^:]+:[^:]+:secret:|ssm:[^:]+:[^:]+:parameter/).+",
            )
        for env in self.container.get("environment", []):
            self.assertNotRegex(
                env["name"], SECRETISH, f"{env['name']} looks secret: use `secrets` instead"
            )

    def test_config_overrides_and_state_volume(self):
        env = {e["name"]: e["value"] for e in self.container["environment"]}
        self.assertEqual(env.get("AUTHPULSE__DAEMON__HTTP_LISTEN"), "0.0.0.0:9750")
        self.assertEqual(env.get("AUTHPULSE__DAEMON__STATE_DIR"), STATE_DIR)
        self.assertEqual(env.get("AUTHPULSE__SOURCE__KIND"), "cloudwatch")
        mounts = {m["containerPath"]: m for m in self.container["mountPoints"]}
        self.assertIn(STATE_DIR, mounts)
        self.assertFalse(mounts[STATE_DIR].get("readOnly", False))
        volumes = {v["name"] for v in self.taskdef["volumes"]}
        self.assertIn(mounts[STATE_DIR]["sourceVolume"], volumes)
        self.assertIn(9750, [p["containerPort"] for p in self.container["portMappings"]])

    def test_stop_timeout(self):
        self.assertGreaterEqual(self.container.get("stopTimeout", 0), 15)
        self.assertLessEqual(self.container["stopTimeout"], 120)  # Fargate maximum

    def test_replicas_share_the_stacks_table(self):
        env = {e["name"]: e["value"] for e in self.container["environment"]}
        self.assertEqual(env.get("AUTHPULSE__HA__TABLE"), HA_TABLE)
        # The stack creates the table; the role has no dynamodb:CreateTable.
        self.assertEqual(env.get("AUTHPULSE__HA__CREATE_TABLE"), "false")

    def test_readme_runs_two_tasks_with_the_default_rolling_deployment(self):
        text = DEPLOY_README.read_text()
        commands = re.findall(r"aws ecs create-service.*?(?:\n\n|```)", text, re.S)
        self.assertEqual(len(commands), 1, commands)
        self.assertIn("--desired-count 2", commands[0])
        # The defaults (maximumPercent 200, minimumHealthyPercent 100): no override.
        self.assertNotIn("--deployment-configuration", commands[0])


# --------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------

def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Minimal unit-file parser: section -> key -> list of values."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_paths(unit: dict) -> set[str]:
    """Absolute executable paths of all Exec*= lines (prefixes stripped)."""
    paths = set()
    for key, values in unit.get("Service", {}).items():
        if key.startswith("Exec"):
            for value in values:
                if value:
                    paths.add(value.split()[0].lstrip("-@:+!"))
    return paths


class SystemdUnitDirectivesTest(unittest.TestCase):
    """Static checks that need no systemd."""

    def setUp(self):
        self.unit = parse_unit(UNIT)
        self.svc = self.unit["Service"]

    def one(self, key):
        self.assertIn(key, self.svc)
        return self.svc[key][-1]

    def test_lifecycle(self):
        self.assertEqual(self.one("Type"), "notify")
        self.assertEqual(self.one("NotifyAccess"), "main")
        self.assertTrue(self.one("WatchdogSec"))
        self.assertEqual(self.one("Restart"), "on-failure")
        self.assertEqual(self.one("ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(
            self.one("ExecStart"),
            "/usr/local/bin/authpulse run --config /etc/authpulse/authpulse.toml",
        )
        self.assertIn(
            "/usr/local/bin/authpulse check-config /etc/authpulse/authpulse.toml",
            self.svc["ExecStartPre"],
        )

    def test_identity_state_and_secrets(self):
        self.assertEqual(self.one("DynamicUser"), "yes")
        self.assertEqual(self.one("StateDirectory"), "authpulse")
        self.assertIn(f"AUTHPULSE__DAEMON__STATE_DIR={STATE_DIR}", self.svc["Environment"])
        self.assertIn("-/etc/authpulse/authpulse.env", self.svc["EnvironmentFile"])
        self.assertEqual(self.one("UMask"), "0077")

    def test_sandbox_basics(self):
        expected = {
            "ProtectSystem": "strict",
            "NoNewPrivileges": "yes",
            "CapabilityBoundingSet": "",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
            "SystemCallArchitectures": "native",
            "PrivateDevices": "yes",
            "PrivateTmp": "yes",
            "MemoryDenyWriteExecute": "yes",
            "LockPersonality": "yes",
        }
        for key, value in expected.items():
            self.assertEqual(self.one(key), value, key)
        self.assertIn("@system-service", self.svc["SystemCallFilter"])
        # Egress to AWS and webhooks must not be blocked wholesale.
        for deny in self.svc.get("IPAddressDeny", []):
            self.assertNotIn("any", deny.split(), "IPAddressDeny=any would cut off AWS")


class SystemdAnalyzeTest(unittest.TestCase):
    """systemd-analyze verify + security. The only tests allowed to skip,
    and only because systemd-analyze is absent."""

    @classmethod
    def setUpClass(cls):
        cls.analyze = shutil.which("systemd-analyze")
        if cls.analyze is None:
            reason = "systemd-analyze not found on PATH; systemd unit not verified"
            print(f"\nSKIP: {reason}", file=sys.stderr)
            raise unittest.SkipTest(reason)

    def test_verify(self):
        """`systemd-analyze verify` checks that every Exec*= binary exists and
        is executable; /usr/local/bin/authpulse isn't installed here. So build
        a throw-away root with the unchanged unit, the host's own unit
        directory (for network-online.target etc.) and executable stubs at the
        Exec paths, and verify inside it with --root."""
        unit = parse_unit(UNIT)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            unit_dir = root / "etc/systemd/system"
            unit_dir.mkdir(parents=True)
            shutil.copy2(UNIT, unit_dir / UNIT.name)
            for system_dir in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
                if system_dir.is_dir():
                    shutil.copytree(
                        system_dir, root / "usr/lib/systemd/system", symlinks=True,
                        dirs_exist_ok=True,
                    )
                    break
            for exe in exec_paths(unit):
                stub = root / exe.lstrip("/")
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\nexit 0\n")
                stub.chmod(0o755)
            result = run([self.analyze, "verify", f"--root={root}", UNIT.name])
        output = (result.stdout + result.stderr).strip()
        about_unit = [line for line in output.splitlines() if "authpulse" in line]
        self.assertEqual(result.returncode, 0, f"systemd-analyze verify failed:\n{output}")
        # verify exits 0 on unknown keys or unparsable values; it only warns.
        self.assertEqual(about_unit, [], f"systemd-analyze verify warned:\n{output}")

    def test_security_exposure(self):
        result = run([self.analyze, "security", "--offline=true", "--no-pager", UNIT])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
        self.assertIsNotNone(match, f"no overall exposure line in:\n{output}")
        score = float(match.group(1))
        print(f"\nsystemd-analyze security: overall exposure {score}", file=sys.stderr)
        self.assertLessEqual(score, MAX_EXPOSURE, output)
        # Same limit through systemd's own threshold (scale 0..100).
        threshold = run(
            [self.analyze, "security", "--offline=true", "--no-pager",
             f"--threshold={int(MAX_EXPOSURE * 10)}", UNIT]
        )
        self.assertEqual(threshold.returncode, 0, threshold.stdout + threshold.stderr)


# --------------------------------------------------------------------------
# config template, env example, Dockerfile
# --------------------------------------------------------------------------

class ConfigFilesTest(unittest.TestCase):
    def test_config_template(self):
        config = tomllib.loads(CONFIG_TEMPLATE.read_text())
        self.assertEqual(config["daemon"]["state_dir"], STATE_DIR)
        self.assertIn(config["daemon"]["log_format"], ("json", "text"))
        self.assertEqual(config["source"]["kind"], "cloudwatch")
        self.assertIn(OKTA_LOG_GROUP, config["source"]["log_groups"])
        self.assertTrue(config["sinks"])
        for sink in config["sinks"]:
            self.assertIn(sink["kind"], ("sns", "webhook"))
            if sink["kind"] == "sns":
                self.assertTrue(sink["topic_arn"].endswith(f":{ALERT_TOPIC}"))
            else:
                self.assertIn("secret_env", sink)
            for key in sink:
                self.assertFalse(
                    SECRETISH.search(key) and key != "secret_env",
                    f"literal secret key {key!r} in a sink",
                )

    def test_env_example_assigns_no_secret(self):
        for number, raw in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            self.assertTrue(sep, f"line {number} is not KEY=value")
            if SECRETISH.search(name):
                self.assertEqual(value, "", f"line {number} assigns a secret")

    def test_dockerfile(self):
        text = DOCKERFILE.read_text()
        froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
        self.assertEqual(len(froms), 2, "multi-stage: builder + runtime")
        self.assertRegex(froms[0], r"^rust:1(\.\d+)*-slim-bookworm$")
        self.assertEqual(froms[-1], "gcr.io/distroless/cc-debian12:nonroot")
        self.assertRegex(text, r"cargo build --release --locked")
        self.assertIn('ENTRYPOINT ["/usr/local/bin/authpulse"]', text)
        self.assertIn('CMD ["run", "--config", "/etc/authpulse/authpulse.toml"]', text)
        self.assertRegex(
            text, r'HEALTHCHECK[^\n]*\\\n\s*CMD \["/usr/local/bin/authpulse", "healthcheck"'
        )
        self.assertIn("EXPOSE 9750", text)
        self.assertIn(f'VOLUME ["{STATE_DIR}"]', text)
        self.assertRegex(text, rf"--chown=65532:65532 \S+ {re.escape(STATE_DIR)}")
        users = re.findall(r"^USER\s+(\S+)", text, re.M)
        self.assertTrue(users and users[-1].split(":")[0] not in ("0", "root"))
        ignore = (REPO / ".dockerignore").read_text().split()
        for entry in ("target", ".venv", ".git"):
            self.assertIn(entry, ignore)


if __name__ == "__main__":
    unittest.main()
