"""Text helpers every Slack message and view of the bot uses. Pure: no I/O.

Slack's limits are in :mod:`bot.domain.limits`; slack_sdk's models check most of them when
``to_dict`` runs, these helpers keep text inside them and keep user text from becoming markup.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.models import OnboardingRequest


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (Slack rejects longer fields)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape ``& < >`` so user text cannot become a mention, a link or ``<!channel>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str | None) -> str:
    """``<@U…>`` (Slack shows the person's name), or "someone"."""
    return f"<@{user_id}>" if user_id else "someone"


def untrusted_id(value: str, limit: int = 24) -> str:
    """An id taken from a button value or a typed command, safe to show and to audit: cut to
    ``limit`` characters and escaped, since anyone who can click can put anything there."""
    return escape(truncate(value, limit).replace("`", "'"))


def user_names(request: OnboardingRequest) -> str:
    """The request's IAM user names as inline code, comma-separated."""
    return ", ".join(f"`{name}`" for name in request.form.user_names)


def slack_date(when: datetime) -> str:
    """A Slack date token: each reader sees it in their own time zone."""
    stamp = int(when.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when.strftime('%Y-%m-%d %H:%M UTC')}>"
