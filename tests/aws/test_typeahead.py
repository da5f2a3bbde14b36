"""Fresh typeahead (bot.aws.typeahead) against IAM (moto in-process): what someone creates in IAM
after the catalog was loaded is offered, an exact name at once and anything else after one read
of its kind; such reads are rate-limited; and the workers of one server read IAM once between
them (bot.aws.catalog_share)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.aws.catalog import Catalog, CatalogSnapshot, ManagedPolicy
from bot.aws.catalog_share import CatalogShare, from_json, to_json
from bot.aws.iam import IamGateway
from bot.aws.live import LiveIam
from bot.aws.typeahead import Typeahead
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import PasswordPolicy
from tests.support.moto_iam import mock_iam_with_some_aws_policies

DOCUMENT = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}
)


class Calls(Counter):
    """IAM operations made through a client, counted (botocore's before-call event), and the
    names ``GetUser`` was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.users_asked: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self[model.name] += 1
        if model.name == "GetUser":
            self.users_asked.append(params.get("UserName", ""))


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_iam_with_some_aws_policies(monkeypatch):
        client = boto3.client("iam", region_name="us-east-1")
        for i in range(30):
            client.create_user(UserName=f"staff{i:02d}")
        client.create_group(GroupName="developers")
        client.create_policy(PolicyName="team-read", PolicyDocument=DOCUMENT)
        yield client


def bot_side(iam: Any, share: CatalogShare | None = None) -> tuple[Typeahead, Calls]:
    """A catalog with its typeahead, as one worker builds them, and the calls its client makes."""
    calls = Calls()
    client = boto3.client("iam", region_name="us-east-1")
    client.meta.events.register("before-parameter-build.iam", calls)
    gateway = IamGateway(client, boto3.client("sts", region_name="us-east-1"), sleep=lambda _s: None)
    catalog = Catalog(gateway.load_catalog)
    return Typeahead(catalog, gateway, LiveIam(gateway), share, interval_seconds=300), calls


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_an_exact_name_created_after_the_load_is_offered_at_once(iam: Any) -> None:
    typeahead, calls = bot_side(iam)
    typeahead.refresh()
    iam.create_user(UserName="Nina.Late")
    iam.create_group(GroupName="late-group")
    iam.create_policy(PolicyName="late-policy", PolicyDocument=DOCUMENT)

    assert typeahead.users("Nina.Late")[0] == "Nina.Late"
    assert typeahead.groups("late-group") == ["late-group"]
    assert [p.name for p in typeahead.policies("late-policy").customer_managed] == ["late-policy"]
    assert calls.users_asked == ["Nina.Late"] and calls["GetGroup"] == 1
    # Now in memory: the exact name needs no lookup; a name IAM lacks is asked once, not per keystroke.
    assert typeahead.users("Nina.Late") == ["Nina.Late"] and typeahead.users("nina.late") == ["Nina.Late"]
    assert typeahead.users("nobody.here") == [] and typeahead.users("nobody.here") == []
    assert calls.users_asked == ["Nina.Late", "nobody.here"]


def test_a_search_that_finds_little_reads_that_kind_again_once(iam: Any) -> None:
    typeahead, calls = bot_side(iam)
    typeahead.refresh()
    loads = calls["ListUsers"]
    iam.create_user(UserName="gina.ops")
    iam.create_user(UserName="gina.dev")

    assert typeahead.users("staff05") == ["staff05"]  # found what was typed: nothing to read
    time.sleep(0.2)
    assert calls["ListUsers"] == loads and calls["GetUser"] == 0
    assert typeahead.users("gin") == []  # not in memory yet, and not an exact name IAM has
    assert eventually(lambda: typeahead.users("gin") == ["gina.dev", "gina.ops"])
    for _ in range(5):  # more searches right away: no more reads of the users
        typeahead.users("zz")
    assert calls["ListUsers"] == loads + 1
    assert calls["ListGroups"] == 1 and calls["ListPolicies"] == 1  # only the kind that was searched
    # A search with many hits reads nothing.
    assert len(typeahead.users("staff")) == 30


def test_customer_policies_are_read_again_and_the_aws_managed_ones_kept(iam: Any) -> None:
    typeahead, calls = bot_side(iam)
    typeahead.refresh()
    aws_managed = {p.arn for p in typeahead.catalog.snapshot.policies if p.aws_managed}
    iam.create_policy(PolicyName="data-lake-writer", PolicyDocument=DOCUMENT)
    typeahead.policies("data-lake")
    assert eventually(
        lambda: [p.name for p in typeahead.policies("data-lake").customer_managed] == ["data-lake-writer"]
    )
    assert {p.arn for p in typeahead.catalog.snapshot.policies if p.aws_managed} == aws_managed
    scopes = calls["ListPolicies"]
    assert scopes == 2  # the load (Scope=All), then the account's own only


def test_the_workers_of_a_server_read_iam_once_between_them(iam: Any, tmp_path: Path) -> None:
    path = tmp_path / "bot.db.catalog.json"
    first, first_calls = bot_side(iam, CatalogShare(path))
    second, second_calls = bot_side(iam, CatalogShare(path))
    first.refresh()
    second.refresh()  # finds the copy the first one just wrote
    assert first_calls["ListUsers"] == 1 and second_calls["ListUsers"] == 0 and sum(second_calls.values()) == 0
    assert second.catalog.snapshot == first.catalog.snapshot and len(second.catalog.search_users("staff")) == 30

    iam.create_user(UserName="omar.new")
    first.refresh_kind("users", time.time())  # what a search that found little does
    second.sync()
    assert second.catalog.search_users("omar") == ["omar.new"] and sum(second_calls.values()) == 0
    second.sync()  # unchanged: one stat, no read
    # A worker that misses later than the shared read takes the copy instead of reading again.
    second.refresh_kind("users", time.time() - 60)
    assert second_calls["ListUsers"] == 0


def test_an_old_shared_copy_is_read_again(iam: Any, tmp_path: Path) -> None:
    share = CatalogShare(tmp_path / "catalog.json")
    typeahead, calls = bot_side(iam, share)
    typeahead.refresh()
    old = share.read()
    assert old is not None
    share.write(CatalogSnapshot(**{**old.__dict__, "loaded_at": old.loaded_at - 600}))
    typeahead.refresh()  # older than half of the 300 s interval
    assert calls["ListUsers"] == 2


def test_the_shared_file_round_trips_and_ignores_what_it_cannot_read(tmp_path: Path) -> None:
    snapshot = CatalogSnapshot(
        user_names=("a", "Ünï"),
        group_names=("g",),
        loaded_at=12.5,
        policies=(
            ManagedPolicy("p", "arn:aws:iam::1:policy/p", False),
            ManagedPolicy("A", "arn:aws:iam::aws:policy/A", True),
        ),
        password_policy=PasswordPolicy(minimum_length=14, require_symbols=True, min_classes=0, is_default=False),
        quotas=AccountQuotas(attached_policies_per_user=20),
        account_id="123456789012",
        users_at=20.0,
    )
    assert from_json(to_json(snapshot)) == snapshot
    assert from_json(b"not json") is None and from_json(b'{"format": 99}') is None
    share = CatalogShare(tmp_path / "c.json")
    assert share.read() is None and share.read_if_changed() is None
    share.write(snapshot)
    assert share.read_if_changed() is None  # this process wrote it
    (tmp_path / "c.json").write_bytes(b"{broken")
    assert CatalogShare(tmp_path / "c.json").read() is None


def test_a_folder_the_share_cannot_use_costs_sharing_not_the_menus(iam: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the share's folder should be")
    typeahead, calls = bot_side(iam, CatalogShare(blocker / "bot.db.catalog.json"))
    typeahead.refresh()
    assert len(typeahead.catalog.search_users("staff")) == 30 and calls["ListUsers"] == 1
    iam.create_user(UserName="gina.x")
    typeahead.refresh_kind("users", time.time())
    typeahead.sync()
    assert typeahead.catalog.search_users("gina") == ["gina.x"]
