"""The stand-in's fake Slack workspace: its users, channels, messages and views, and the Web API methods on them.

:class:`SlackWorkspace` holds what a Slack workspace knows and answers each Web API method the bot
calls the way Slack does, refusing what Slack refuses (:mod:`bot.sandbox.slack_rules`). It does not
serve HTTP, check tokens or record calls: :class:`~bot.sandbox.slack_standin.SlackStandIn` does.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.sandbox.slack_rules import (
    _TRIGGER_RE,
    Answer,
    Args,
    _check_view,
    _invalid_arguments,
    _message_content,
    _SlackError,
    _str,
    _view_arg,
)

BOT_ID = "BSTANDIN1"
APP_ID = "ASTANDIN1"
WORKSPACE_URL = "https://standin.slack.invalid/"


class SlackWorkspace:
    """A fake workspace's state and its Web API method handlers (``_methods``: method name -> handler).

    Methods: auth.test, conversations.open, chat.postMessage, chat.update, chat.postEphemeral,
    chat.getPermalink, views.open/update/push/publish, users.info, users.lookupByEmail,
    usergroups.users.list, apps.connections.open. Users other than the bot exist only after
    ``add_user``. Channel ids must start with C, D or G; a user id is not accepted as a channel, and
    conversations.open gives the DM ``"D" + user_id``. Message ts are unique across channels, increasing.
    Handlers run under ``_cond``'s lock and raise :class:`~bot.sandbox.slack_rules._SlackError` to refuse.
    """

    def __init__(self, bot_user_id: str, team_id: str, trigger_ttl: float) -> None:
        self.bot_user_id, self.team_id, self.trigger_ttl = bot_user_id, team_id, trigger_ttl
        # Guards the state; the stand-in also waits on it for calls. RLock: wait_for's predicate runs
        # under the lock and may itself call calls() or messages().
        self._cond = threading.Condition(threading.RLock())
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._not_in_channel: set[str] = set()
        self._last_ts_us = 0
        self._view_seq = 0
        self._init_state()
        self._add_user(bot_user_id, "iam-user-bot", "", "iam-user-bot", is_bot=True)
        self._methods: dict[str, Callable[[Args], Answer]] = {
            "auth.test": self._auth_test,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_open,  # no view stack is kept, so push behaves like open
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": lambda a: {"ok": True, "user": self._user(_str(a, "user"))},
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "apps.connections.open": lambda a: {"ok": True, "url": self.socket_mode_url()},
        }

    def socket_mode_url(self) -> str:
        """The websocket URL ``apps.connections.open`` hands out (one that leads nowhere, by default)."""
        return "wss://wss.standin.slack.invalid/link/"

    def _init_state(self) -> None:
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._views: dict[str, dict[str, Any]] = {}
        self._external_ids: dict[str, str] = {}
        self._home_views: dict[str, str] = {}  # user -> view id
        self._used_triggers: set[str] = set()

    def add_user(
        self, user_id: str, *, name: str, email: str, real_name: str | None = None, is_bot: bool = False
    ) -> None:
        """Make ``user_id`` known to users.info, users.lookupByEmail, conversations.open, postEphemeral."""
        with self._cond:
            self._add_user(user_id, name, email, real_name or name, is_bot=is_bot)

    def deactivate_user(self, user_id: str) -> dict[str, Any]:
        """Deactivate a member, as a workspace admin does: users.info answers ``deleted: true`` from
        now on. Returns the user object a ``user_change`` event carries."""
        with self._cond:
            self._users[user_id]["deleted"] = True
            return copy.deepcopy(self._users[user_id])

    def add_usergroup(self, usergroup_id: str, user_ids: list[str]) -> None:
        """Members of ``usergroup_id`` (an ``S...`` id) as usergroups.users.list answers them."""
        with self._cond:
            self._usergroups[usergroup_id] = list(user_ids)

    def set_not_in_channel(self, channel_id: str) -> None:
        """Posting (or posting ephemerally) to ``channel_id`` answers ``not_in_channel`` from now on."""
        with self._cond:
            self._not_in_channel.add(channel_id)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Non-ephemeral messages of ``channel`` as they are now (after chat.update): ts, text, blocks, ..."""
        with self._cond:
            return copy.deepcopy(list(self._messages.get(channel, {}).values()))

    def _add_user(self, user_id: str, name: str, email: str, real_name: str, *, is_bot: bool) -> None:
        profile = {"real_name": real_name, "display_name": name}
        if email:  # bots have no email in Slack's profiles
            profile["email"] = email
        user = {"id": user_id, "team_id": self.team_id, "name": name, "real_name": real_name}
        self._users[user_id] = user | {"deleted": False, "is_bot": is_bot, "profile": profile}

    def _user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self._users:
            raise _SlackError("user_not_found")
        return self._users[user_id]

    def _next_ts(self) -> str:
        # Integer microseconds: floats near 1.7e9 cannot hold six decimals reliably.
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _channel(self, args: Args) -> str:
        channel = _str(args, "channel")
        if not channel or channel[0] not in "CDG":
            raise _SlackError("channel_not_found")
        if channel in self._not_in_channel:
            raise _SlackError("not_in_channel")
        return channel

    def _auth_test(self, args: Args) -> Answer:
        answer = {"ok": True, "url": WORKSPACE_URL, "team": "Stand-in", "user": "iam-user-bot"}
        return answer | {"team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": BOT_ID}

    def _conversations_open(self, args: Args) -> Answer:
        users = [u.strip() for u in _str(args, "users").split(",") if u.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError("not_supported_by_standin")  # group DMs are not needed by the bot
        self._user(users[0])
        return {"ok": True, "channel": {"id": f"D{users[0]}"}}

    def _chat_post_message(self, args: Args) -> Answer:
        channel = self._channel(args)
        text, blocks = _message_content(args)
        message = {"type": "message", "ts": self._next_ts(), "text": text or "", "blocks": blocks or []}
        message |= {"user": self.bot_user_id, "bot_id": BOT_ID, "team": self.team_id}
        if args.get("thread_ts"):
            message["thread_ts"] = _str(args, "thread_ts")
        self._messages.setdefault(channel, {})[message["ts"]] = message
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _chat_update(self, args: Args) -> Answer:
        channel, ts = self._channel(args), _str(args, "ts")
        message = self._messages.get(channel, {}).get(ts)
        if message is None:  # also what Slack answers for an ephemeral message's ts
            raise _SlackError("message_not_found")
        text, blocks = _message_content(args)
        # Like Slack, fields left out keep their old value.
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}

    def _chat_post_ephemeral(self, args: Args) -> Answer:
        self._channel(args)
        if _str(args, "user") not in self._users:
            raise _SlackError("user_not_in_channel")
        _message_content(args)
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_get_permalink(self, args: Args) -> Answer:
        channel, ts = _str(args, "channel"), _str(args, "message_ts")
        if ts not in self._messages.get(channel, {}):
            raise _SlackError("message_not_found")
        permalink = f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _take_trigger(self, args: Args) -> str:
        trigger_id = _str(args, "trigger_id")
        match = _TRIGGER_RE.fullmatch(trigger_id)
        if match is None:
            raise _SlackError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _SlackError("exchanged_trigger_id")
        if time.time() - int(match.group(1)) / 1000 > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        return trigger_id

    def _save_view(self, view: dict[str, Any], old: dict[str, Any] | None, hash_: str) -> Answer:
        if old is not None and hash_ and hash_ != old["hash"]:
            raise _SlackError("hash_conflict")
        external_id = _str(view, "external_id")
        owner = self._external_ids.get(external_id)
        if external_id and owner is not None and (old is None or owner != old["id"]):
            raise _SlackError("duplicate_external_id")
        if old is None:
            self._view_seq += 1
            view_id = f"V{self._view_seq:010d}"
        else:
            view_id = old["id"]
        saved = {"private_metadata": "", "callback_id": "", "external_id": "", **view, "id": view_id}
        saved |= {"team_id": self.team_id, "app_id": APP_ID, "bot_id": BOT_ID, "root_view_id": view_id}
        saved |= {"hash": f"{int(time.time())}.{secrets.token_hex(4)}", "state": {"values": {}}}
        self._views[view_id] = saved
        if external_id:
            self._external_ids[external_id] = view_id
        return {"ok": True, "view": saved}

    def _views_open(self, args: Args) -> Answer:
        trigger_id = self._take_trigger(args)
        view = _view_arg(args)
        _check_view(view, "modal")
        answer = self._save_view(view, None, "")
        # Only a successful exchange spends the trigger, so a caller may fix its view and retry in time.
        self._used_triggers.add(trigger_id)
        return answer

    def _views_update(self, args: Args) -> Answer:
        view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
        if not view_id and not external_id:
            raise _invalid_arguments(["[ERROR] either view_id or external_id is required"])
        old = self._views.get(view_id or self._external_ids.get(external_id, ""))
        if old is None:
            raise _SlackError("not_found")
        view = _view_arg(args)
        _check_view(view, old["type"])
        return self._save_view(view, old, _str(args, "hash"))

    def _views_publish(self, args: Args) -> Answer:
        user_id = _str(args, "user_id")
        self._user(user_id)
        view = _view_arg(args)
        _check_view(view, "home")
        answer = self._save_view(view, self._views.get(self._home_views.get(user_id, "")), _str(args, "hash"))
        self._home_views[user_id] = answer["view"]["id"]
        return answer

    def _users_lookup_by_email(self, args: Args) -> Answer:
        email = _str(args, "email").lower()
        for user in self._users.values():
            if email and user["profile"].get("email", "").lower() == email:
                return {"ok": True, "user": user}
        raise _SlackError("users_not_found")  # sic: Slack's error for this method is plural

    def _usergroups_users_list(self, args: Args) -> Answer:
        usergroup = _str(args, "usergroup")
        if usergroup not in self._usergroups:
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(self._usergroups[usergroup])}
