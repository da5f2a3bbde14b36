"""The bot's role as code (deploy/iam-user-bot-role.yaml): it lints clean, deploys into moto
server's CloudFormation, and the role it makes holds exactly the policy ``iam-user-bot policy bot``
generates for the same settings, with the trust the README promises. Its Rules (no boundary only
when NoBoundary=true says so) and its group-ARN pattern (never every group) are evaluated here,
because moto's CloudFormation evaluates neither."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode_str

from bot.domain.bot_policy import BOUNDARY_ARN, PolicyScope, bot_policy

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "iam-user-bot-role.yaml"
ACCOUNT = "123456789012"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


def as_document(value: Any) -> dict[str, Any]:
    """A policy document as moto returns it: a dict, URL-encoded JSON, or (for a policy that
    CloudFormation made) the Python repr of a dict."""
    if isinstance(value, dict):
        return value
    text = unquote(value)
    return json.loads(text) if text.startswith('{"') else ast.literal_eval(text)


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """Statements by Sid, with one-item lists and strings (and list order) made alike."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
        return value

    return {s["Sid"]: norm(s) for s in document["Statement"]}


def test_the_template_passes_cfn_lint() -> None:
    matches = lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


def deploy(moto_server: Any, name: str, parameters: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create the stack; ``(the role's inline policy, its trust policy)`` as IAM holds them."""
    cloudformation = moto_server.boto3_client("cloudformation")
    iam = moto_server.boto3_client("iam")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    (output,) = stack["Outputs"]
    role_name = parameters["RoleName"]
    role = iam.get_role(RoleName=role_name)["Role"]
    assert output["OutputValue"] == role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    policy = as_document(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"])
    return policy, as_document(role["AssumeRolePolicyDocument"])


def test_deployed_with_defaults_the_role_holds_the_generated_policy(moto_server) -> None:
    # moto does not split a CommaDelimitedList parameter's *default* into a list (CloudFormation
    # does), so the trusted services are passed, as their default.
    # NoBoundary=true: CloudFormation's Rules refuse the defaults otherwise (moto evaluates no Rule;
    # the tests below evaluate them).
    defaults = {
        "RoleName": "iam-user-bot-defaults",
        "TrustedServices": "ecs-tasks.amazonaws.com,lambda.amazonaws.com",
        "NoBoundary": "true",
    }
    policy, trust = deploy(moto_server, "bot-defaults", defaults)
    assert normalized(policy) == normalized(bot_policy(PolicyScope(account=ACCOUNT)))
    (services,) = trust["Statement"]
    assert services["Principal"] == {"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]}
    assert services["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_deployed_with_boundary_allow_lists_and_eks_the_role_is_scoped_by_them(moto_server) -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary"
    allowed = ("arn:aws:iam::aws:policy/ReadOnlyAccess", f"arn:aws:iam::{ACCOUNT}:policy/app-*")
    policy, trust = deploy(
        moto_server,
        "bot-scoped",
        {
            "RoleName": "iam-user-bot-scoped",
            "PermissionsBoundaryArn": boundary,
            "AllowedGroupArns": f"arn:aws:iam::{ACCOUNT}:group/developers,arn:aws:iam::{ACCOUNT}:group/teams/*",
            "AllowedPolicyArns": ",".join(allowed),
            "TrustedServices": "ecs-tasks.amazonaws.com",
            "EksOidcProvider": ISSUER,
            "EksServiceAccount": "tools:iam-user-bot",
        },
    )
    scope = PolicyScope(account=ACCOUNT, boundary_arn=boundary, groups=("developers", "/teams/"), policy_arns=allowed)
    assert normalized(policy) == normalized(bot_policy(scope))
    services, kubernetes = trust["Statement"]
    assert services["Principal"] == {"Service": ["ecs-tasks.amazonaws.com"]}
    assert kubernetes["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert kubernetes["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"}
    assert kubernetes["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:tools:iam-user-bot",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    }


def template() -> dict[str, Any]:
    decoded, problems = decode_str(TEMPLATE.read_text())
    assert not problems and decoded is not None
    return dict(decoded)


def evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """A Rules assertion as CloudFormation evaluates it, for the functions the template uses."""
    if not isinstance(expression, dict):
        return expression
    ((function, value),) = expression.items()
    if function == "Ref":
        return parameters[value]
    args = [evaluate(v, parameters) for v in value]
    if function == "Fn::Equals":
        return args[0] == args[1]
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::Or":
        return any(args)
    if function == "Fn::And":
        return all(args)
    raise AssertionError(f"no evaluator for {function}")


def refusals(**given: str) -> list[str]:
    """The AssertDescriptions of every Rule assertion that fails for these parameter values."""
    document = template()
    parameters = {name: str(p.get("Default", "")) for name, p in document["Parameters"].items()} | given
    return [
        assertion["AssertDescription"]
        for rule in document["Rules"].values()
        if evaluate(rule.get("RuleCondition", True), parameters)
        for assertion in rule["Assertions"]
        if not evaluate(assertion["Assert"], parameters)
    ]


def test_the_stack_refuses_no_boundary_unless_no_boundary_is_accepted_in_words() -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary"
    (refused,) = refusals()  # the defaults: no boundary, not accepted
    assert refused.startswith("Set PermissionsBoundaryArn.") and "account administrator" in refused
    assert refusals(NoBoundary="true") == []
    assert refusals(PermissionsBoundaryArn=boundary) == []
    (contradiction,) = refusals(PermissionsBoundaryArn=boundary, NoBoundary="true")
    assert "contradict" in contradiction
    described = template()["Parameters"]["PermissionsBoundaryArn"]["Description"]
    assert "administrator" in described and "NoBoundary" in described


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        (f"arn:aws:iam::{ACCOUNT}:group/developers", True),
        (f"arn:aws:iam::{ACCOUNT}:group/teams/*", True),
        (f"arn:aws:iam::{ACCOUNT}:group/teams/data/*", True),
        (f"arn:aws-us-gov:iam::{ACCOUNT}:group/developers", True),
        (f"arn:aws:iam::{ACCOUNT}:group/*", False),  # every group of the account, Admins included
        (f"arn:aws:iam::{ACCOUNT}:group*", False),
        (f"arn:aws:iam::{ACCOUNT}:group/", False),
        (f"arn:aws:iam::{ACCOUNT}:group/dev*", False),
        ("arn:aws:iam::*:group/developers", False),
        ("*", False),
    ],
)
def test_allowed_group_arns_never_take_every_group(value: str, allowed: bool) -> None:
    # CloudFormation matches a CommaDelimitedList's AllowedPattern against each of its values.
    pattern = template()["Parameters"]["AllowedGroupArns"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is allowed


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        (f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary", True),
        ("arn:aws:iam::aws:policy/PowerUserAccess", True),
        (f"arn:aws:iam::{ACCOUNT}:policy/team/Boundary", True),
        ("arn:aws:iam::*:policy/*", False),
        (f"arn:aws:iam::{ACCOUNT}:policy/Dev?", False),
    ],
)
def test_the_boundary_parameter_takes_one_policy_never_a_wildcard(value: str, allowed: bool) -> None:
    # The boundary condition is ArnEquals, where * and ? are wildcards: any policy would pass.
    pattern = template()["Parameters"]["PermissionsBoundaryArn"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is allowed
    assert bool(BOUNDARY_ARN.fullmatch(value)) is (allowed and value != "")  # the CLI's rule is the same
