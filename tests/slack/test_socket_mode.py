"""Socket Mode end to end: the bot process connects to a local Socket Mode server, acks every
envelope (with the ``response_action`` payloads of its forms) and keeps acking within 2.5 s while
Slack refreshes its connection.

The server (:mod:`bot.sandbox.socket_mode_server`) hands out websocket URLs through the Web API
stand-in's ``apps.connections.open``, greets with ``hello``, and on :meth:`refresh` sends
``disconnect`` (``refresh_requested``) and closes the old connection 5 s later unless the bot has.
Each new connection takes 100 ms to open, like the round trips to Slack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox.processes import BotProcess, MotoServer
from bot.sandbox.slack_standin import SlackStandIn
from bot.sandbox.socket_mode_server import Envelope, SocketModeServer, SocketModeUser
from tests.conftest import BOT_TOKEN, REQUESTER, bot_env
from tests.support import wizard_driver as wiz

pytestmark = pytest.mark.e2e  # the bot runs as a server process

APP_TOKEN = "xapp-1-A0IAMUSERBOT-0000-socketmodetest"
ACK_LIMIT = 2.5  # seconds; Slack's own limit is 3
RETIRE_AFTER = 5.0  # seconds from disconnect to the server closing the old connection itself


@pytest.fixture
def hello_delay() -> float:
    """Seconds from a new connection's opening to its ``hello`` (a test may override it)."""
    return 0.0


@pytest.fixture
def socket_slack(hello_delay: float) -> Iterator[tuple[SocketModeServer, SlackStandIn]]:
    with (
        SocketModeServer(retire_after=RETIRE_AFTER, handshake_delay=0.1, hello_delay=hello_delay) as server,
        SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN, socket_mode=server) as standin,
    ):
        standin.add_user(REQUESTER, name="rita.requester", email="rita.requester@example.com")
        yield server, standin


