"""The request wizard over real HTTP: suggested names, copy-from-user, custom password, bad input.

The bot runs as a server process against moto server and the Slack stand-in; every Slack
request is signed and shaped like Slack's.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.credentials.vault import b64url_decode, open_sealed
from bot.sandbox.processes import http
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, SECOND_APPROVER, STRANGER
from tests.support import wizard_driver as wiz
from tests.support.flow import approval_message, link_from_ephemeral, open_modal, wait_catalog

CUSTOM_PASSWORD = "Blue-Canyon-42-Orchard!"
POLICY_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*",
                                                                  "Resource": "*"}]})  # fmt: skip


def test_recipients_suggest_user_names_from_their_email(start_bot, slack, iam) -> None:
    iam.create_user(UserName="nina.newhire")  # taken: the suggestion must differ
    bot = start_bot()
    view = open_modal(bot, slack, REQUESTER)
    wait_catalog_users(bot, view, "nina.newhire")
    run = wiz.WizardRun(bot.user, REQUESTER, view)
    answer = run.suggest([RECIPIENT, SECOND_APPROVER])
    assert answer.status == 200
    update = slack.wait_for("views.update", lambda c: c.args.get("view_id") == view["id"])[-1]
    assert update.response["ok"], update.response
    assert update.args["hash"] == view["hash"]
    shown = update.args["view"]
    shown = json.loads(shown) if isinstance(shown, str) else shown
    names = next(b for b in shown["blocks"] if b.get("block_id") == "user_names")["element"]
    assert names["initial_value"] == "nina.newhire2\nbea.approver"
    users_info = {c.args["user"] for c in slack.calls("users.info")}
    assert users_info == {RECIPIENT, SECOND_APPROVER}

    # The requester edits a name and submits: what they typed is what is checked and used.
    run.view = {**update.response["view"]}
    moved = run.submit(wiz.details([RECIPIENT, SECOND_APPROVER], "nina.n\nbea.approver", access=["programmatic"]))
    assert moved.json()["response_action"] == "update" and wiz.step_name(run.view) == "permissions"


def wait_catalog_users(bot, view, user_name: str) -> None:
    """Wait until the background catalog load offers ``user_name`` in the copy-from-user menu."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = bot.user.block_suggestion(REQUESTER, view, "copy_from_user", user_name)
        if user_name in [o["value"] for o in (answer.json() or {}).get("options", [])]:
            return
        time.sleep(0.2)
    raise AssertionError(f"user {user_name} never offered")


def test_copy_user_with_custom_password_end_to_end(start_bot, slack, iam, tmp_path: Path) -> None:
    iam.create_group(GroupName="developers")
    boundary = iam.create_policy(PolicyName="dev-boundary", PolicyDocument=POLICY_DOC)["Policy"]["Arn"]
    iam.create_user(UserName="template.dev")
    iam.add_user_to_group(UserName="template.dev", GroupName="developers")
    iam.attach_user_policy(UserName="template.dev", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_user_policy(UserName="template.dev", PolicyName="s3-scratch", PolicyDocument=POLICY_DOC)
    bot = start_bot()
    view = open_modal(bot, slack, REQUESTER)
    wait_catalog(bot, slack, view, "developers")
    run = wiz.WizardRun(bot.user, REQUESTER, view)

    # A boundary picked from the policies menu by its text, as a person would.
    offered = bot.user.block_suggestion(REQUESTER, view, "permissions_boundary", "dev-b").json()
    [group] = offered["option_groups"]
    assert group["label"]["text"] == "Customer managed"
    boundary_value = next(o["value"] for o in group["options"] if o["text"]["text"] == "dev-boundary")

    run.through(
        wiz.details(
            [RECIPIENT], "nina.copy", access=["console"], password_mode="custom", custom_password=CUSTOM_PASSWORD
        ),
        wiz.permissions("copy_user", copy_from_user="template.dev", boundary=boundary_value),
        wiz.tags("team=platform\nCostCenter=42"),
    )
    review = json.dumps(run.view["blocks"])
    for shown in ("Copied from `template.dev`", "`developers`", "`ReadOnlyAccess`", "`s3-scratch`", "`dev-boundary`"):
        assert shown in review
    assert "aws iam create-login-profile --user-name nina.copy --password" in review
    assert CUSTOM_PASSWORD not in review
    assert run.submit(wiz.review()).body == b""
    ts, request_id = approval_message(slack)
    stored = SqliteStore(bot.database_path).get_request(request_id)
    assert stored.form.permissions_boundary_arn == boundary and stored.form.custom_password_sealed

    bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    link = link_from_ephemeral(slack, RECIPIENT)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="nina.copy")["Groups"]] == ["developers"]
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="nina.copy")["AttachedPolicies"]]
    assert attached == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert iam.list_user_policies(UserName="nina.copy")["PolicyNames"] == ["s3-scratch"]
    tags = {t["Key"]: t["Value"] for t in iam.get_user(UserName="nina.copy")["User"]["Tags"]}
    assert tags["team"] == "platform" and tags["CostCenter"] == "42"

    # The recipient reveals exactly the custom password; it is nowhere else.
    page_url, key = link.split("#", 1)
    secret_id = page_url.rsplit("/", 1)[1]
    sealed = http("POST", page_url, headers={"X-Requested-With": "reveal"}).json()
    plain = json.loads(open_sealed(secret_id, key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))
    assert plain["password"] == CUSTOM_PASSWORD, "the revealed password is not the custom one"
    final = SqliteStore(bot.database_path).get_request(request_id)
    assert final.status == "provisioned" and final.form.custom_password_sealed is None
    assert "custom_password_erased" in [
        e.event for e in SqliteStore(bot.database_path).audit_events(request_id=request_id)
    ]
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*")).decode("latin-1")
    places = {
        "database": db_bytes,
        "log": bot.process.log_text(),
        "Slack": json.dumps([c.args for c in slack.calls()]),
    }
    assert [place for place, text in places.items() if CUSTOM_PASSWORD in text] == []


