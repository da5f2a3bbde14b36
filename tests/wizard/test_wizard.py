"""The wizard's logic against a real store (SQLite), a catalog and IAM (moto in-process).

Views are the ones the bot builds (``to_dict``), state values are shaped as Slack sends them
(:mod:`tests.support.wizard_driver`). Checked: errors are keyed only by input blocks of the submitted
view, nothing is stored for an invalid submission, "copy from user" is expanded from IAM, the
custom password is never stored in plaintext, and IAM changes between views are caught.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.aws.catalog import Catalog, CatalogSnapshot, ManagedPolicy
from bot.aws.iam import IamGateway
from bot.aws.live import LiveIam
from bot.credentials.sealing import PasswordSealer
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import PasswordPolicy
from bot.domain.states import RequestEvent
from bot.storage.sqlite import SqliteStore
from bot.wizard.draft import Draft
from bot.wizard.service import Wizard, WizardAnswer, suggestion_view
from bot.wizard.views import details_view
from tests.support import wizard_driver as wiz
from tests.support.moto_iam import mock_iam_with_some_aws_policies

REQUESTER = "U0REQUEST1"
ACCOUNT = "123456789012"
READ_ONLY = ManagedPolicy(name="ReadOnlyAccess", arn="arn:aws:iam::aws:policy/ReadOnlyAccess", aws_managed=True)
BOUNDARY = ManagedPolicy(name="dev-boundary", arn=f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary", aws_managed=False)
MANY = [ManagedPolicy(name=f"p{i}", arn=f"arn:aws:iam::{ACCOUNT}:policy/p{i}", aws_managed=False) for i in range(12)]
STRICT = PasswordPolicy(
    minimum_length=12, require_symbols=True, require_numbers=True, require_uppercase=True, require_lowercase=True,
    allow_users_to_change_password=True, min_classes=0, is_default=False,
)  # fmt: skip
GOOD_PASSWORD = "Correct-Horse-9-Battery"


def snapshot(**changes: Any) -> CatalogSnapshot:
    base = {
        "user_names": ("Existing.User", "template.dev"),
        "group_names": ("developers", "admins", *(f"g{i}" for i in range(12))),
        "loaded_at": time.time(),
        "policies": (READ_ONLY, BOUNDARY, *MANY),
        "password_policy": STRICT,
        "quotas": AccountQuotas(),
        "account_id": ACCOUNT,
    }
    return CatalogSnapshot(**{**base, **changes})


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """IAM (moto in-process) holding what the catalog's snapshot lists: the wizard decides on IAM."""
    with mock_iam_with_some_aws_policies(monkeypatch):
        client = boto3.client("iam", region_name="us-east-1")
        doc = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        )
        for group in ("developers", "admins", *(f"g{i}" for i in range(12))):
            client.create_group(GroupName=group)
        for policy in (BOUNDARY, *MANY):
            client.create_policy(PolicyName=policy.name, PolicyDocument=doc)
        client.update_account_password_policy(
            MinimumPasswordLength=STRICT.minimum_length, RequireSymbols=True, RequireNumbers=True,
            RequireUppercaseCharacters=True, RequireLowercaseCharacters=True, AllowUsersToChangePassword=True,
        )  # fmt: skip
        client.create_user(UserName="Existing.User")
        client.create_user(UserName="template.dev")
        client.add_user_to_group(UserName="template.dev", GroupName="developers")
        client.attach_user_policy(UserName="template.dev", PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary")
        client.put_user_policy(UserName="template.dev", PolicyName="s3-scratch", PolicyDocument=doc)
        yield client


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "bot.db")


@pytest.fixture
def catalog() -> Catalog:
    catalog = Catalog(snapshot)
    catalog.refresh()
    return catalog


@pytest.fixture
def wizard(store: SqliteStore, catalog: Catalog, iam: Any) -> Wizard:
    gateway = IamGateway(iam, boto3.client("sts", region_name="us-east-1"))
    sealer = PasswordSealer(b"server-side-secret-for-tests")
    return Wizard(store, catalog, LiveIam(gateway), gateway, sealer, store.create_request, slack_people)


