"""What ``iam-user-bot check`` reports (one :class:`CheckLine` per check) and what its checks read
(:class:`Inputs`: from valid settings, or leniently from the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.config import Settings

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class CheckLine:
    """One check's outcome: ``ok``, what was found, and (when not ok) how to fix it.

    ``skipped``: the check did not run because an earlier problem must be fixed first (it
    counts as ok for the exit status; that problem has its own FAIL line).
    ``warn``: passed, but something deserves a look (shown as ``warn`` with its fix; the exit
    status stays 0).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False
    warn: bool = False

    def render(self) -> str:
        mark = "skip" if self.skipped else "FAIL" if not self.ok else "warn" if self.warn else "ok  "
        shown = self.fix and (self.warn or not self.ok)
        return f"{mark} {self.name}: {self.detail}" + (f" — fix: {self.fix}" if shown else "")


def _ids(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip().isalnum() and p.strip()[:1] in ("U", "W"))


@dataclass(frozen=True)
class Inputs:
    """What the checks after the configuration need: from valid settings, or read leniently
    from the environment when the configuration is broken (so one bad variable hides nothing)."""

    database_path: Path
    public_base_url: str | None
    slack_base_url: str
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    approver_ids: tuple[str, ...] = ()
    requester_ids: tuple[str, ...] = ()
    approver_group: str | None = None
    requester_group: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Inputs:
        return cls(
            database_path=settings.database_path,
            public_base_url=str(settings.public_base_url),
            slack_base_url=settings.slack_base_url,
            bot_token=settings.slack_bot_token.get_secret_value(),
            app_token=settings.slack_app_token.get_secret_value() if settings.slack_app_token else None,
            approver_ids=settings.approver_user_ids,
            requester_ids=settings.requester_user_ids,
            approver_group=settings.approver_usergroup_id,
            requester_group=settings.requester_usergroup_id,
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Inputs:
        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        url = get("PUBLIC_BASE_URL")
        base = get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
        return cls(
            database_path=Path(get("DATABASE_PATH") or "iam-user-bot.db"),
            public_base_url=url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname else None,
            slack_base_url=base if base.endswith("/") else base + "/",
            bot_token=get("SLACK_BOT_TOKEN") if get("SLACK_BOT_TOKEN").startswith("xoxb-") else None,
            app_token=get("SLACK_APP_TOKEN") if get("SLACK_APP_TOKEN").startswith("xapp-") else None,
            approver_ids=_ids(get("APPROVER_USER_IDS")),
            requester_ids=_ids(get("REQUESTER_USER_IDS")),
            approver_group=get("APPROVER_USERGROUP_ID") or None,
            requester_group=get("REQUESTER_USERGROUP_ID") or None,
        )