def test_invalid_views_get_errors_on_their_own_input_blocks_and_nothing_is_stored(start_bot, slack, iam) -> None:
    iam.create_group(GroupName="developers")
    bot = start_bot()
    view = open_modal(bot, slack, REQUESTER)
    wait_catalog(bot, slack, view, "developers")
    run = wiz.WizardRun(bot.user, REQUESTER, view)

    def errors(fields: dict) -> dict[str, str]:
        shown = wiz.input_block_ids(run.view)
        answer = run.submit(fields)
        body = answer.json()
        assert body["response_action"] == "errors", body
        assert set(body["errors"]) <= shown, (body["errors"], shown)
        return body["errors"]

    assert (
        "comma"
        in errors(
            wiz.details(
                [RECIPIENT], "nina.x", access=["console"], password_mode="custom", custom_password="Comma,Pass-123"
            )
        )["custom_password"]
    )
    assert (
        "only for console"
        in errors(
            wiz.details([RECIPIENT], "nina.x", access=["programmatic"], password_mode="custom", custom_password="x")
        )["password_mode"]
    )
    assert set(errors(wiz.details([], "nina.x"))) == {"recipients"}
    assert "1 recipient(s) but entered 2" in errors(wiz.details([RECIPIENT], "a\nb"))["user_names"]
    run.through(wiz.details([RECIPIENT], "nina.x", access=["programmatic"]), wiz.permissions("groups"))
    assert "reserved for AWS" in errors(wiz.tags("AWS:owner=me"))["tags"]
    assert "Line 2" in errors(wiz.tags("a=1\nbroken"))["tags"]
    run.through(wiz.tags("a=1"))
    assert "at least 10" in errors(wiz.review("too short"))["justification"]
    assert SqliteStore(bot.database_path).requests_where() == []
    assert iam.list_users()["Users"] == []
    assert slack.calls("chat.postMessage") == []


def test_back_button_and_who_may_file(start_bot, slack, iam) -> None:
    bot = start_bot(REQUESTER_USER_IDS=REQUESTER)
    view = open_modal(bot, slack, REQUESTER)
    run = wiz.WizardRun(bot.user, REQUESTER, view)
    run.through(wiz.details([RECIPIENT], "nina.back", access=["programmatic"]), wiz.permissions("groups"))
    assert wiz.step_name(run.view) == "tags"
    clicked = bot.user.interaction(
        {
            "type": "block_actions",
            "user": bot.user._user(REQUESTER),
            "api_app_id": "A0IAMUSERBOT",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": "1.2.3",
            "team": {"id": bot.user.team_id},
            "view": {**run.view, "hash": update_hash(slack, view)},
            "actions": [
                {"type": "button", "action_id": "wizard_back", "block_id": "wizard_nav", "value": "permissions"}
            ],
        }
    )
    assert clicked.status == 200
    back = slack.wait_for("views.update", lambda c: "permission_mode" in json.dumps(c.args.get("view")))[-1]
    assert back.response["ok"], back.response

    # Someone outside REQUESTER_USER_IDS submitting the form files nothing.
    stranger = wiz.WizardRun(bot.user, STRANGER, view)
    answer = stranger.submit(wiz.details([RECIPIENT], "nina.other", access=["programmatic"]))
    body = answer.json()
    assert body["response_action"] == "update" and "input" not in json.dumps(body["view"]["blocks"])
    assert SqliteStore(bot.database_path).requests_where() == []


def update_hash(slack, view) -> str:
    """The hash Slack holds for ``view`` now (the stand-in keeps it like Slack)."""
    return slack._views[view["id"]]["hash"]


def test_a_bot_user_is_refused_as_recipient_over_http(start_bot, slack, iam) -> None:
    slack.add_user("U0HELPBOT1", name="helpbot", email="helpbot@example.com", is_bot=True)
    bot = start_bot()
    view = open_modal(bot, slack, REQUESTER)
    run = wiz.WizardRun(bot.user, REQUESTER, view)
    answer = run.submit(wiz.details([RECIPIENT, "U0HELPBOT1"], "nina.n\nhelp.bot", access=["programmatic"]))
    errors = answer.json()["errors"]
    assert set(errors) == {"recipients"} and "bot or app" in errors["recipients"]
    assert SqliteStore(bot.database_path).requests_where() == []
    assert iam.list_users()["Users"] == []