def slack_people(user_id: str) -> dict[str, Any] | None:
    """``users.info`` as Slack would answer: people, a bot, a deactivated account, and one unknown."""
    if user_id == "U0UNKNOWN":
        return {"error": "user_not_found"}
    if user_id == "U0LIMITED":
        return {"error": "ratelimited"}
    return {"id": user_id, "is_bot": user_id == "U0SOMEBOT", "deleted": user_id == "U0GONE01"}


class Run:
    """One requester in the wizard, calling :meth:`Wizard.submit` as the views handler does."""

    def __init__(self, wizard: Wizard, view_id: str = "V0000000001") -> None:
        self.wizard = wizard
        self.view_id = view_id
        self.view = {**details_view().to_dict(), "id": view_id}

    @property
    def draft_key(self) -> str:
        """Where the wizard keeps this run's draft: view id and the token the view carries."""
        return f"{self.view_id}/{json.loads(self.view['private_metadata']).get('draft', '')}"

    def submit(self, fields: dict[str, dict[str, Any]]) -> WizardAnswer:
        submitted = {**self.view, "state": {"values": wiz.state(self.view, fields)}}
        answer = self.wizard.submit(REQUESTER, submitted)
        assert set(answer.errors) <= wiz.input_block_ids(self.view), answer.errors
        if answer.view is not None:
            self.view = {**answer.view.to_dict(), "id": self.view_id}
        return answer


def to_review(run: Run, details: dict, permissions: dict, tags: dict | None = None) -> None:
    for fields in (details, permissions, tags or wiz.tags()):
        answer = run.submit(fields)
        assert not answer.errors, answer.errors
    assert wiz.step_name(run.view) == "review"


def drafts(store: SqliteStore) -> list[str]:
    """Every stored draft (JSON), whatever its key."""
    return [row[0] for row in store.db.conn.execute("SELECT data FROM wizard_drafts ORDER BY view_id")]


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_copy_user_is_expanded_into_what_iam_holds_and_filed_on_review(wizard: Wizard, store: SqliteStore) -> None:
    run = Run(wizard)
    to_review(
        run,
        wiz.details(["U0NEW1", "U0NEW2"], "ana\nbo", access=["console", "programmatic"]),
        wiz.permissions("copy_user", copy_from_user="template.dev", mfa=True),
        wiz.tags("team=data"),
    )
    review = text_of(run.view)
    assert "Copied from `template.dev`" in review
    for shown in ("`developers`", "`dev-boundary`", "`s3-scratch`", "iam-user-bot-require-mfa"):
        assert shown in review
    assert "aws iam create-user --user-name ana" in review and "aws iam create-user --user-name bo" in review
    assert "aws iam add-user-to-group --user-name bo --group-name developers" in review
    assert "put-user-policy --user-name ana --policy-name s3-scratch" in review
    assert '--password=\\"$PASSWORD\\"' in review and "Set `PASSWORD` first" in review
    assert "iam-user-bot policy require-mfa &gt; iam-user-bot-require-mfa.json" in review
    assert {b["block_id"] for b in run.view["blocks"] if b["type"] == "input"} == {"justification"}
    assert store.requests_where() == []

    answer = run.submit(wiz.review("Two analysts join the data team this week."))
    assert answer.request is not None and answer.view is None and not answer.errors
    [filed] = store.requests_where()
    assert filed.form.user_names == ("ana", "bo") and filed.form.copy_from_user == "template.dev"
    assert filed.form.tags[0].key == "team" and filed.form.mfa_required
    # The draft is gone; what is left is the filed request's id, for the work after the ack.
    assert store.get_draft(run.draft_key, REQUESTER) is None and drafts(store) == [filed.id]
    assert wizard.filed_request(REQUESTER, run.view) == filed  # run.view: the review view just submitted
    assert wizard.filed_request("U0SOMEONE9", run.view) is None  # nobody else's submission filed it
    assert wizard.filed_request(REQUESTER, run.view) is None  # taken once: a repeat announces nothing


