"""The one state machine: every status a request, a one-time secret or a provisioning step can
have, and the only moves between them, as tables. Pure: no I/O.

A table maps ``(status now, event) → status after``. The storage layer enforces it: each move is
one compare-and-set on the current status with its audit row in the same transaction
(:meth:`bot.storage.base.Store.move_request` and friends), and nothing else writes a status. The
event's value is the name of the audit event written with the move.

Requests::

    pending ──approved──▶ approved ──provisioning_started──▶ provisioning ──provisioned──▶ provisioned
       │                                                          └────────failed─────────▶ failed
       ├──denied──▶ denied   ├──cancelled──▶ cancelled   └──expired──▶ expired

One-time secrets (the link's ciphertext is deleted by every move out of ``sealed``)::

    sealed ──link_revealed──▶ revealed
           ──link_expired───▶ expired
           ──reissue_started / unsent_links_discarded──▶ superseded

``reissue_started`` also applies to a revealed, expired or superseded secret without changing its
state: it marks the secret re-issued (once), which is the compare-and-set that lets one click win.

Provisioning steps (the journal)::

    (none) ──step_started──▶ started ──step_done──▶ done
                               │  └──step_failed──▶ failed
    started, done ──step_started──▶ started      (a re-run after a crash)

Key rotations, one record per IAM user (the owner's **Rotate** click; :mod:`bot.lifecycle.rotation`)::

    (none), completed, failed, delivered ──rotation_started──▶ started
    started ──rotation_key_created──▶ key_created ──rotation_delivered──▶ delivered
    delivered ──rotation_completed──▶ completed          (the new link revealed, the old key off)
    started, key_created ──rotation_failed──▶ failed      (IAM refused, or the run was interrupted)

Lifecycle findings, one per ``(kind, subject)``: a key due for rotation, an owner who left, an
unused credential. Opening one is what makes its notice go out exactly once::

    (none) ──finding_opened──▶ open ──finding_resolved──▶ resolved
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class RequestStatus(enum.StrEnum):
    """A request's life: pending → approved → provisioning → provisioned, or an end state."""

    PENDING = "pending"
    APPROVED = "approved"
    PROVISIONING = "provisioning"
    PROVISIONED = "provisioned"
    FAILED = "failed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def words(self) -> str:
        """The state as a person would say it, for replies and messages."""
        return STATUS_WORDS[self]


STATUS_WORDS = {
    RequestStatus.PENDING: "waiting for approval",
    RequestStatus.APPROVED: "approved, provisioning about to start",
    RequestStatus.PROVISIONING: "approved, creating the IAM users",
    RequestStatus.PROVISIONED: "done: IAM users created and credentials sent",
    RequestStatus.FAILED: "failed",
    RequestStatus.DENIED: "denied",
    RequestStatus.CANCELLED: "cancelled by the requester",
    RequestStatus.EXPIRED: "expired without a decision",
}


class RequestEvent(enum.StrEnum):
    """What moves a request; the value is the audit event written with the move."""

    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PROVISIONING_STARTED = "provisioning_started"
    PROVISIONED = "provisioned"
    FAILED = "failed"


S, E = RequestStatus, RequestEvent
REQUEST_MOVES: Mapping[tuple[RequestStatus, RequestEvent], RequestStatus] = {
    (S.PENDING, E.APPROVED): S.APPROVED,
    (S.PENDING, E.DENIED): S.DENIED,
    (S.PENDING, E.CANCELLED): S.CANCELLED,
    (S.PENDING, E.EXPIRED): S.EXPIRED,
    (S.APPROVED, E.PROVISIONING_STARTED): S.PROVISIONING,
    (S.PROVISIONING, E.PROVISIONED): S.PROVISIONED,
    (S.PROVISIONING, E.FAILED): S.FAILED,
}
del S, E

# Statuses no event leaves.
FINAL_STATUSES = frozenset(s for s in RequestStatus if not any(now is s for now, _ in REQUEST_MOVES))
# A request in one of these will still create IAM users (its names are taken).
OPEN_STATUSES = (RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.PROVISIONING)


class SecretState(enum.StrEnum):
    """A one-time secret's life (the ``secrets`` of the store)."""

    SEALED = "sealed"
    REVEALED = "revealed"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class SecretEvent(enum.StrEnum):
    """What moves a one-time secret; the value is the audit event written with the move."""

    REVEALED = "link_revealed"
    EXPIRED = "link_expired"
    REISSUED = "reissue_started"
    DISCARDED = "unsent_links_discarded"


SECRET_MOVES: Mapping[tuple[SecretState, SecretEvent], SecretState] = {
    (SecretState.SEALED, SecretEvent.REVEALED): SecretState.REVEALED,
    (SecretState.SEALED, SecretEvent.EXPIRED): SecretState.EXPIRED,
    (SecretState.SEALED, SecretEvent.REISSUED): SecretState.SUPERSEDED,
    (SecretState.SEALED, SecretEvent.DISCARDED): SecretState.SUPERSEDED,
    (SecretState.REVEALED, SecretEvent.REISSUED): SecretState.REVEALED,
    (SecretState.EXPIRED, SecretEvent.REISSUED): SecretState.EXPIRED,
    (SecretState.SUPERSEDED, SecretEvent.REISSUED): SecretState.SUPERSEDED,
}


