"""The catalog and the options handlers over well over 1,500 managed policies.

Two sources: IAM itself (moto in-process with AWS's managed policies loaded, plus 520 customer
managed policies, read with full pagination by ``IamGateway.load_catalog``), and a synthetic
account with long paths (ARNs beyond Slack's 150 characters). The handlers are driven through
Bolt with signed requests, as Slack sends ``block_suggestion``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.signature import SignatureVerifier

from bot.aws.catalog import POLICY_KEY_PREFIX, Catalog, CatalogSnapshot, ManagedPolicy, policy_value
from bot.aws.iam import IamGateway
from bot.aws.typeahead import Typeahead
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import PasswordPolicy
from handlers import options

SIGNING_SECRET = "test-signing-secret-0123456789"
CUSTOMER_POLICIES = 520


@pytest.fixture(scope="module")
def moto_catalog() -> Catalog:
    """A catalog loaded from in-process moto: AWS managed policies + 520 customer managed ones."""
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        iam = boto3.client("iam", region_name="us-east-1")
        sts = boto3.client("sts", region_name="us-east-1")
        document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*",
                                                                        "Resource": "*"}]})  # fmt: skip
        for i in range(CUSTOMER_POLICIES):
            iam.create_policy(PolicyName=f"team-{i:03d}-ReadOnly", PolicyDocument=document, Path=f"/teams/t{i % 7}/")
        for name in ("developers", "Admins", "data-platform"):
            iam.create_group(GroupName=name)
        for name in ("template.dev", "Template.Ops", "alice"):
            iam.create_user(UserName=name)
        iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True)
        summary = iam.get_account_summary()
        # moto cannot raise a quota; a raised one (as AWS grants on request) must be what is read.
        summary["SummaryMap"]["AttachedPoliciesPerUserQuota"] = 20
        iam.get_account_summary = lambda: summary
        catalog = Catalog(IamGateway(iam, sts).load_catalog)
        catalog.refresh()
    return catalog


def synthetic_catalog(aws: int = 1200, customer: int = 600) -> Catalog:
    """An account with long policy paths: some ARNs exceed Slack's 150-character option value."""
    policies = [
        ManagedPolicy(
            name=f"AWSService{i:04d}Policy",
            arn=f"arn:aws:iam::aws:policy/service-role/AWSService{i:04d}Policy",
            aws_managed=True,
        )
        for i in range(aws)
    ]
    long_path = "/" + "/".join(["department-of-long-names"] * 5) + "/"
    policies += [
        ManagedPolicy(
            name=f"Customer{i:04d}" + ("X" * 90 if i % 50 == 0 else ""),
            arn=f"arn:aws:iam::123456789012:policy{long_path if i % 3 == 0 else '/'}Customer{i:04d}"
            + ("X" * 90 if i % 50 == 0 else ""),
            aws_managed=False,
        )
        for i in range(customer)
    ]
    snapshot = CatalogSnapshot(
        user_names=tuple(f"user{i}" for i in range(300)),
        group_names=tuple(f"Group{i}" for i in range(300)),
        loaded_at=time.time(),
        policies=tuple(policies),
    )
    catalog = Catalog(lambda: snapshot)
    catalog.refresh()
    return catalog


def bolt_app(catalog: Catalog) -> App:
    def authorize(team_id: str | None = None, **_: Any) -> AuthorizeResult:
        # No Web API call at all (not even auth.test): options answers come from the catalog.
        return AuthorizeResult(enterprise_id=None, team_id=team_id, bot_token="xoxb-unused", bot_user_id="UBOT")

    app = App(signing_secret=SIGNING_SECRET, authorize=authorize, process_before_response=True)
    # From memory only (no IAM behind it): what the menus answer before any read after a search.
    typeahead = Typeahead(catalog, None, None, None, interval_seconds=300)
    options.register(app, SimpleNamespace(typeahead=typeahead))  # type: ignore[arg-type]
    return app


def suggest(app: App, action_id: str, query: str) -> dict[str, Any]:
    """A signed ``block_suggestion`` for ``action_id`` with ``query``; the parsed answer."""
    payload = {
        "type": "block_suggestion",
        "user": {"id": "U0REQUEST1"},
        "team": {"id": "T0"},
        "api_app_id": "A0",
        "container": {"type": "view", "view_id": "V1"},
        "action_id": action_id,
        "block_id": action_id,
        "value": query,
        "view": {"id": "V1", "type": "modal", "blocks": []},
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "content-type": ["application/x-www-form-urlencoded"],
        "x-slack-request-timestamp": [ts],
        "x-slack-signature": [signature],
    }
    response = app.dispatch(BoltRequest(body=body, headers=headers))
    assert response.status == 200, response.body
    return json.loads(response.body)


def flat(answer: dict[str, Any]) -> list[dict[str, Any]]:
    if "option_groups" in answer:
        return [o for g in answer["option_groups"] for o in g["options"]]
    return answer["options"]


def assert_slack_limits(answer: dict[str, Any]) -> None:
    opts = flat(answer)
    assert len(opts) <= 100
    assert len(answer.get("option_groups", [])) <= 100
    for option in opts:
        assert 1 <= len(option["text"]["text"]) <= 75 and option["text"]["type"] == "plain_text"
        assert 1 <= len(option["value"]) <= 150
    for group in answer.get("option_groups", []):
        assert group["options"], "Slack refuses an empty option group"
        assert len(group["label"]["text"]) <= 75