def test_custom_password_is_sealed_in_the_draft_and_the_request(wizard: Wizard, store: SqliteStore) -> None:
    run = Run(wizard)
    to_review(
        run,
        wiz.details(["U0NEW1"], "ana", access=["console"], password_mode="custom", custom_password=GOOD_PASSWORD),
        wiz.permissions("groups", groups=["developers"]),
    )
    raw_draft = store.get_draft(run.draft_key, REQUESTER) or ""
    assert GOOD_PASSWORD not in raw_draft and '"custom_password_sealed":"v1.' in raw_draft
    assert GOOD_PASSWORD not in text_of(run.view)
    run.submit(wiz.review())
    [filed] = store.requests_where()
    stored = store.db.conn.execute("SELECT form FROM requests").fetchone()[0]
    assert GOOD_PASSWORD not in stored
    assert wizard.sealer.open(filed.form.custom_password_sealed or "", REQUESTER) == GOOD_PASSWORD
    assert GOOD_PASSWORD not in repr(filed.form)


def test_custom_password_rules(wizard: Wizard, store: SqliteStore) -> None:
    run = Run(wizard)

    def errors(**kw: Any) -> dict[str, str]:
        fields = {"access": ["console"], "password_mode": "custom", **kw}
        return run.submit(wiz.details(["U0NEW1"], "ana", **fields)).errors

    assert "comma" in errors(custom_password="Has,Comma-123456")["custom_password"]
    assert "at least 12" in errors(custom_password="Sh0rt-pass")["custom_password"]
    assert "a symbol" in errors(custom_password="NoSymbolsHere123")["custom_password"]
    assert "Enter the custom password" in errors(custom_password=None)["custom_password"]
    assert "only for console" in errors(custom_password=GOOD_PASSWORD, access=["programmatic"])["password_mode"]
    assert "Clear this field" in errors(custom_password=GOOD_PASSWORD, password_mode="autogenerated")["custom_password"]
    assert drafts(store) == []


def test_permission_errors_say_what_is_allowed(wizard: Wizard, catalog: Catalog) -> None:
    run = Run(wizard)
    assert not run.submit(wiz.details(["U0NEW1"], "ana", access=["programmatic"])).errors
    permissions_view = run.view

    def errors(**kw: Any) -> dict[str, str]:
        run.view = permissions_view
        return run.submit(wiz.permissions(**kw)).errors

    assert "clear this field" in errors(mode="groups", policies=[READ_ONLY.arn])["policies"]
    assert "no group named “ghosts”" in errors(mode="groups", groups=["ghosts"])["groups"]
    assert "GroupsPerUserQuota" in errors(mode="groups", groups=[f"g{i}" for i in range(11)])["groups"]
    assert "Choose the existing IAM user" in errors(mode="copy_user")["copy_from_user"]
    assert "no user named “nobody”" in errors(mode="copy_user", copy_from_user="nobody")["copy_from_user"]
    too_many = errors(mode="policies", policies=[p.arn for p in MANY[:9]], mfa=True, self_manage=True)
    assert "11 managed policies" in too_many["policies"] and "2 the bot attaches" in too_many["policies"]
    assert errors(mode="policies", policies=[p.arn for p in MANY[:8]], mfa=True, self_manage=True) == {}
    run.view = permissions_view
    assert "no longer exists" in errors(mode="groups", boundary="arn:aws:iam::1:policy/gone")["permissions_boundary"]


def test_copy_source_quota_counts_its_policies(wizard: Wizard, catalog: Catalog, iam: Any) -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    for i in range(9):
        arn = iam.create_policy(PolicyName=f"extra{i}", PolicyDocument=doc)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="template.dev", PolicyArn=arn)
    run = Run(wizard)
    run.submit(wiz.details(["U0NEW1"], "ana", access=["programmatic"]))
    error = run.submit(wiz.permissions("copy_user", copy_from_user="template.dev", mfa=True)).errors["copy_from_user"]
    assert "Copying template.dev" in error and "11 managed policies" in error


