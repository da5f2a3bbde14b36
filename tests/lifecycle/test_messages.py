"""The lifecycle's messages stay inside Slack's limits, and a digest too big for one message leaves
the rest for the next check (no moto, no Slack: a store on disk and a recording messenger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.domain.lifecycle import KeyInfo, OwnedKeys, UnusedCredential
from bot.domain.limits import MESSAGE_BLOCKS_MAX, SECTION_TEXT_MAX
from bot.lifecycle import messages
from bot.lifecycle.unused import UnusedCredentials
from bot.storage.sqlite import SqliteStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def unused(user: str, credential: str = "password") -> UnusedCredential:
    return UnusedCredential(user, "U1", credential, NOW - timedelta(days=60), 60, True)


class Posts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[Any]]] = []

    def post(self, channel: str, text: str, blocks: Any = None, thread_ts: str | None = None) -> str:
        self.sent.append((channel, text, [b.to_dict() for b in blocks or []]))
        return "1.0"


def test_a_digest_of_many_users_fits_one_message_and_the_rest_wait_for_the_next_check(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    posts = Posts()
    report = UnusedCredentials(store, None, posts, None, "C0APPROVALS", 45)  # type: ignore[arg-type]
    found = [unused(f"user.{n:03d}") for n in range(60)] + [unused("user.000", "AKIAEXAMPLE000000001")]

    first = report.report(found)

    assert len({f.user_name for f in first}) == messages.DIGEST_USERS_MAX
    assert len([f for f in first if f.user_name == "user.000"]) == 2  # a user's credentials stay together
    (sent,) = posts.sent
    assert len(sent[2]) <= MESSAGE_BLOCKS_MAX and "14 more user(s)" in str(sent[2])
    assert all(len(b.get("text", {}).get("text", "")) <= SECTION_TEXT_MAX for b in sent[2])
    second = report.report(found)
    assert sorted(f.user_name for f in second) == [f"user.{n:03d}" for n in range(46, 60)]
    assert report.report(found) == [] and len(posts.sent) == 2


def test_the_home_key_blocks_stay_within_their_budget() -> None:
    keys = (KeyInfo("AKIAEXAMPLE000000001", "Active", NOW - timedelta(days=100)),)
    owned = [OwnedKeys(f"user.{n}", keys) for n in range(40)]
    blocks = messages.home_key_blocks(owned, NOW, 90, limit=20)
    assert len(blocks) == 20 and "DM me `keys`" in str(blocks[-1].to_dict())
    assert ":warning: past 90 days" in str(blocks[1].to_dict())
    assert len(messages.keys_reply(owned, NOW, 90)) <= SECTION_TEXT_MAX