def test_load_catalog_paginates_everything_and_reads_the_account(moto_catalog: Catalog) -> None:
    snapshot = moto_catalog.snapshot
    customer = [p for p in snapshot.policies if not p.aws_managed]
    aws = [p for p in snapshot.policies if p.aws_managed]
    assert len(customer) == CUSTOMER_POLICIES
    assert len(aws) > 1000  # moto ships AWS's list; 100 a page, so this took many pages
    assert len(snapshot.policies) > 1500
    assert {"ReadOnlyAccess", "AdministratorAccess", "IAMUserChangePassword"} <= {p.name for p in aws}
    assert set(snapshot.group_names) == {"developers", "Admins", "data-platform"}
    assert moto_catalog.password_policy.minimum_length == 14 and moto_catalog.password_policy.require_symbols
    assert not moto_catalog.password_policy.is_default
    assert moto_catalog.quotas == AccountQuotas(attached_policies_per_user=20, groups_per_user=10)
    assert moto_catalog.account_id == "123456789012"


def test_policy_menu_over_the_real_list(moto_catalog: Catalog) -> None:
    app = bolt_app(moto_catalog)
    everything = suggest(app, "policies", "")
    assert_slack_limits(everything)
    labels = [g["label"]["text"] for g in everything["option_groups"]]
    assert labels == ["Customer managed", "AWS managed"]
    assert len(flat(everything)) == 100

    # Case-insensitive on the name; prefix matches first.
    read_only = suggest(app, "policies", "readonly")
    assert_slack_limits(read_only)
    aws_names = [o["text"]["text"] for o in read_only["option_groups"][1]["options"]]
    assert aws_names[0] == "ReadOnlyAccess"
    assert all("readonly" in name.lower() for name in aws_names)
    customer = [o["text"]["text"] for o in read_only["option_groups"][0]["options"]]
    assert customer and all(n.startswith("team-") for n in customer)

    # Only AWS managed matches: one group. Only customer matches: one group.
    only_aws = suggest(app, "policies", "AdministratorAccess")
    assert [g["label"]["text"] for g in only_aws["option_groups"]] == ["AWS managed"]
    only_ours = suggest(app, "permissions_boundary", "TEAM-519")
    assert only_ours == {
        "option_groups": [
            {
                "label": {"type": "plain_text", "text": "Customer managed"},
                "options": [
                    {
                        "text": {"type": "plain_text", "text": "team-519-ReadOnly"},
                        "value": "arn:aws:iam::123456789012:policy/teams/t1/team-519-ReadOnly",
                    }
                ],
            }
        ]
    }
    # No match: an empty list, not an error.
    assert suggest(app, "policies", "no-such-policy-anywhere") == {"options": []}


def test_every_offered_value_maps_back_to_its_policy(moto_catalog: Catalog) -> None:
    app = bolt_app(moto_catalog)
    for query in ("", "a", "team", "Access", "role"):
        for option in flat(suggest(app, "policies", query)):
            policy = moto_catalog.policy_for_value(option["value"])
            assert policy is not None and policy.name.startswith(option["text"]["text"].rstrip("…"))


def test_user_and_group_menus(moto_catalog: Catalog) -> None:
    app = bolt_app(moto_catalog)
    assert [o["value"] for o in flat(suggest(app, "copy_from_user", "TEMPLATE"))] == ["template.dev", "Template.Ops"]
    assert [o["value"] for o in flat(suggest(app, "groups", "dev"))] == ["developers"]
    assert [o["value"] for o in flat(suggest(app, "groups", "A"))] == ["Admins", "data-platform"]
    assert suggest(app, "groups", "zzz") == {"options": []}
    assert suggest(app, "copy_from_user", "nobody") == {"options": []}


def test_long_arns_get_short_keys_and_both_kinds_keep_room() -> None:
    catalog = synthetic_catalog()
    app = bolt_app(catalog)
    answer = suggest(app, "policies", "")
    assert_slack_limits(answer)
    groups = {g["label"]["text"]: g["options"] for g in answer["option_groups"]}
    assert len(groups["Customer managed"]) == 50 and len(groups["AWS managed"]) == 50
    customer = suggest(app, "policies", "customer")
    assert_slack_limits(customer)
    values = [o["value"] for o in flat(customer)]
    assert len(values) == 100
    keyed = [v for v in values if v.startswith(POLICY_KEY_PREFIX)]
    assert keyed, "the long ARNs must be offered under a short key"
    for value in keyed:
        policy = catalog.policy_for_value(value)
        assert policy is not None and len(policy.arn) > 150 and policy_value(policy.arn) == value
    long_name = next(o for o in flat(customer) if o["text"]["text"].endswith("…"))
    assert len(long_name["text"]["text"]) == 75


def test_menus_answer_empty_before_the_first_load() -> None:
    catalog = Catalog(lambda: (_ for _ in ()).throw(RuntimeError("IAM unreachable")))
    catalog.refresh()  # fails: logged, nothing loaded
    app = bolt_app(catalog)
    assert suggest(app, "policies", "read") == {"options": []}
    assert suggest(app, "groups", "") == {"options": []}
    assert not catalog.loaded


def test_refresh_failure_keeps_the_previous_copy() -> None:
    answers = [
        CatalogSnapshot(user_names=("a",), group_names=("g1",), loaded_at=1.0, password_policy=PasswordPolicy()),
        RuntimeError("throttled"),
    ]

    def loader() -> CatalogSnapshot:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    catalog = Catalog(loader)
    catalog.refresh()
    catalog.refresh()
    assert catalog.search_groups("") == ["g1"] and catalog.user_names_lower() == {"a"}