def test_iam_changes_before_filing_send_the_requester_back(
    wizard: Wizard, store: SqliteStore, catalog: Catalog, iam: Any
) -> None:
    """Someone changes IAM while the requester clicks through; the catalog (still listing what
    it loaded) is not what decides: the review reads IAM again."""
    run = Run(wizard)
    to_review(
        run,
        wiz.details(["U0NEW1"], "ana", access=["console"], password_mode="custom", custom_password=GOOD_PASSWORD),
        wiz.permissions("groups", groups=["admins"]),
    )
    iam.delete_group(GroupName="admins")
    answer = run.submit(wiz.review())
    assert answer.request is None and not answer.errors
    assert wiz.step_name(run.view) == "permissions" and "no group named “admins” any more" in text_of(run.view)
    assert "admins" in catalog.search_groups("admins")  # the catalog still had it
    assert not run.submit(wiz.permissions("groups", groups=["developers"])).errors
    assert not run.submit(wiz.tags()).errors
    iam.create_user(UserName="Ana")  # the same IAM user name, in another case
    run.submit(wiz.review())
    assert wiz.step_name(run.view) == "details" and "“ana” already exists (spelled “Ana”)" in text_of(run.view)
    iam.delete_user(UserName="Ana")
    iam.update_account_password_policy(MinimumPasswordLength=30, AllowUsersToChangePassword=True)  # tightened
    run.submit(wiz.details(["U0NEW1"], "ana", access=["console"], password_mode="custom"))  # the sealed one kept
    run.submit(wiz.permissions("groups", groups=["developers"]))
    run.submit(wiz.tags())
    run.submit(wiz.review())
    assert wiz.step_name(run.view) == "details" and "needs at least 30" in text_of(run.view)
    assert store.requests_where() == []


def test_a_name_taken_in_iam_in_another_case_and_a_weak_password_are_refused_at_the_field(
    wizard: Wizard, store: SqliteStore, catalog: Catalog, iam: Any
) -> None:
    """The decisions read IAM at submission, not the catalog (which has neither change)."""
    iam.create_user(UserName="Gina.Ops")
    error = Run(wizard).submit(wiz.details(["U0NEW1"], "gina.ops", access=["programmatic"])).errors
    assert "“gina.ops” already exists (spelled “Gina.Ops”)" in error["user_names"]
    iam.update_account_password_policy(MinimumPasswordLength=40, AllowUsersToChangePassword=True)
    details = wiz.details(["U0NEW1"], "ana", access=["console"], password_mode="custom", custom_password=GOOD_PASSWORD)
    assert "needs at least 40" in Run(wizard).submit(details).errors["custom_password"]
    assert catalog.user_named("gina.ops") is None and catalog.password_policy.minimum_length == 12
    assert drafts(store) == [] and store.requests_where() == []


def test_nothing_is_saved_when_iam_does_not_answer(wizard: Wizard, store: SqliteStore, iam: Any) -> None:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetUser")

    wizard.lookup.live.gateway.iam.meta.events.register("before-call.iam.GetUser", refuse)
    errors = Run(wizard).submit(wiz.details(["U0NEW1"], "ana", access=["programmatic"])).errors
    assert "could not check this with IAM just now (Throttling)" in errors["user_names"]
    assert drafts(store) == []


def test_a_later_view_without_its_draft_starts_over(wizard: Wizard, store: SqliteStore) -> None:
    run = Run(wizard)
    run.submit(wiz.details(["U0NEW1"], "ana", access=["programmatic"]))
    stranger = wizard.submit("U0STRANGER", {**run.view, "state": {"values": wiz.state(run.view, wiz.permissions())}})
    assert stranger.view is not None and "starts again" in json.dumps(stranger.view.to_dict())
    assert store.requests_where() == []


