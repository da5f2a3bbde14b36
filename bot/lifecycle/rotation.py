"""Keys that age: one rotation notice per key, the owner's **Rotate**, the old key switched off when
the new one is revealed, and ``KEY_ROTATION_ENFORCE``.

**Rotate** (``rotate_access_key``) is the owner's alone (the ``iam-user-bot:owner`` tag, read from
IAM at click time); anyone else's click is refused, audited and changes nothing. A click makes a
new access key next to the old one and delivers it by a one-time link (:mod:`bot.credentials`),
so nothing breaks until the owner has the new secret; revealing the link deactivates the old key.
IAM allows two access keys per user, inactive ones included: a second key that is inactive, or
the unrevealed key of an earlier rotation, is deleted to make room (the answer says so); two
*active* keys are refused, asking the owner to switch off the one they no longer use.

Each step is a move of the user's rotation record (:data:`bot.domain.states.ROTATION_MOVES`),
audited with the request that created the user. A process that dies mid-way leaves a record
``started`` or ``key_created``: the periodic check (:meth:`Rotations.recover`) deletes the key it
made (its secret died with the process) and fails it, or finishes it when its link went out.

The record lives in the store, which others may be able to write: before completion or recovery
writes IAM, :class:`~bot.credentials.ownership.LinkRecords` checks it against the user's tags (and
the revealed link against the one it delivered), and recovery deletes only keys IAM made after the
rotation started.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.keys import KeyKeeper
from bot.credentials.links import LinkOutcome, Links
from bot.credentials.ownership import LinkRecords
from bot.domain.changes import Changes
from bot.domain.lifecycle import KEY_DEACTIVATED, ROTATION_DUE, KeyInfo, LifecyclePolicy, ManagedUser
from bot.domain.lifecycle import parse_rotate_value as parse_value
from bot.domain.models import CreatedCredentials
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG
from bot.domain.records import RotationRow, SecretRow
from bot.domain.states import ROTATION_RUNNING, RotationEvent, RotationState, SecretState
from bot.lifecycle import messages
from bot.slack.blocks import escape, mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)

# A rotation started or with its key made this long ago belongs to a process that is gone.
STALE_AFTER = timedelta(minutes=15)
# How far IAM's clock (a key's CreateDate) may run behind the store's: a recovery deletes only keys
# IAM made after the rotation started, less this.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class Rotations:
    """Rotation notices, the owner's **Rotate**, its completion, enforcement and recovery.

    Args:
        iam: reads the owner tag at click time; keys: the key writes (managed users only);
        links: seals and delivers the new key; changes: Homes refresh; policy: the key age rules;
        approval_channel: where enforcement is reported; records: checks a rotation's record
        against the user's tags before the IAM writes its completion or recovery ask for.
    """

    store: Store
    iam: IamGateway
    keys: KeyKeeper
    links: Links
    messenger: Messenger
    changes: Changes
    policy: LifecyclePolicy
    approval_channel: str
    records: LinkRecords

    # -- notices and enforcement (the periodic check) ------------------------------------------

    def notify(self, user: ManagedUser, key: KeyInfo, age: int) -> bool:
        """The owner's one rotation notice for ``key`` (a finding opened once: with any number of
        checks and processes, one DM). True when this call sent (or tried to send) it."""
        detail = {"user_name": user.user_name, "owner": user.owner, "age_days": age}
        if not self.store.open_finding(ROTATION_DUE, key.key_id, detail=detail):
            return False
        sent = None
        if user.owner:
            text, blocks = messages.rotation_notice(user.user_name, key, age, self.policy.max_age_days)
            sent = self.messenger.dm(user.owner, text, blocks)
        event = "rotation_notice_sent" if sent else "rotation_notice_failed"
        audited = {**detail, "access_key_id": key.key_id, **({} if user.owner else {"reason": "no owner tag"})}
        self.store.audit(event, request_id=user.request_id, detail=audited)
        return True

    def enforce(self, user: ManagedUser, key: KeyInfo, age: int) -> bool:
        """``KEY_ROTATION_ENFORCE``: deactivate a key past ``KEY_MAX_AGE_DAYS`` (audited), and tell
        its owner and the approvers once. True when this call told them.

        Raises:
            IamError: IAM refused (the next check tries again).
        """
        deactivated = self.keys.deactivate_access_key(user.user_name, key.key_id)
        detail = {"user_name": user.user_name, "owner": user.owner, "access_key_id": key.key_id, "age_days": age}
        self.store.audit(
            "access_key_deactivated",
            request_id=user.request_id,
            detail={**detail, "deactivated": deactivated, "reason": f"older than {self.policy.max_age_days} days"},
        )
        self.store.resolve_finding(ROTATION_DUE, key.key_id, detail={"why": "deactivated past the age limit"})
        if not self.store.open_finding(KEY_DEACTIVATED, key.key_id, detail=detail):
            return False
        max_age = self.policy.max_age_days
        if user.owner:
            self.messenger.dm(user.owner, messages.key_deactivated_for_owner(user.user_name, key.key_id, age, max_age))
        note = messages.key_deactivated_for_approvers(user.user_name, key.key_id, user.owner, age, max_age)
        self.messenger.post(self.approval_channel, note)
        if user.request_id:
            self.changes.request_updated(user.request_id)
        return True

    def resolve_gone(self, active_keys: set[str]) -> int:
        """Resolve the open rotation findings whose key is no longer active (rotated, deleted or
        switched off by hand), so the approvers' Home lists only keys still due. How many."""
        gone = [f for f in self.store.open_findings(ROTATION_DUE, limit=1000) if f.subject not in active_keys]
        why = {"why": "key no longer active"}
        return sum(self.store.resolve_finding(ROTATION_DUE, f.subject, detail=why) for f in gone)

    # -- the owner's click ---------------------------------------------------------------------

    def rotate(self, value: str, actor: str) -> LinkOutcome:
        """**Rotate** clicked by ``actor``; ``value`` is the button's ``<user>|<key id>`` (anyone
        can forge it: everything is checked against IAM and the store now). Returns what to tell
        the clicker."""
        parsed = parse_value(value)
        if parsed is None:
            return self._refuse(actor, untrusted_id(value), None, "malformed", "That is not a key of yours I know.")
        user_name, key_id = parsed
        try:
            return self._rotate(user_name, key_id, actor)
        except IamError as error:
            log.warning("rotation refused by IAM: %s", error.code)
            return LinkOutcome(False, f"IAM refused to rotate `{escape(user_name)}`'s key ({error.code}). Try again.")

    def _rotate(self, user_name: str, key_id: str, actor: str) -> LinkOutcome:
        tags = self.iam.tags_of(user_name)
        shown = f"`{escape(user_name)}`"
        if tags is None:
            return self._refuse(actor, user_name, None, "no such user", f"There is no IAM user {shown} any more.")
        if tags.get(MANAGED_TAG) != "true":
            return self._refuse(actor, user_name, None, "not managed", f"I did not make {shown}, so I leave it alone.")
        owner, request_id = tags.get(OWNER_TAG), tags.get(REQUEST_ID_TAG)
        if owner != actor:
            who = mention(owner) if owner else "its owner"
            return self._refuse(actor, user_name, request_id, "not the owner", f"Only {who} can rotate {shown}'s keys.")
        request = self.store.get_request(request_id) if request_id else None
        if request is None:
            message = f"I have no record of the request that made {shown}; ask an approver to re-issue its key."
            return self._refuse(actor, user_name, request_id, "no request on record", message)
        current = self.store.get_rotation(user_name)
        if current is not None and current.state is RotationState.DELIVERED and self.finish_if_revealed(current):
            current = self.store.get_rotation(user_name)
        if current is not None and current.state in ROTATION_RUNNING:
            return self._refuse(actor, user_name, request.id, "running", f"A rotation of {shown} is under way.")
        if current is not None and current.state is RotationState.COMPLETED and current.old_key_id == key_id:
            message = f"`{key_id}` was rotated already: `{current.new_key_id}` replaced it."
            return self._refuse(actor, user_name, request.id, "rotated already", message)
        keys = self.keys.list_keys(user_name)
        if key_id not in {k.key_id for k in keys}:
            message = f"{shown} has no access key `{key_id}` any more. DM me `keys` for its keys."
            return self._refuse(actor, user_name, request.id, "no such key", message)
        pending = current.new_key_id if current is not None and current.state is RotationState.DELIVERED else None
        others = [k for k in keys if k.key_id != key_id]
        in_the_way = [k for k in others if k.key_id == pending or not k.active]
        if len(keys) - len(in_the_way) >= 2:  # IAM: two access keys per user
            active = ", ".join(f"`{k.key_id}`" for k in keys)
            message = (
                f"{shown} already has two active access keys ({active}) and IAM allows two per user. "
                "Deactivate the one nobody uses (`aws iam update-access-key --status Inactive`), then rotate."
            )
            return self._refuse(actor, user_name, request.id, "two active keys", message)
        kept = [k.key_id for k in others if k not in in_the_way]
        now = self.store.clock()
        record = RotationRow(user_name, RotationState.STARTED, key_id, actor, request.id, now, now, tuple(kept))
        started = self.store.start_rotation(
            user_name,
            old_key_id=key_id,
            owner=actor,
            request_id=request.id,
            kept_key_ids=kept,
            actor=actor,
            started_at=now,
            seal=self.records.seal.rotation(record),  # what recovery and completion check
        )
        if started is None:
            return self._refuse(actor, user_name, request.id, "running", f"A rotation of {shown} is under way.")
        return self._make_and_deliver(started, [k.key_id for k in in_the_way])

    def _make_and_deliver(self, rotation: RotationRow, in_the_way: list[str]) -> LinkOutcome:
        user_name, owner = rotation.user_name, rotation.owner
        try:
            deleted = [key for key in in_the_way if self.keys.delete_access_key(user_name, key)]
            new_key, secret = self.keys.create_access_key(user_name)
        except IamError as error:
            self.store.move_rotation(user_name, RotationEvent.FAILED, actor=owner, error=str(error))
            return LinkOutcome(False, f"IAM refused to make a new key for `{escape(user_name)}`: {error}.")
        self.store.move_rotation(
            user_name, RotationEvent.KEY_CREATED, actor=owner, new_key_id=new_key, detail={"deleted": deleted}
        )
        credentials = CreatedCredentials(user_name=user_name, access_key_id=new_key, secret_access_key=secret)
        issued = self.links.issue(rotation.request_id, owner, credentials)
        sent = self.links.deliver(rotation.request_id, owner, user_name, None, issued)
        self.store.move_rotation(user_name, RotationEvent.DELIVERED, actor=owner, secret_id=issued.secret_id)
        self.changes.request_updated(rotation.request_id)
        if not sent:
            return LinkOutcome(False, f"I made `{new_key}` but could not send its link; click *Rotate* again.")
        return LinkOutcome(True, messages.rotation_delivered(user_name, new_key, rotation.old_key_id, deleted))

    def _refuse(self, actor: str, user_name: str, request_id: str | None, reason: str, message: str) -> LinkOutcome:
        detail = {"user_name": untrusted_id(user_name, 64), "reason": reason}
        self.store.audit("refused_rotation", request_id=request_id, actor=actor, detail=detail)
        return LinkOutcome(False, message)

    # -- completion ------------------------------------------------------------------------------

    def revealed(self, row: SecretRow) -> None:
        """A one-time link was revealed: if it holds a new key of a rotation waiting for it (the
        user's rotation is ``delivered`` and the link is newer than it), the rotation completes."""
        if row.access_key_id is None:
            return
        rotation = self.store.get_rotation(row.user_name)
        if rotation is None or rotation.state is not RotationState.DELIVERED:
            return
        if row.access_key_id == rotation.old_key_id or row.created_at < rotation.started_at:
            return
        self._complete(rotation, row)

    def finish_if_revealed(self, rotation: RotationRow) -> bool:
        """Complete a ``delivered`` rotation whose link was revealed (the reveal's own work may have
        died with its process). True when it completed."""
        row = self._newest_link(rotation, revealed=True)
        return row is not None and self._complete(rotation, row)

    def _newest_link(self, rotation: RotationRow, *, revealed: bool) -> SecretRow | None:
        """The newest link made for ``rotation`` (revealed ones only, if asked)."""
        links = [
            s
            for s in self.store.secrets_for_request(rotation.request_id)
            if s.user_name == rotation.user_name
            and s.access_key_id not in (None, rotation.old_key_id)
            and s.created_at >= rotation.started_at
            and (s.state is SecretState.REVEALED or not revealed)
        ]
        return links[-1] if links else None

    def _complete(self, rotation: RotationRow, link: SecretRow) -> bool:
        """Switch the old key off: only if the rotation's record agrees with IAM's tags and
        ``link`` is the link it delivered (or re-issued from it); else nothing is written, and
        the approvers hear of it once (:meth:`LinkRecords.rotation_refusal`)."""
        action = "switch off the old access key of a key rotation"
        if self.records.rotation_refusal(rotation, action, link) is not None:
            return False
        user_name, old_key, new_key = rotation.user_name, rotation.old_key_id, link.access_key_id
        deactivated = self.keys.deactivate_access_key(user_name, old_key)
        detail = {"old_key_id": old_key, "new_key_id": new_key, "old_key_deactivated": deactivated}
        if self.store.move_rotation(user_name, RotationEvent.COMPLETED, actor=None, detail=detail) is None:
            return False
        self.store.resolve_finding(ROTATION_DUE, old_key, detail={"why": "rotated", "new_key_id": new_key})
        self.messenger.dm(rotation.owner, messages.rotation_completed(user_name, old_key, new_key, deactivated))
        self.changes.request_updated(rotation.request_id)
        return True

    # -- recovery (the periodic check) ---------------------------------------------------------

    def recover(self, now: datetime) -> list[str]:
        """Finish what dead processes left: a ``key_created`` rotation whose link went out moves
        on; other rotations stuck ``started``/``key_created`` for :data:`STALE_AFTER` get the key
        they made deleted and fail; ``delivered`` ones whose link was revealed complete. Returns
        the user names handled."""
        handled = []
        for rotation in self.store.rotations_in(ROTATION_RUNNING):
            if now - rotation.updated_at < STALE_AFTER:
                continue
            try:
                if self._recover(rotation):
                    handled.append(rotation.user_name)
            except IamError as error:
                log.warning("recovering a rotation failed (%s); the next check tries again", error.code)
        for rotation in self.store.rotations_in([RotationState.DELIVERED]):
            try:
                if self.finish_if_revealed(rotation):
                    handled.append(rotation.user_name)
            except IamError as error:
                log.warning("finishing a rotation failed (%s); the next check tries again", error.code)
        return handled

    def _recover(self, rotation: RotationRow) -> bool:
        link = self._newest_link(rotation, revealed=False) if rotation.state is RotationState.KEY_CREATED else None
        if link is not None:
            moved = self.store.move_rotation(
                rotation.user_name, RotationEvent.DELIVERED, actor=None, secret_id=link.id, detail={"recovered": True}
            )
            return moved is not None
        if self.records.rotation_refusal(rotation, "delete the access keys a key rotation made") is not None:
            error = "refused: the rotation's record does not match the user's tags in IAM"
            failed = self.store.move_rotation(rotation.user_name, RotationEvent.FAILED, actor=None, error=error)
            return failed is not None
        keep = {rotation.old_key_id, *rotation.kept_key_ids}
        since = rotation.started_at - CLOCK_SKEW  # a key older than the rotation is not one it made
        keys = self.keys.list_keys(rotation.user_name)
        made = [k.key_id for k in keys if k.key_id not in keep and k.created >= since]
        deleted = [key for key in made if self.keys.delete_access_key(rotation.user_name, key)]
        error = "interrupted: the process running it stopped; click Rotate again"
        moved = self.store.move_rotation(
            rotation.user_name, RotationEvent.FAILED, actor=None, error=error, detail={"deleted": deleted}
        )
        return moved is not None