class StepState(enum.StrEnum):
    """A provisioning step's state in the journal."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


class StepEvent(enum.StrEnum):
    """What moves a journaled step; the value is the audit event written with the move."""

    STARTED = "step_started"
    DONE = "step_done"
    FAILED = "step_failed"


STEP_MOVES: Mapping[tuple[StepState | None, StepEvent], StepState] = {
    (None, StepEvent.STARTED): StepState.STARTED,
    (StepState.STARTED, StepEvent.STARTED): StepState.STARTED,
    (StepState.DONE, StepEvent.STARTED): StepState.STARTED,
    (StepState.STARTED, StepEvent.DONE): StepState.DONE,
    (StepState.STARTED, StepEvent.FAILED): StepState.FAILED,
}


class RotationState(enum.StrEnum):
    """A key rotation's life (one record per IAM user)."""

    STARTED = "started"  # the owner clicked; no new key yet
    KEY_CREATED = "key_created"  # the new key exists (its id is recorded); its link is not out yet
    DELIVERED = "delivered"  # the new key's one-time link is out; the old key still works
    COMPLETED = "completed"  # the link was revealed and the old key deactivated
    FAILED = "failed"  # IAM refused, or the run was interrupted; what it made was deleted again


class RotationEvent(enum.StrEnum):
    """What moves a key rotation; the value is the audit event written with the move."""

    STARTED = "rotation_started"
    KEY_CREATED = "rotation_key_created"
    DELIVERED = "rotation_delivered"
    COMPLETED = "rotation_completed"
    FAILED = "rotation_failed"


R, RE = RotationState, RotationEvent
ROTATION_MOVES: Mapping[tuple[RotationState | None, RotationEvent], RotationState] = {
    (None, RE.STARTED): R.STARTED,
    (R.COMPLETED, RE.STARTED): R.STARTED,
    (R.FAILED, RE.STARTED): R.STARTED,
    # A new click while the previous link waits (lost, or expired unopened): its key is replaced.
    (R.DELIVERED, RE.STARTED): R.STARTED,
    (R.STARTED, RE.KEY_CREATED): R.KEY_CREATED,
    (R.KEY_CREATED, RE.DELIVERED): R.DELIVERED,
    (R.DELIVERED, RE.COMPLETED): R.COMPLETED,
    (R.STARTED, RE.FAILED): R.FAILED,
    (R.KEY_CREATED, RE.FAILED): R.FAILED,
}
del R, RE
# A rotation in one of these is under way: another click waits for it to end.
ROTATION_RUNNING = (RotationState.STARTED, RotationState.KEY_CREATED)


class FindingState(enum.StrEnum):
    """A lifecycle finding's life: open until what it reports is gone."""

    OPEN = "open"
    RESOLVED = "resolved"


class FindingEvent(enum.StrEnum):
    """What moves a finding; the value is the audit event written with the move."""

    OPENED = "finding_opened"
    RESOLVED = "finding_resolved"


FINDING_MOVES: Mapping[tuple[FindingState | None, FindingEvent], FindingState] = {
    (None, FindingEvent.OPENED): FindingState.OPEN,
    (FindingState.OPEN, FindingEvent.RESOLVED): FindingState.RESOLVED,
}


def request_sources(event: RequestEvent) -> tuple[RequestStatus, ...]:
    """The statuses ``event`` may move a request from (the compare-and-set's expected values)."""
    return tuple(now for now, happened in REQUEST_MOVES if happened is event)


def request_target(event: RequestEvent) -> RequestStatus:
    """The status ``event`` moves a request to (one per event)."""
    (target,) = {after for (_, happened), after in REQUEST_MOVES.items() if happened is event}
    return target


def secret_sources(event: SecretEvent) -> tuple[SecretState, ...]:
    """The states ``event`` may move a secret from."""
    return tuple(now for now, happened in SECRET_MOVES if happened is event)


def step_sources(event: StepEvent) -> tuple[StepState | None, ...]:
    """The states ``event`` may move a journaled step from (None: not journaled yet)."""
    return tuple(now for now, happened in STEP_MOVES if happened is event)


def rotation_sources(event: RotationEvent) -> tuple[RotationState | None, ...]:
    """The states ``event`` may move a rotation from (None: no record yet)."""
    return tuple(now for now, happened in ROTATION_MOVES if happened is event)


def rotation_target(event: RotationEvent) -> RotationState:
    """The state ``event`` moves a rotation to (one per event)."""
    (target,) = {after for (_, happened), after in ROTATION_MOVES.items() if happened is event}
    return target