recipients = st.lists(st.sampled_from(["U1", "U2", "U3", "U4"]), max_size=12)
names_text = st.lists(
    st.sampled_from(["ana", "ANA", "bo", "existing.user", "x y", "", "a" * 65, "ok.name"]), max_size=5
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.integers(0, 3),
    recipients,
    names_text,
    st.lists(st.sampled_from(["console", "programmatic", "bogus"]), max_size=3),
    st.sampled_from(["autogenerated", "custom", "weird"]),
    st.sampled_from([None, "", "short", GOOD_PASSWORD, 'Quote"Quote-1234']),
    st.sampled_from(["groups", "copy_user", "policies", "nonsense"]),
    st.lists(st.sampled_from(["developers", "ghost", *(f"g{i}" for i in range(12))]), max_size=12),
    st.sampled_from([None, "template.dev", "nobody"]),
    st.lists(st.sampled_from([READ_ONLY.arn, "arn:aws:iam::1:policy/gone", *(p.arn for p in MANY)]), max_size=12),
    st.sampled_from(["", "a=b", "aws:x=1", "k=1\nK=2", "no-equals", "\n".join(f"k{i}=v" for i in range(48))]),
    st.sampled_from(["", "short", "A long enough justification."]),
)
def test_every_error_is_keyed_by_an_input_block_of_the_submitted_view(
    wizard: Wizard, store: SqliteStore, stage, people, names, access, mode, password, perm_mode, groups, source,
    policies, tags, why,
) -> None:  # fmt: skip
    """Valid views up to ``stage``, then one view of arbitrary input; Run.submit checks the keys."""
    unique = f"ana.{time.monotonic_ns()}"  # earlier examples filed requests: their names are taken
    valid = [wiz.details(["U1"], unique, access=["programmatic"]), wiz.permissions("groups"), wiz.tags(), wiz.review()]
    arbitrary = [
        wiz.details(people, "\n".join(names), access=access, password_mode=mode, custom_password=password),
        wiz.permissions(perm_mode, groups=groups, copy_from_user=source, policies=policies),
        wiz.tags(tags),
        wiz.review(why),
    ]
    run = Run(wizard, view_id=f"V{time.monotonic_ns()}")
    for fields in valid[:stage]:
        assert not run.submit(fields).errors
    filed_before = len(store.requests_where())
    drafts_before = drafts(store)
    shown = wiz.step_name(run.view)
    answer = run.submit(arbitrary[stage])  # asserts the error keys ⊆ the input blocks submitted
    if answer.errors:
        assert wiz.step_name(run.view) == shown
        assert drafts(store) == drafts_before
        assert len(store.requests_where()) == filed_before
    elif answer.request is not None:
        assert stage == 3 and len(store.requests_where()) == filed_before + 1
    else:
        assert answer.view is not None and wiz.step_name(run.view) != shown


def test_suggested_names_fill_an_empty_field_and_never_overwrite_typing() -> None:
    view = details_view().to_dict()
    emails = {"U1": "nina.newhire@example.com", "U2": "Nina.Newhire@other.example", "U3": None}
    suggested = suggestion_view({**view, "state": {"values": {}}}, ["U1", "U2", "U3"], emails, {"existing.user"})
    assert suggested is not None
    shown = suggested.to_dict()
    block = next(b for b in shown["blocks"] if b.get("block_id") == "user_names")
    assert block["element"]["initial_value"] == "nina.newhire\nNina.Newhire2\nu3"
    assert block["element"]["action_id"] != "user_names"  # so Slack shows the new initial value
    recipients_block = next(b for b in shown["blocks"] if b.get("block_id") == "recipients")
    assert recipients_block["dispatch_action"] is True

    typed = {"user_names": {"user_names": {"type": "plain_text_input", "value": "my.own.name"}}}
    assert suggestion_view({**view, "state": {"values": typed}}, ["U1"], emails, set()) is None
    # Still the previous suggestion (untouched): a new choice of people replaces it.
    untouched = {"type": "plain_text_input", "value": "nina.newhire\nNina.Newhire2\nu3"}
    again = {"user_names": {block["element"]["action_id"]: untouched}}
    updated = suggestion_view({**shown, "state": {"values": again}}, ["U1", "U3"], emails, set())
    assert updated is not None
    new_block = next(b for b in updated.to_dict()["blocks"] if b.get("block_id") == "user_names")
    assert new_block["element"]["initial_value"] == "nina.newhire\nu3"


