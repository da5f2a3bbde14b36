"""Credentials nobody uses: one digest per check to the approvers listing the bot-made users whose
password or access key went unused for ``UNUSED_CREDENTIALS_DAYS`` (CIS AWS Foundations 1.12;
AWS Config's ``iam-user-unused-credentials-check``), each with **Disable** (approvers only,
audited). A credential is reported once for each stretch of disuse (a finding per credential and
last-use date); a check that finds nothing new posts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.keys import KeyKeeper
from bot.credentials.links import LinkOutcome
from bot.domain.lifecycle import UNUSED_CREDENTIAL, UnusedCredential
from bot.lifecycle import messages
from bot.slack.blocks import escape, untrusted_id
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.storage.base import Store


@dataclass
class UnusedCredentials:
    """The approvers' digest and its **Disable** buttons.

    Args:
        unused_days: ``UNUSED_CREDENTIALS_DAYS``; approval_channel: where the digest goes.
    """

    store: Store
    keys: KeyKeeper
    messenger: Messenger
    people: People
    approval_channel: str
    unused_days: int

    def report(self, found: Sequence[UnusedCredential]) -> list[UnusedCredential]:
        """Post one digest of the credentials in ``found`` not reported before; returns those.

        At most :data:`~bot.lifecycle.messages.DIGEST_USERS_MAX` users fit one message (Slack: 50
        blocks); the others are not marked reported, so the next check lists them.
        """
        fresh: list[UnusedCredential] = []
        users: set[str] = set()
        held_back: set[str] = set()
        for item in found:
            if item.user_name not in users and len(users) >= messages.DIGEST_USERS_MAX:
                held_back.add(item.user_name)
                continue
            detail = {
                "user_name": item.user_name,
                "owner": item.owner,
                "credential": item.credential,
                "unused_days": item.days,
                "since": item.since.isoformat(),
            }
            if self.store.open_finding(UNUSED_CREDENTIAL, item.subject, detail=detail):
                fresh.append(item)
                users.add(item.user_name)
        if fresh:
            text, blocks = messages.unused_digest(fresh, self.unused_days, more=len(held_back))
            posted = self.messenger.post(self.approval_channel, text, blocks)
            event = "unused_credentials_reported" if posted else "unused_credentials_report_failed"
            self.store.audit(event, detail={"user_names": sorted(users), "credentials": len(fresh)})
        return fresh

    def disable(self, user_name: str, actor: str, message: tuple[str, str] | None) -> LinkOutcome:
        """**Disable** on the digest: approvers only (resolved now); every access key made
        inactive and the login profile deleted; audited ``user_disabled``; a note in the digest's
        thread (``message`` is its ``(channel, ts)``) so the other approvers see it."""
        shown = untrusted_id(user_name, 64)
        if actor not in self.people.approvers():
            detail = {"user_name": shown, "reason": "not an approver"}
            self.store.audit("refused_disable", actor=actor, detail=detail)
            return LinkOutcome(False, "Only approvers can disable IAM users. Nothing was changed.")
        try:
            if self.keys.gateway.tags_of(user_name) is None:
                self.store.audit("refused_disable", actor=actor, detail={"user_name": shown, "reason": "no such user"})
                return LinkOutcome(False, f"There is no IAM user `{escape(shown)}` any more.")
            result = self.keys.disable_user(user_name)
        except IamError as error:
            self.store.audit("refused_disable", actor=actor, detail={"user_name": shown, "reason": error.code})
            return LinkOutcome(False, f"IAM refused to disable `{escape(shown)}`: {error}")
        detail = {
            "user_name": user_name,
            "keys_deactivated": list(result.keys),
            "login_profile_deleted": result.login_profile,
            "reason": "unused credentials",
        }
        self.store.audit("user_disabled", actor=actor, detail=detail)
        note = messages.disabled_by(user_name, actor, result)
        if message is not None:
            self.messenger.post(message[0], note, thread_ts=message[1])
        return LinkOutcome(True, note)