@pytest.fixture
def socket_bot(moto_server: MotoServer, socket_slack, tmp_path: Path) -> Iterator[BotProcess]:
    """The bot under gunicorn in Socket Mode: an app-level token and no signing secret."""
    _, standin = socket_slack
    process = BotProcess(env={}, log_path=tmp_path / "bot.log")
    env = bot_env(moto_server, standin, tmp_path / "bot.db", "", process.url)
    process.env = {**env, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_SIGNING_SECRET": ""}
    with process:
        yield process


def test_every_envelope_around_a_refresh_is_acked_within_2_5_s(socket_bot, socket_slack) -> None:
    server, slack = socket_slack
    first = server.wait_live(1)[0]
    user = SocketModeUser(server)
    # The form opens over Socket Mode: the slash command's ack, then views.open with its trigger.
    _, trigger_id = user.slash_command(REQUESTER, "new")
    view = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0].response["view"]
    no_recipients = wiz.state(view, wiz.details([], "nina.x"))

    commands: list[tuple[Envelope, str]] = []
    statuses: list[Envelope] = []
    submissions: list[Envelope] = []

    def keep_acting(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            commands.append(user.slash_command(REQUESTER, "new"))
            statuses.append(user.slash_command(REQUESTER, "status")[0])
            submissions.append(user.view_submission(REQUESTER, view, no_recipients))
            time.sleep(0.1)

    keep_acting(1.0)
    assert server.refresh() == [first.id]
    refreshed = time.monotonic()
    keep_acting(3.0)
    second = server.wait_live(1, newer_than=first.id)[0]
    every = [e for e, _ in commands] + statuses + submissions
    done = {e.envelope_id: e for e in server.wait_acked(every, timeout=10)}

    delays = sorted(e.ack_delay for e in done.values() if e.ack_delay is not None)
    # Unacked: on which connection, and when after the refresh (s) they were sent.
    lost = [(e.link_id, e.sent_at and round(e.sent_at - refreshed, 3)) for e in done.values() if e.ack_delay is None]
    assert len(delays) == len(every), f"{len(every) - len(delays)} of {len(every)} never acked: {lost} {server.links()}"
    assert delays[-1] <= ACK_LIMIT, f"slowest acks (s): {delays[-5:]}"
    # Envelopes went out on both connections, and the new one carried the later acks.
    assert {e.link_id for e in done.values()} == {first.id, second.id}
    assert any(e.ack_link_id == second.id for e in done.values())
    # The bot closed the old connection itself, before the server would have.
    old = next(link for link in server.links() if link.id == first.id)
    assert old.closed_by == "app" and old.closed_at is not None and old.told_to_go_at is not None
    assert old.closed_at - old.told_to_go_at < RETIRE_AFTER

    # What the acks carried: the form's field errors, the status text; each command opened a form.
    for envelope in submissions:
        payload = done[envelope.envelope_id].ack_payload or {}
        assert payload.get("response_action") == "errors" and set(payload["errors"]) == {"recipients"}, payload
    for envelope in statuses:
        assert "request" in str((done[envelope.envelope_id].ack_payload or {}).get("text", "")).lower()
    triggers = {t for _, t in commands}
    opened = slack.wait_for("views.open", lambda c: c.ok and c.args.get("trigger_id") in triggers, count=len(triggers))
    assert {c.args["trigger_id"] for c in opened} == triggers
    # LOG_LEVEL=DEBUG (the fixture's): still no frame of the websocket in the log, nor what it carried.
    typed = "Typed,Pa55word-over-socket"
    with_password = wiz.state(view, wiz.details([REQUESTER], "rita.x", ["console"], "custom", typed))
    (answered,) = server.wait_acked([user.view_submission(REQUESTER, view, with_password)])
    assert (answered.ack_payload or {}).get("response_action") == "errors"
    log = socket_bot.log_text()
    assert "Traceback" not in log and " DEBUG websockets" not in log and typed not in log


@pytest.mark.parametrize("hello_delay", [1.0])
def test_envelopes_sent_on_the_old_connection_after_the_new_one_opened_are_acked(socket_bot, socket_slack) -> None:
    # Until the new connection's hello, Slack keeps sending on the old one: the bot must still read it.
    server, _ = socket_slack
    first = server.wait_live(1)[0]
    user = SocketModeUser(server)
    assert server.refresh() == [first.id]
    deadline = time.monotonic() + 10
    while not any(link.id > first.id for link in server.links()) and time.monotonic() < deadline:
        time.sleep(0.01)
    new = next(link for link in server.links() if link.id > first.id)
    assert new.hello_at is None  # opened, not yet greeted: what is sent now goes to the old one
    sent = []
    while next(x for x in server.links() if x.id == new.id).hello_at is None and len(sent) < 40:
        sent.append(user.slash_command(REQUESTER, "status")[0])
        time.sleep(0.02)
    done = server.wait_acked(sent, timeout=10)
    on_old = [e for e in done if e.link_id == first.id]
    assert len(on_old) >= 10, [e.link_id for e in done]  # the window was exercised
    delays = sorted(e.ack_delay for e in done if e.ack_delay is not None)
    assert len(delays) == len(sent), f"{len(sent) - len(delays)} of {len(sent)} envelopes never acked"
    assert delays[-1] <= ACK_LIMIT, f"slowest acks (s): {delays[-5:]}"
    # Then the bot closes it itself (after its drain), before the server would.
    deadline = time.monotonic() + RETIRE_AFTER + 2
    while (
        old := next(x for x in server.links() if x.id == first.id)
    ).closed_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old.closed_by == "app" and old.closed_at - old.told_to_go_at < RETIRE_AFTER


def test_a_refused_app_token_is_one_line_without_the_token() -> None:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.slack.socket_mode import SocketModeConnection, SocketModeError

    with SocketModeServer() as server, SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN, socket_mode=server) as s:
        app = App(client=WebClient(token=BOT_TOKEN, base_url=s.base_url))
        wrong = "xapp-1-A0IAMUSERBOT-0000-notthetoken"
        with pytest.raises(SocketModeError) as refused:
            SocketModeConnection(app, wrong, s.base_url).start()
        assert str(refused.value) == "Slack refused the app-level token (invalid_auth)"
        assert server.links() == []
        connection = SocketModeConnection(app, APP_TOKEN, s.base_url)
        connection.start()
        try:
            assert connection.connected and len(server.wait_live(1)) == 1
        finally:
            connection.close()
        assert not connection.connected
