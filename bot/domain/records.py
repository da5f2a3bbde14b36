"""What the store hands back besides requests: secret metadata, journal entries, the outcome of
counting an approval. Plain data, no I/O; every backend of :mod:`bot.storage` returns these."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.models import OnboardingRequest
from bot.domain.states import FindingState, RotationState, SecretState, StepState


@dataclass(frozen=True)
class SecretRow:
    """A one-time secret's metadata, never its ciphertext (gone once handed out) nor its key
    (never held). Times are aware UTC.

    ``access_key_id`` is None when no access key was sealed; ``console`` says whether a console
    password was. ``notice_channel``/``notice_ts`` locate the recipient's persistent DM notice.
    Side flags, each set once: ``alerted_at`` (a second reveal attempt was reported),
    ``reissued_at``/``reissued_by`` (new credentials replace this row's), ``expiry_done_at`` (the
    IAM work after expiry finished).
    """

    id: str
    request_id: str
    recipient: str
    user_name: str
    state: SecretState
    created_at: datetime
    expires_at: datetime
    revealed_at: datetime | None = None
    access_key_id: str | None = None
    console: bool = False
    replaces: str | None = None
    notice_channel: str | None = None
    notice_ts: str | None = None
    alerted_at: datetime | None = None
    expired_at: datetime | None = None
    expiry_done_at: datetime | None = None
    reissued_at: datetime | None = None
    reissued_by: str | None = None
    seal: str | None = None  # bot.domain.seal.RecordSeal.link of the row, written with it


@dataclass(frozen=True)
class NewSecret:
    """A freshly sealed secret as the store receives it: AES-GCM ``nonce`` and ``ciphertext`` (with
    its tag), and the metadata. ``secret_id`` is the digest of the link id
    (:func:`bot.domain.ids.link_digest`); neither the link id nor the key is given to the store."""

    secret_id: str
    request_id: str
    recipient: str
    user_name: str
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    expires_at: datetime
    access_key_id: str | None = None
    console: bool = False
    replaces: str | None = None
    seal: str | None = None  # bot.domain.seal.RecordSeal.link of these fields and the id


@dataclass(frozen=True)
class JournalEntry:
    """One journaled provisioning step. ``detail`` holds non-secret facts (``access_key_id``,
    an IAM error code and message…)."""

    index: int
    label: str
    state: StepState
    attempts: int
    detail: dict[str, object] = field(default_factory=dict)


class ApprovalVerdict(enum.StrEnum):
    """What counting one approver's yes did (:meth:`bot.storage.base.Store.record_approval`)."""

    APPROVED = "approved"  # this yes completed the approvals; the request moved to approved
    RECORDED = "recorded"  # counted; more distinct approvers are still needed
    DUPLICATE = "duplicate"  # this approver had already said yes; nothing changed
    NOT_PENDING = "not_pending"  # someone decided first (or it was cancelled/expired); nothing changed
    NOT_READY = "not_ready"  # no readable review is stored yet; nothing changed


@dataclass(frozen=True)
class ApprovalResult:
    """The verdict, the request as it is now, and the distinct approvals counted of those needed."""

    verdict: ApprovalVerdict
    request: OnboardingRequest | None
    approvals: int = 0
    required: int = 1


@dataclass(frozen=True)
class Lease:
    """Who works on a provisioning request (``host:pid:random``) and until when (aware UTC)."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class RotationRow:
    """The key rotation record of one IAM user (:data:`bot.domain.states.ROTATION_MOVES`).

    ``old_key_id``: the key being replaced (deactivated once the new link is revealed);
    ``kept_key_ids``: the user's other keys when the rotation started (a recovery never deletes
    them); ``new_key_id`` and ``secret_id`` (the digest of the new link) once made; ``request_id``:
    the request that created the user (the link belongs to it). Times are aware UTC.
    """

    user_name: str
    state: RotationState
    old_key_id: str
    owner: str
    request_id: str
    started_at: datetime
    updated_at: datetime
    kept_key_ids: tuple[str, ...] = ()
    new_key_id: str | None = None
    secret_id: str | None = None
    error: str | None = None
    seal: str | None = None  # bot.domain.seal.RecordSeal.rotation of what it started with


@dataclass(frozen=True)
class Finding:
    """One lifecycle finding: ``kind`` (:mod:`bot.domain.lifecycle`, e.g. ``rotation_due``) about
    ``subject`` (an access key id, a Slack user id…), with non-secret ``detail`` (user name,
    owner, age in days…). Opened once; resolved when what it reports is gone."""

    kind: str
    subject: str
    state: FindingState
    created_at: datetime
    detail: dict[str, object] = field(default_factory=dict)
    resolved_at: datetime | None = None
