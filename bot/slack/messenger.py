"""The Slack Web API calls the bot makes (every one but an ack): posts, updates, DMs, views.

Each method returns whether Slack took the call, logs Slack's error code when it did not,
and never logs message text (it may name people and user names, never secrets, but logs are
kept longer than messages).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from cachetools import LRUCache, TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

log = logging.getLogger(__name__)

USERGROUP_CACHE_SECONDS = 60.0
USER_INFO_CACHE_SECONDS = 300.0
CACHE_SIZE = 10_000  # entries per cache: far more people than a workspace asks about in minutes


def make_web_client(token: str, base_url: str) -> WebClient:
    """A WebClient that retries connection errors and honours 429 ``Retry-After`` (twice)."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)],
    )


class Messenger:
    """Posting, updating and DMing through one :class:`WebClient`."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        # Answers that never change (a DM channel, a permalink) and answers that may (a user, a
        # user group), each bounded; one lock for all, held only to read or write a cache.
        self._dm_channels: LRUCache[str, str] = LRUCache(CACHE_SIZE)
        self._permalinks: LRUCache[tuple[str, str], str] = LRUCache(CACHE_SIZE)
        self._users: TTLCache[str, dict] = TTLCache(CACHE_SIZE, USER_INFO_CACHE_SECONDS)
        self._groups: TTLCache[str, frozenset[str]] = TTLCache(CACHE_SIZE, USERGROUP_CACHE_SECONDS)
        self._last_groups: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def _blocks(self, blocks: Sequence[Block] | None) -> list[dict] | None:
        return [b.to_dict() for b in blocks] if blocks is not None else None

    def post(
        self, channel: str, text: str, blocks: Sequence[Block] | None = None, thread_ts: str | None = None
    ) -> str | None:
        """``chat.postMessage`` (in the thread of ``thread_ts`` when given); the message ``ts`` or
        None (error logged). Unfurling is off: a credential link must never be fetched by Slack."""
        try:
            answer = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=self._blocks(blocks),
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as error:
            log.warning("chat.postMessage to %s failed: %s", channel, error.response.get("error"))
            return None
        return str(answer["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: Sequence[Block] | None = None) -> bool:
        """``chat.update`` of a message the bot posted (not for ephemeral messages)."""
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=self._blocks(blocks) or [])
        except SlackApiError as error:
            log.warning("chat.update %s/%s failed: %s", channel, ts, error.response.get("error"))
            return False
        return True

    def dm_channel(self, user_id: str) -> str | None:
        """The id of the bot's DM with ``user_id`` (``conversations.open``), cached."""
        with self._lock:
            if user_id in self._dm_channels:
                return self._dm_channels[user_id]
        try:
            answer = self.client.conversations_open(users=user_id)
        except SlackApiError as error:
            log.warning("conversations.open with %s failed: %s", user_id, error.response.get("error"))
            return None
        channel = str(answer["channel"]["id"])
        with self._lock:
            self._dm_channels[user_id] = channel
        return channel

    def dm(self, user_id: str, text: str, blocks: Sequence[Block] | None = None) -> str | None:
        """A persistent message in the bot's DM with ``user_id``; returns its ts or None."""
        channel = self.dm_channel(user_id)
        return self.post(channel, text, blocks) if channel else None

    def ephemeral(self, channel: str, user_id: str, text: str, blocks: Sequence[Block] | None = None) -> bool:
        """``chat.postEphemeral``: only ``user_id`` sees it, and only until they reload Slack."""
        try:
            # Unfurling off, as for posts: a credential link must never be fetched by Slack.
            self.client.chat_postEphemeral(
                channel=channel,
                user=user_id,
                text=text,
                blocks=self._blocks(blocks),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as error:
            log.warning("chat.postEphemeral to %s in %s failed: %s", user_id, channel, error.response.get("error"))
            return False
        return True

    def ephemeral_dm(self, user_id: str, text: str, blocks: Sequence[Block] | None = None) -> bool:
        """An ephemeral message in the bot's DM with ``user_id`` (contract: credential links)."""
        channel = self.dm_channel(user_id)
        return self.ephemeral(channel, user_id, text, blocks) if channel else False

    def user_info(self, user_id: str, *, fresh: bool = False) -> dict | None:
        """A Slack user's ``users.info`` object (needs ``users:read``; the e-mail needs
        ``users:read.email``), cached for five minutes; ``fresh`` asks Slack again (whether an
        account was deactivated meanwhile: ``deleted``). When Slack refuses, ``{"error": code}``
        (not cached), so callers can tell ``user_not_found`` from a passing failure."""
        with self._lock:
            cached = None if fresh else self._users.get(user_id)
        if cached is not None:
            return cached
        try:
            user = dict(self.client.users_info(user=user_id)["user"])
        except SlackApiError as error:
            code = str(error.response.get("error") or "unknown_error")
            log.info("users.info %s failed: %s", user_id, code)
            return {"error": code}
        with self._lock:
            self._users[user_id] = user
        return user

    def usergroup_members(self, usergroup_id: str) -> frozenset[str]:
        """Members of a Slack user group (``usergroups.users.list``), cached for a minute.

        On a Slack error the last known members are kept if any, else nobody: a failing
        lookup must never widen who may approve.
        """
        with self._lock:
            cached = self._groups.get(usergroup_id)
        if cached is not None:
            return cached
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=usergroup_id)["users"])
        except SlackApiError as error:
            log.warning("usergroups.users.list %s failed: %s", usergroup_id, error.response.get("error"))
            with self._lock:
                return self._last_groups.get(usergroup_id, frozenset())
        with self._lock:
            self._groups[usergroup_id] = users
            self._last_groups[usergroup_id] = users
        return users

    def permalink(self, channel: str, ts: str) -> str | None:
        """The permanent URL of a message (``chat.getPermalink``), cached: it never changes.

        Returns None when Slack refuses (message deleted, bot removed from the channel).
        """
        key = (channel, ts)
        with self._lock:
            if key in self._permalinks:
                return self._permalinks[key]
        try:
            answer = self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as error:
            log.warning("chat.getPermalink %s/%s failed: %s", channel, ts, error.response.get("error"))
            return None
        link = str(answer["permalink"])
        with self._lock:
            self._permalinks[key] = link
        return link

    def open_view(self, trigger_id: str, view: View | dict, what: str) -> bool:
        """``views.open`` with a ``trigger_id`` (valid 3 s, once: call it before anything slow);
        ``what`` names the modal in the log line when Slack refuses."""
        try:
            self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as error:
            log.warning("views.open (%s) failed: %s", what, error.response.get("error"))
            return False
        return True

    def update_view(self, view_id: str, view: View | dict, view_hash: str | None, what: str) -> bool:
        """``views.update`` guarded by the view's ``hash``: when the view changed meanwhile
        (``hash_conflict``, another click) the newer view stands and this one is dropped."""
        try:
            self.client.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as error:
            log.info("views.update (%s) failed: %s", what, error.response.get("error"))
            return False
        return True

    def publish_home(self, user_id: str, view: View) -> bool:
        """``views.publish``: replace ``user_id``'s App Home tab with ``view``."""
        try:
            self.client.views_publish(user_id=user_id, view=view.to_dict())
        except SlackApiError as error:
            log.warning("views.publish for %s failed: %s", user_id, error.response.get("error"))
            return False
        return True
