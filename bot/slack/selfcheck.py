"""The Slack calls of ``iam-user-bot check``, read-only: ``auth.test``, ``users.info``,
``usergroups.users.list`` and, in Socket Mode, ``apps.connections.open`` (which hands out a
websocket URL; nothing connects to it).

Each answer is ``(value, problem)``: Slack's answer, or why there is none (Slack's error code, or
the network error in words). :mod:`bot.ops.check_slack` words them as check lines, and
:mod:`bot.ops.startup` as the one line that stops ``serve``.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

Answer = tuple[Any, str | None]
UNREACHABLE = "unreachable: "  # how a problem that is no answer from Slack begins
# The probes' own logger: slack_sdk would log each failed call at ERROR, next to the one line
# ``check`` or ``serve`` prints about it.
_QUIET = logging.getLogger(__name__ + ".sdk")
_QUIET.disabled = True


class SlackProbe:
    """One bot token's read-only view of the workspace.

    Args:
        base_url: the Web API base URL (``SLACK_API_URL``, with its trailing ``/``).
    """

    def __init__(self, token: str, base_url: str) -> None:
        # No retries: a probe reports what it found at once, and says so in one line.
        self.client = WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=[], logger=_QUIET)

    def _ask(self, call: Any, **args: Any) -> Answer:
        try:
            return call(**args), None
        except SlackApiError as error:
            return None, str(error.response.get("error") or "unknown")
        except OSError as error:
            return None, f"{UNREACHABLE}{error}"

    def auth(self) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
        """``auth.test``: ``(answer, answer headers, problem)``."""
        answer, problem = self._ask(self.client.auth_test)
        if answer is None:
            return None, {}, problem
        return dict(answer.data), dict(answer.headers), None

    def user(self, user_id: str) -> Answer:
        """``users.info``: the user object, or Slack's error code."""
        answer, problem = self._ask(self.client.users_info, user=user_id)
        return (answer["user"] if answer is not None else None), problem

    def usergroup_members(self, usergroup_id: str) -> Answer:
        """``usergroups.users.list``: the members' ids, or Slack's error code."""
        answer, problem = self._ask(self.client.usergroups_users_list, usergroup=usergroup_id)
        return (list(answer["users"]) if answer is not None else None), problem

    def socket_mode(self, app_token: str) -> str | None:
        """``apps.connections.open`` with the app-level token: None when it works, else the problem."""
        return self._ask(self.client.apps_connections_open, app_token=app_token)[1]