def test_views_fit_slacks_limits_for_the_largest_request(wizard: Wizard) -> None:
    run = Run(wizard)
    people = [f"U{i}" for i in range(10)]
    names = "\n".join(f"user-{i}-" + "n" * 50 for i in range(10))
    to_review(
        run,
        wiz.details(people, names, access=["console", "programmatic"]),
        wiz.permissions("policies", policies=[p.arn for p in MANY[:10]]),
        wiz.tags("\n".join(f"key{i}=" + "v" * 200 for i in range(45))),
    )
    view = run.view
    assert len(view["blocks"]) <= 100 and len(view["private_metadata"]) <= 3000
    assert all(len(b["text"]["text"]) <= 3000 for b in view["blocks"] if b["type"] == "section")
    # Each create-user line (45 tags of 200 characters) is longer than a section: named, never cut.
    assert text_of(view).count("longer than one Slack block holds") == 10
    code = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section" and b["text"]["text"].startswith("```")]
    lines = [line for block in code for line in block.strip("`").strip("\n").split("\n")]
    assert len(lines) == 10 * 12 and not any("create-user" in line or "…" in line for line in lines)
    assert isinstance(Draft.model_validate_json(wizard.store.get_draft(run.draft_key, REQUESTER) or ""), Draft)


def test_back_shows_the_earlier_view_filled_from_the_draft(wizard: Wizard) -> None:
    run = Run(wizard)
    to_review(
        run,
        wiz.details(["U0NEW1"], "ana", access=["console"], password_mode="custom", custom_password=GOOD_PASSWORD),
        wiz.permissions("policies", policies=[READ_ONLY.arn], mfa=True),
        wiz.tags("team=data"),
    )
    nav = next(b for b in run.view["blocks"] if b.get("block_id") == "wizard_nav")
    assert nav["elements"][0]["action_id"] == "wizard_back" and nav["elements"][0]["value"] == "tags"

    permissions = wizard.back(REQUESTER, run.view, "permissions")
    assert permissions is not None
    shown = permissions.to_dict()
    policies = next(b for b in shown["blocks"] if b.get("block_id") == "policies")["element"]
    assert policies["initial_options"] == [
        {"text": {"type": "plain_text", "text": "ReadOnlyAccess"}, "value": READ_ONLY.arn}
    ]
    mode = next(b for b in shown["blocks"] if b.get("block_id") == "permission_mode")["element"]
    assert mode["initial_option"]["value"] == "policies"
    assert json.loads(shown["private_metadata"])["draft"] == json.loads(run.view["private_metadata"])["draft"]

    # Back to the details and on again: the sealed custom password is kept when left empty.
    details = wizard.back(REQUESTER, run.view, "details")
    assert details is not None
    run.view = {**details.to_dict(), "id": run.view_id}
    assert "Leave empty to keep" in text_of(run.view) and GOOD_PASSWORD not in text_of(run.view)
    to_review(
        run,
        wiz.details(["U0NEW1"], "ana.b", access=["console"], password_mode="custom"),
        wiz.permissions("policies", policies=[READ_ONLY.arn]),
    )
    assert run.submit(wiz.review()).request is not None
    [filed] = wizard.store.requests_where()
    assert filed.form.user_names == ("ana.b",)
    assert wizard.sealer.open(filed.form.custom_password_sealed or "", REQUESTER) == GOOD_PASSWORD

    # Nothing to go back to: forward, unknown, or another person's draft.
    assert wizard.back(REQUESTER, run.view, "review") is None
    assert wizard.back(REQUESTER, run.view, "nowhere") is None
    assert wizard.back("U0STRANGER", run.view, "details") is None


