"""A bot built in process for the lifecycle tests: real IAM calls to moto server, real Slack calls
to the stand-in, and two clocks a test moves: IAM's dates of a user (its keys' creation and last
use, moved back in the tests' moto server: :func:`Life.age`), and the store's "now" (links, leases,
stale rotations)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import logs
from bot.app import build_services
from bot.aws.iam import IamGateway
from bot.config import load_settings
from bot.credentials.vault import open_sealed
from bot.domain.ids import link_digest
from bot.provisioning.lease import Leases
from bot.services import Services
from bot.slack.messenger import make_web_client
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, SECOND_APPROVER, Clock
from tests.support.lifecycle import age, buttons_of, keys_of, seed_user
from tests.support.provisioning import OPEN, Recorder


@dataclass
class Life:
    """The in-process bot and what the test inspects."""

    services: Services
    store: SqliteStore
    clock: Clock
    iam: Any
    slack: Any
    moto: Any
    executor: ThreadPoolExecutor
    recorder: Recorder

    def drain(self) -> None:
        """Wait for the work handed to the executor (one worker: FIFO)."""
        self.executor.submit(lambda: None).result(timeout=30)

    def user(self, name: str, owner: str, *, console: bool = True, key: bool = True, sealed: bool = False) -> str:
        """A bot-made user as provisioning leaves it (:func:`tests.support.lifecycle.seed_user`;
        ``sealed``: approved under the bot's approval seal); the store's clock then stands a
        second after IAM made it, so its age in days is what :meth:`age` makes it."""
        seal = self.services.approvals.guard.seal if sealed else None
        request_id = seed_user(self.store, self.iam, name, owner, console=console, key=key, seal=seal)
        self.clock.now = max(self.clock.now, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
        return request_id

    def age(self, name: str, days: float) -> None:
        """Let ``days`` pass in IAM for ``name`` (its keys get older, their last uses further back)."""
        age(self.moto.url, name, days)

    def keys(self, name: str) -> dict[str, str]:
        """Access key id → status, as IAM holds them."""
        return keys_of(self.iam, name)

    def dms(self, user: str) -> list[dict[str, Any]]:
        """Persistent messages in the bot's DM with ``user`` (text and blocks as sent)."""
        return [c.args for c in self.slack.calls("chat.postMessage") if c.args.get("channel") == f"D{user}"]

    def posts(self, channel: str = APPROVAL_CHANNEL) -> list[dict[str, Any]]:
        return [c.args for c in self.slack.calls("chat.postMessage") if c.args.get("channel") == channel]

    def reveal_newest(self, recipient: str) -> dict[str, Any]:
        """Reveal the newest one-time link sent to ``recipient`` through the bot's own reveal path."""
        call = [c for c in self.slack.calls("chat.postEphemeral") if c.args.get("user") == recipient][-1]
        urls = [e["url"] for e in buttons_of(call.args) if "url" in e]
        page, key = urls[0].split("#", 1)
        link_id = page.rsplit("/", 1)[1]
        claimed = self.services.reveals.reveal(link_id)
        assert claimed is not None, "a delivered link must reveal once"
        self.drain()
        return {"secret_id": link_digest(link_id), **json.loads(open_sealed(link_id, key, *claimed))}

    def events(self, name: str | None = None) -> list[str]:
        return [e.event for e in self.store.audit_events() if name is None or e.event == name]


def make_life(
    moto_server: Any, iam: Any, slack: Any, tmp_path: Path, clock: Clock, leases: Leases | None = None, **settings: Any
) -> Life:
    config = load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="unused-here",
        slack_api_url=slack.base_url,
        approval_channel_id=APPROVAL_CHANNEL,
        approver_user_ids=f"{APPROVER},{SECOND_APPROVER}",
        public_base_url="https://bot.example.com",
        **settings,
    )
    store = SqliteStore(tmp_path / "life.db", clock=clock)
    client = moto_server.boto3_client("iam")
    recorder = Recorder()
    client.meta.events.register("before-parameter-build.iam", recorder)
    gateway = IamGateway(client, moto_server.boto3_client("sts"), sleep=lambda _: None)
    executor = ThreadPoolExecutor(max_workers=1)
    services = build_services(
        config,
        store=store,
        iam=gateway,
        client=make_web_client(BOT_TOKEN, slack.base_url),
        executor=executor,
        background=ThreadPoolExecutor(max_workers=1),
        leases=leases,
    )
    OPEN.append(services)
    return Life(services, store, clock, iam, slack, moto_server, executor, recorder)


@pytest.fixture(autouse=True)
def own_log_context() -> Iterator[None]:
    """The bot binds request and Slack ids to the calling thread's log context; these tests call
    it from pytest's own thread, so each test gets a context that is undone afterwards."""
    with logs.log_context(request_id="-", slack_user="-"):
        yield


@pytest.fixture
def life(moto_server, iam, slack, tmp_path: Path, clock: Clock) -> Iterator[Life]:
    world = make_life(moto_server, iam, slack, tmp_path, clock)
    yield world
    world.executor.shutdown(wait=True)
