"""The Slack stand-in, driven over HTTP by a real slack_sdk WebClient, as the bot will drive it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.slack_rules import make_trigger_id
from bot.sandbox.slack_standin import SlackStandIn

TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVE"


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=TOKEN) as server:
        server.add_user("U0ALICE", name="alice", email="alice@example.com", real_name="Alice Doe")
        server.add_user("U0BOB", name="bob", email="Bob@Example.com")
        yield server


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=standin.base_url, timeout=5)


def slack_error(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


def modal(title: str = "New IAM user", blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    blocks = blocks if blocks is not None else [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": blocks, **extra}


def section(i: int) -> dict[str, Any]:
    return {"type": "section", "block_id": f"b{i}", "text": {"type": "mrkdwn", "text": f"line {i}"}}


def test_base_url_has_trailing_slash_and_real_port(standin: SlackStandIn) -> None:
    assert standin.base_url.startswith("http://127.0.0.1:")
    assert standin.base_url.endswith("/api/")
    assert standin.port > 0


def test_auth_test_answers_bot_identity_and_records_token(standin: SlackStandIn, client: WebClient) -> None:
    answer = client.auth_test()
    assert answer["user_id"] == "UBOT00001"
    assert answer["team_id"] == "T0STANDIN"
    assert answer["bot_id"] == "BSTANDIN1"
    [call] = standin.calls("auth.test")
    assert call.token == TOKEN
    assert call.response["ok"] is True


def test_wrong_or_missing_token_is_refused_and_still_recorded(standin: SlackStandIn) -> None:
    wrong = WebClient(token="xoxb-wrong", base_url=standin.base_url)
    assert slack_error(wrong.auth_test).response["error"] == "invalid_auth"
    anonymous = WebClient(base_url=standin.base_url)
    assert slack_error(anonymous.chat_postMessage, channel=CHANNEL, text="x").response["error"] == "not_authed"
    assert [(c.method, c.token, c.response["error"]) for c in standin.calls()] == [
        ("auth.test", "xoxb-wrong", "invalid_auth"),
        ("chat.postMessage", None, "not_authed"),
    ]
    assert standin.messages(CHANNEL) == []


def test_token_may_come_as_argument(standin: SlackStandIn) -> None:
    anonymous = WebClient(base_url=standin.base_url)
    assert anonymous.api_call("auth.test", params={"token": TOKEN})["ok"] is True
    [call] = standin.calls("auth.test")
    assert call.token == TOKEN
    assert "token" not in call.args


def test_unknown_method(client: WebClient, standin: SlackStandIn) -> None:
    assert slack_error(client.api_call, "chat.teleport").response["error"] == "unknown_method"
    assert standin.calls()[0].method == "chat.teleport"


def test_post_message_records_blocks_and_update_changes_messages(standin: SlackStandIn, client: WebClient) -> None:
    blocks = [section(1), section(2)]
    posted = client.chat_postMessage(channel=CHANNEL, text="Request #1: pending", blocks=blocks)
    assert posted["channel"] == CHANNEL
    [call] = standin.calls("chat.postMessage")
    assert call.args["blocks"] == blocks
    assert call.args["text"] == "Request #1: pending"
    assert call.response["ts"] == posted["ts"]

    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Request #1: approved", blocks=[section(3)])
    [message] = standin.messages(CHANNEL)
    assert message["ts"] == posted["ts"]
    assert message["text"] == "Request #1: approved"
    assert message["blocks"] == [section(3)]

    # Fields left out of chat.update keep their value, as in Slack.
    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Request #1: provisioned")
    [message] = standin.messages(CHANNEL)
    assert (message["text"], message["blocks"]) == ("Request #1: provisioned", [section(3)])


def test_chat_update_of_unknown_message(client: WebClient) -> None:
    error = slack_error(client.chat_update, channel=CHANNEL, ts="1700000000.000100", text="x")
    assert error.response["error"] == "message_not_found"


def test_timestamps_are_unique_and_increasing(client: WebClient, standin: SlackStandIn) -> None:
    def post(i: int) -> str:
        return client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        stamps = list(pool.map(post, range(40)))
    assert len(set(stamps)) == 40
    stored = [m["ts"] for m in standin.messages(CHANNEL)]
    assert stored == sorted(stored, key=float)
    assert sorted(stamps) == sorted(stored)


def test_more_than_50_blocks_refused_50_accepted(client: WebClient, standin: SlackStandIn) -> None:
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="x", blocks=[section(i) for i in range(51)])
    assert error.response["error"] == "invalid_blocks"
    assert standin.messages(CHANNEL) == []
    client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section(i) for i in range(50)])
    assert len(standin.messages(CHANNEL)[0]["blocks"]) == 50


def test_long_section_text_and_long_message_text_refused(client: WebClient, standin: SlackStandIn) -> None:
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="x", blocks=[long_section])
    assert error.response["error"] == "invalid_blocks" and "/blocks/0/text" in str(error.response)
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="y" * 40_001).response["error"] == "msg_too_long"
    assert standin.messages(CHANNEL) == []
    client.chat_postMessage(channel=CHANNEL, text="y" * 40_000, blocks=[{**long_section, "text": {"type": "mrkdwn",
                                                                          "text": "x" * 3000}}])  # fmt: skip
    assert len(standin.messages(CHANNEL)) == 1


def test_duplicate_block_ids_refused(client: WebClient) -> None:
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="x", blocks=[section(1), section(1)])
    assert error.response["error"] == "invalid_blocks"


def test_form_encoded_blocks_as_json_string(standin: SlackStandIn, client: WebClient) -> None:
    blocks = [section(7)]
    client.api_call("chat.postMessage", data={"channel": CHANNEL, "blocks": json.dumps(blocks)})
    [call] = standin.calls("chat.postMessage")
    assert call.args == {"channel": CHANNEL, "blocks": json.dumps(blocks)}
    assert standin.messages(CHANNEL)[0]["blocks"] == blocks


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": CHANNEL}, "no_text"),
        ({"channel": CHANNEL, "blocks": []}, "no_text"),
        ({"channel": "U0ALICE", "text": "x"}, "channel_not_found"),
        ({"channel": CHANNEL, "blocks": "not json"}, "invalid_blocks_format"),
    ],
)
def test_post_message_refusals(client: WebClient, kwargs: dict[str, Any], error: str) -> None:
    assert slack_error(client.api_call, "chat.postMessage", json=kwargs).response["error"] == error


def test_not_in_channel(standin: SlackStandIn, client: WebClient) -> None:
    standin.set_not_in_channel("C0PRIVATE")
    error = slack_error(client.chat_postMessage, channel="C0PRIVATE", text="x")
    assert error.response["error"] == "not_in_channel"


def test_dm_and_ephemeral(standin: SlackStandIn, client: WebClient) -> None:
    channel = client.conversations_open(users="U0ALICE")["channel"]["id"]
    assert channel.startswith("D")
    assert client.conversations_open(users="U0ALICE")["channel"]["id"] == channel
    assert client.conversations_open(users="U0BOB")["channel"]["id"] != channel
    error = slack_error(client.conversations_open, users="U0NOBODY")
    assert error.response["error"] == "user_not_found"

    answer = client.chat_postEphemeral(channel=channel, user="U0ALICE", text="your link")
    assert answer["message_ts"]
    assert standin.messages(channel) == []  # ephemerals are not channel history
    error = slack_error(client.chat_postEphemeral, channel=channel, user="U0NOBODY", text="x")
    assert error.response["error"] == "user_not_in_channel"
    # Slack cannot chat.update an ephemeral message either.
    error = slack_error(client.chat_update, channel=channel, ts=answer["message_ts"], text="y")
    assert error.response["error"] == "message_not_found"


def test_permalink(client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="x")["ts"]
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"]
    assert link == f"https://standin.slack.invalid/archives/{CHANNEL}/p{ts.replace('.', '')}"


def test_trigger_id_works_once(client: WebClient) -> None:
    trigger = make_trigger_id()
    view = client.views_open(trigger_id=trigger, view=modal(callback_id="onboard"))["view"]
    assert view["id"].startswith("V")
    assert view["hash"]
    assert view["team_id"] == "T0STANDIN"
    assert view["state"] == {"values": {}}
    assert view["callback_id"] == "onboard"
    error = slack_error(client.views_open, trigger_id=trigger, view=modal())
    assert error.response["error"] == "exchanged_trigger_id"


def test_late_and_garbled_trigger_ids(client: WebClient) -> None:
    error = slack_error(client.views_open, trigger_id=make_trigger_id(time.time() - 5), view=modal())
    assert error.response["error"] == "expired_trigger_id"
    error = slack_error(client.views_open, trigger_id="not-a-trigger", view=modal())
    assert error.response["error"] == "invalid_trigger_id"


def test_make_trigger_id_encodes_issue_time() -> None:
    trigger = make_trigger_id(1_700_000_000.25)
    assert trigger.startswith("1700000000250.")
    assert make_trigger_id() != make_trigger_id()


def test_trigger_ttl_is_configurable() -> None:
    with SlackStandIn(bot_token=TOKEN, trigger_ttl=30) as server:
        client = WebClient(token=TOKEN, base_url=server.base_url)
        assert client.views_open(trigger_id=make_trigger_id(time.time() - 5), view=modal())["ok"]


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal(title="A title longer than 24 ch"), "/view/title/text"),
        (modal(submit={"type": "plain_text", "text": "S" * 25}), "/view/submit/text"),
        (modal(blocks=[]), "/view/blocks"),
        (modal(blocks=[section(i) for i in range(101)]), "/view/blocks"),
        (modal(private_metadata="x" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
        ({**modal(), "type": "home"}, "/view/type"),
        (modal(blocks=[{"type": "input", "block_id": "justification", "label": {}, "element": {}}]), "/view"),
    ],
)
def test_invalid_views_refused_with_messages(client: WebClient, view: dict, pointer: str) -> None:
    trigger = make_trigger_id()
    error = slack_error(client.views_open, trigger_id=trigger, view=view)
    assert error.response["error"] == "invalid_arguments"
    [message] = error.response["response_metadata"]["messages"]
    assert message.startswith("[ERROR] ")
    assert message.endswith(f"[json-pointer:{pointer}]")
    # The refused call did not spend the trigger.
    assert client.views_open(trigger_id=trigger, view=modal())["ok"]


def test_view_as_json_string(client: WebClient) -> None:
    answer = client.api_call("views.open", json={"trigger_id": make_trigger_id(), "view": json.dumps(modal())})
    assert answer["view"]["title"]["text"] == "New IAM user"


def test_views_update_by_id_and_external_id_with_hash(client: WebClient) -> None:
    opened = client.views_open(trigger_id=make_trigger_id(), view=modal(external_id="req-1"))["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal(title="Step 2"))["view"]
    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    error = slack_error(client.views_update, view_id=opened["id"], hash=opened["hash"], view=modal())
    assert error.response["error"] == "hash_conflict"
    by_external = client.views_update(external_id="req-1", view=modal(title="Step 3", external_id="req-1"))
    assert by_external["view"]["id"] == opened["id"]
    error = slack_error(client.views_update, view_id="V404", view=modal())
    assert error.response["error"] == "not_found"


def test_views_push_and_publish(client: WebClient) -> None:
    trigger = make_trigger_id()
    assert client.views_push(trigger_id=trigger, view=modal(title="Reason"))["ok"]
    assert slack_error(client.views_push, trigger_id=trigger, view=modal()).response["error"] == (
        "exchanged_trigger_id"
    )
    home = {"type": "home", "blocks": [section(1)]}
    first = client.views_publish(user_id="U0ALICE", view=home)["view"]
    again = client.views_publish(user_id="U0ALICE", view=home)["view"]
    assert first["id"] == again["id"]
    assert slack_error(client.views_publish, user_id="U0ALICE", view=modal()).response["error"] == ("invalid_arguments")


def test_users_info_lookup_and_usergroups(standin: SlackStandIn, client: WebClient) -> None:
    user = client.users_info(user="U0ALICE")["user"]
    assert user["name"] == "alice"
    assert user["real_name"] == "Alice Doe"
    assert user["is_bot"] is False
    assert user["profile"] == {
        "email": "alice@example.com",
        "real_name": "Alice Doe",
        "display_name": "alice",
    }
    assert client.users_info(user="UBOT00001")["user"]["is_bot"] is True
    assert slack_error(client.users_info, user="U0NOBODY").response["error"] == "user_not_found"
    # slack_sdk sends users.info as a query string: values arrive as plain strings.
    assert standin.calls("users.info")[0].args == {"user": "U0ALICE"}

    assert client.users_lookupByEmail(email="bob@example.com")["user"]["id"] == "U0BOB"
    error = slack_error(client.users_lookupByEmail, email="nobody@example.com")
    assert error.response["error"] == "users_not_found"

    standin.add_usergroup("S0APPROVERS", ["U0ALICE", "U0BOB"])
    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == ["U0ALICE", "U0BOB"]
    error = slack_error(client.usergroups_users_list, usergroup="S0NOPE")
    assert error.response["error"] == "no_such_subteam"


def test_fail_next_fails_once(standin: SlackStandIn, client: WebClient) -> None:
    standin.fail_next("chat.postMessage", "channel_not_found")
    assert slack_error(client.chat_postMessage, channel=CHANNEL, text="x").response["error"] == ("channel_not_found")
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"]
    assert [c.ok for c in standin.calls("chat.postMessage")] == [False, True]


def test_wait_for_sees_calls_made_later(standin: SlackStandIn, client: WebClient) -> None:
    def later() -> None:
        time.sleep(0.2)
        client.chat_postMessage(channel=CHANNEL, text="first")
        client.chat_postMessage(channel=CHANNEL, text="approved")

    worker = threading.Thread(target=later)
    worker.start()
    calls = standin.wait_for("chat.postMessage", lambda c: c.args.get("text") == "approved", timeout=5)
    worker.join()
    assert [c.args["text"] for c in calls] == ["approved"]
    assert len(standin.wait_for("chat.postMessage", count=2, timeout=1)) == 2


def test_wait_for_timeout_names_method_and_calls_seen(standin: SlackStandIn, client: WebClient) -> None:
    client.auth_test()
    started = time.monotonic()
    with pytest.raises(AssertionError) as excinfo:
        standin.wait_for("chat.postEphemeral", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert "chat.postEphemeral" in str(excinfo.value)
    assert "auth.test" in str(excinfo.value)


def test_reset_forgets_calls_keeps_users(standin: SlackStandIn, client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="x")
    standin.reset()
    assert standin.calls() == []
    assert standin.messages(CHANNEL) == []
    assert client.users_info(user="U0ALICE")["ok"]


def test_bolt_app_verifies_its_token_against_the_standin(standin: SlackStandIn, client: WebClient) -> None:
    App(client=client, signing_secret="secret")
    [call] = standin.wait_for("auth.test", timeout=2)
    assert call.ok


def test_stop_closes_the_port() -> None:
    server = SlackStandIn(bot_token=TOKEN).start()
    client = WebClient(token=TOKEN, base_url=server.base_url, timeout=2, retry_handlers=[])
    assert client.auth_test()["ok"]
    server.stop()
    with pytest.raises(OSError):
        client.auth_test()