def test_the_same_review_submitted_twice_at_once_files_one_request(wizard: Wizard, store: SqliteStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    run = Run(wizard)
    to_review(run, wiz.details(["U0NEW1"], "ana", access=["programmatic"]), wiz.permissions("groups"))
    submitted = {**run.view, "state": {"values": wiz.state(run.view, wiz.review())}}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: wizard.submit(REQUESTER, submitted), range(4)))
    assert sum(a.request is not None for a in answers) == 1
    assert len(store.requests_where()) == 1


def test_a_submission_sent_back_after_another_filed_does_not_let_a_third_file(
    wizard: Wizard, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three submissions of one review, ordered: "held" checks the open requests (none) and waits;
    "late" reads the draft and waits before its checks; a third files; "late" then finds the name
    requested and is sent back; "held" goes on. One request only: while the checks ran before the
    draft was claimed, "late" saved the draft again and "held" filed a second request for "ana"."""
    import threading

    run = Run(wizard)
    to_review(run, wiz.details(["U0NEW1"], "ana", access=["programmatic"]), wiz.permissions("groups"))
    submitted = {**run.view, "state": {"values": wiz.state(run.view, wiz.review())}}
    lookup, confirm, requested = wizard.lookup, wizard.lookup.confirm, wizard.lookup.requested_names_lower
    holding, release, late_ready, third_done = (threading.Event() for _ in range(4))

    def held_requested() -> dict[str, str]:
        names = requested()
        if threading.current_thread().name == "held":
            holding.set()
            assert release.wait(30)
        return names

    def late_confirm(wanted: Any) -> Any:
        if threading.current_thread().name == "late":
            late_ready.set()
            assert third_done.wait(30)
        return confirm(wanted)

    monkeypatch.setattr(lookup, "requested_names_lower", held_requested)
    monkeypatch.setattr(lookup, "confirm", late_confirm)
    answers: dict[str, WizardAnswer] = {}

    def submit(name: str) -> None:
        try:
            answers[name] = wizard.submit(REQUESTER, submitted)
        finally:
            late_ready.set()  # "late" may be refused before its checks: nothing to wait for then

    held = threading.Thread(target=submit, args=("held",), name="held")
    held.start()
    assert holding.wait(30)
    late = threading.Thread(target=submit, args=("late",), name="late")
    late.start()
    assert late_ready.wait(30)
    answers["third"] = wizard.submit(REQUESTER, submitted)
    third_done.set()
    late.join(30)
    release.set()
    held.join(30)

    assert len(answers) == 3 and sum(a.request is not None for a in answers.values()) == 1, answers
    assert [r.form.user_names for r in store.requests_where()] == [("ana",)]
    assert store.get_draft(run.draft_key, REQUESTER) is None  # claimed by the one that filed


def test_a_name_an_open_request_will_create_is_refused(wizard: Wizard, store: SqliteStore) -> None:
    first = Run(wizard, view_id="V1")
    to_review(first, wiz.details(["U0NEW1"], "ana", access=["programmatic"]), wiz.permissions("groups"))
    filed = first.submit(wiz.review()).request
    assert filed is not None
    second = Run(wizard, view_id="V2")
    error = second.submit(wiz.details(["U0NEW2"], "ANA", access=["programmatic"])).errors["user_names"]
    assert f"already requested in {filed.id}" in error
    store.move_request(filed.id, RequestEvent.DENIED, actor="U0APPROVE")
    assert not second.submit(wiz.details(["U0NEW2"], "ANA", access=["programmatic"])).errors


@pytest.mark.parametrize(
    ("recipient", "words"),
    [
        ("U0SOMEBOT", "bot or app"),
        ("U0GONE01", "deactivated"),
        ("U0UNKNOWN", "not a member"),
        ("U0LIMITED", "could not look up"),
    ],
)
def test_bots_deactivated_and_unknown_accounts_never_receive_credentials(
    wizard: Wizard, store: SqliteStore, recipient: str, words: str
) -> None:
    run = Run(wizard)
    errors = run.submit(wiz.details(["U0NEW1", recipient], "ana\nbo", access=["programmatic"])).errors
    assert set(errors) == {"recipients"} and words in errors["recipients"] and recipient in errors["recipients"]
    assert store.requests_where() == []
