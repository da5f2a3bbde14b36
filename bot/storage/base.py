"""The storage interface every stage depends on: one :class:`Store` protocol, any backend.

Rules every backend keeps (the contract tests in ``tests/storage/`` check them on each):

- A status changes only through ``move_request``, ``move_secret``-like claims (``claim_secret``,
  ``claim_expiry``, ``claim_reissue``, ``discard_unsent_links``), the journal's
  ``start_step`` / ``finish_step`` / ``fail_step``, the key rotations' ``start_rotation`` /
  ``move_rotation`` and the findings' ``open_finding`` / ``resolve_finding``, each one compare-and-set on the status the
  table of :mod:`bot.domain.states` allows, with its audit row in the same transaction: of two
  concurrent callers (threads, processes, hosts) exactly one wins, and a loser changes nothing.
- The audit log is append-only.
- Nothing stored can be turned into a credential: one-time secrets are AES-GCM ciphertext whose
  key only the link holds, custom passwords are sealed under a key the store never sees.
- Times are aware UTC datetimes; ``clock`` gives "now" (tests pass a controllable one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from bot.domain.models import AuditEvent, OnboardingRequest, PermissionExpansion, RequestForm, Review, RiskFlag
from bot.domain.plan import Step
from bot.domain.records import ApprovalResult, Finding, JournalEntry, Lease, NewSecret, RotationRow, SecretRow
from bot.domain.states import RequestEvent, RequestStatus, RotationEvent, RotationState


class Store(Protocol):
    """Requests, approvals, the provisioning journal, one-time secrets, drafts and the audit log."""

    clock: Callable[[], datetime]
    schema_version: int  # the version of the backend's schema this code reads and writes

    # -- audit -----------------------------------------------------------------------------------

    def audit(
        self, event: str, *, request_id: str | None = None, actor: str | None = None, detail: dict | None = None
    ) -> None:
        """Append one audit event that changes no state (a refusal, a delivery). No secret in ``detail``."""
        ...

    def audit_events(self, *, since: datetime | None = None, request_id: str | None = None) -> list[AuditEvent]:
        """Audit events in the order written, optionally from ``since`` on and for one request."""
        ...

    # -- requests --------------------------------------------------------------------------------

    def create_request(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """Store a new pending request under a fresh id, audited ``filed``."""
        ...

    def get_request(self, request_id: str) -> OnboardingRequest | None: ...

    def requests_where(
        self, *, requester: str | None = None, statuses: Iterable[RequestStatus] | None = None, limit: int = 50
    ) -> list[OnboardingRequest]:
        """Requests, newest first, filtered by requester and/or status."""
        ...

    def requests_for_recipient(self, user_id: str, *, limit: int = 20) -> list[OnboardingRequest]:
        """Requests in which ``user_id`` receives an IAM user, newest first."""
        ...

    def move_request(
        self,
        request_id: str,
        event: RequestEvent,
        *,
        actor: str | None,
        detail: dict | None = None,
        decided_by: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        lease: Lease | None = None,
    ) -> OnboardingRequest | None:
        """Move a request by ``event`` if the state table allows it from its status now.

        One compare-and-set with the audit row (event name ``event``; detail ``from``, ``to`` and
        ``detail``). ``decided_by`` also stamps ``decided_at``; ``lease`` is taken with the move
        (``provisioning_started``); a move into a final status drops the lease. Returns the
        request after the move, or None when it was not in a status the event leaves.
        """
        ...

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Where the approval message is (audited ``approval_posted``)."""
        ...

    def forget_custom_password(self, request_id: str) -> bool:
        """Erase a request's sealed custom password (audited); whether there was one."""
        ...

    # -- approvals -------------------------------------------------------------------------------

    def save_review(
        self,
        request_id: str,
        expansion: PermissionExpansion,
        flags: Sequence[RiskFlag],
        approvals_required: int,
        offered: str | None = None,
    ) -> bool:
        """Store what approvers judge, once (audited ``permissions_read``); False if already stored.
        ``offered`` (the seal of what approvers are shown) comes back as ``Review.offered``."""
        ...

    def get_review(self, request_id: str) -> Review | None:
        """The stored review with the approvals so far (oldest first), or None before it is read."""
        ...

    def record_approval(self, request_id: str, approver: str, fingerprint: str) -> ApprovalResult:
        """Count one approver's yes for ``fingerprint``; when enough distinct approvers agree, move the
        request ``approved`` (the state table's move) in the same transaction."""
        ...

    def mark_reminded(self, request_id: str) -> bool:
        """Set the half-life reminder marker of a pending request; True only for the one caller."""
        ...

    # -- provisioning: lease, plan, journal -------------------------------------------------------

    def claim_lease(self, request_id: str, lease: Lease, is_gone: Callable[[str], bool]) -> bool:
        """Take the lease of a ``provisioning`` request if it is free (none, expired, or its owner
        ``is_gone``); True when taken. A live owner's unexpired lease is not free, even to itself
        (that process may be running the request on another thread)."""
        ...

    def renew_lease(self, request_id: str, lease: Lease) -> bool:
        """Extend the lease ``lease.owner`` holds; False when another owner has it."""
        ...

    def release_lease(self, request_id: str, owner: str) -> None:
        """Give the lease up, if ``owner`` holds it."""
        ...

    def save_plan(self, request_id: str, steps: Sequence[Step], console_url: str | None) -> None:
        """Store the plan once; a second call keeps the first."""
        ...

    def get_plan(self, request_id: str) -> tuple[list[Step], str | None] | None:
        """The stored ``(steps, console_url)``, or None."""
        ...

    def journal(self, request_id: str) -> dict[int, JournalEntry]:
        """Every journaled step of a request, by step index."""
        ...

    def start_step(self, request_id: str, index: int, label: str) -> bool:
        """Journal step ``index`` as started (a re-run from started or done counts another attempt),
        audited ``step_started``; False (nothing written) when the state table refuses it (failed)."""
        ...

    def finish_step(self, request_id: str, index: int, label: str, detail: dict) -> bool:
        """started → done, audited ``step_done``; False when the step was not started."""
        ...

    def fail_step(self, request_id: str, index: int, label: str, detail: dict) -> bool:
        """started → failed, audited ``step_failed`` (``detail``: IAM error code and message)."""
        ...

    def discard_unsent_links(self, request_id: str) -> int:
        """Supersede the sealed links of an interrupted run of a request still ``provisioning``
        (ciphertext deleted, audited ``unsent_links_discarded``); how many."""
        ...

    # -- one-time secrets ------------------------------------------------------------------------
    # A secret's id here is the digest of its link id (bot.domain.ids.link_digest), never the
    # link id itself: the store cannot address or burn a link, and neither can a copy of it.

    def put_secret(self, secret: NewSecret) -> None:
        """Store a sealed secret (audited ``link_issued``, or ``link_reissued`` when it replaces one)."""
        ...

    def unsealed_rotations(self, limit: int = 500) -> list[RotationRow]:
        """Key rotation records without a seal (started before records were sealed); for the
        one-time upgrade only."""
        ...

    def seal_rotation(self, user_name: str, seal: str) -> bool:
        """Give an unsealed rotation record its seal (compare-and-set on having none), audited
        ``rotation_record_sealed``; False (nothing written) when it has one or is gone."""
        ...

    def unsealed_secrets(self, limit: int = 500) -> list[SecretRow]:
        """Link records without a seal (written before records were sealed), oldest first; for the
        one-time upgrade (:mod:`bot.credentials.ownership`), never the request path."""
        ...

    def seal_secret(self, secret_id: str, seal: str) -> bool:
        """Give an unsealed link record its seal (compare-and-set on having none), audited
        ``link_record_sealed``; False (nothing written) when it has one or is gone."""
        ...

    def upgrade_pending(self, name: str) -> bool:
        """Whether the one-time upgrade ``name`` (``seal_link_records``) is still to be done: the
        schema change that asks for it was applied and :meth:`finish_upgrade` not yet called."""
        ...

    def finish_upgrade(self, name: str) -> bool:
        """Mark the upgrade ``name`` done (once, audited ``upgrade_done``); False if it was not pending."""
        ...

    def claim_secret(self, secret_id: str) -> tuple[bytes, bytes] | None:
        """sealed → revealed: hand out ``(nonce, ciphertext)`` once and delete them; None for an
        unknown, used, replaced or expired id."""
        ...

    def secret_row(self, secret_id: str) -> SecretRow | None: ...

    def secrets_for_request(self, request_id: str) -> list[SecretRow]:
        """Every secret issued for a request, oldest first."""
        ...

    def sealed_secrets_for_recipient(self, user_id: str, *, limit: int = 20) -> list[SecretRow]:
        """``user_id``'s secrets not yet revealed, newest first."""
        ...

    def set_secret_notice(self, secret_id: str, channel: str, ts: str) -> None:
        """Where the recipient's persistent DM notice of the secret is."""
        ...

    def mark_reuse(self, secret_id: str) -> SecretRow | None:
        """Flag a reveal attempt on a revealed secret, once (audited); the row when this call did."""
        ...

    def due_expiries(self, lease_seconds: float, limit: int = 100) -> list[str]:
        """Ids whose expiry work is due: sealed past expiry, or expired with unfinished work claimed
        more than ``lease_seconds`` ago."""
        ...

    def claim_expiry(self, secret_id: str, lease_seconds: float) -> SecretRow | None:
        """sealed → expired (ciphertext deleted), or retake a stale claim; the row when this caller won."""
        ...

    def finish_expiry(self, secret_id: str, detail: dict) -> bool:
        """Mark the IAM work after expiry done, once (audited ``link_expiry_done``)."""
        ...

    def claim_reissue(self, secret_id: str, actor: str, states: Iterable[str]) -> SecretRow | None:
        """The right to replace a secret's credentials, once: marks it re-issued (a sealed, unexpired
        one becomes superseded); the row as claimed, or None."""
        ...

    def release_reissue(self, secret_id: str, actor: str, error: str) -> None:
        """Give a re-issue claim back after IAM refused (audited ``reissue_failed``)."""
        ...

    # -- lifecycle: key rotations (one record per IAM user) and findings ---------------------------

    def start_rotation(
        self,
        user_name: str,
        *,
        old_key_id: str,
        owner: str,
        request_id: str,
        kept_key_ids: Sequence[str],
        actor: str | None,
        started_at: datetime | None = None,
        seal: str | None = None,
    ) -> RotationRow | None:
        """Begin a rotation of ``user_name``'s key ``old_key_id``: (no record), completed, failed or
        delivered → started (the state table's ``rotation_started``), the new key, link and error
        of any earlier rotation cleared; audited with the request id. ``started_at`` (default: the
        store's clock) and ``seal`` (:meth:`bot.domain.seal.RecordSeal.rotation` of the record as
        started) are stored with it. None (nothing written) while
        another rotation of the user is started or has its key created."""
        ...

    def move_rotation(
        self,
        user_name: str,
        event: RotationEvent,
        *,
        actor: str | None,
        detail: dict | None = None,
        new_key_id: str | None = None,
        secret_id: str | None = None,
        error: str | None = None,
    ) -> RotationRow | None:
        """Any other move of the rotation table (key created, delivered, completed, failed), one
        compare-and-set with its audit row (detail ``user_name``, ``from``, ``to`` and ``detail``);
        the given ids and error are stored with it. The row after the move, or None when the
        rotation was not in a state the event leaves."""
        ...

    def get_rotation(self, user_name: str) -> RotationRow | None:
        """The rotation record of ``user_name`` (the latest rotation), or None."""
        ...

    def rotations_in(self, states: Iterable[RotationState], *, limit: int = 500) -> list[RotationRow]:
        """Rotations now in one of ``states``, least recently moved first (periodic recovery)."""
        ...

    def open_finding(self, kind: str, subject: str, *, detail: dict, actor: str | None = None) -> bool:
        """(none) → open, audited ``finding_opened`` (detail ``kind``, ``subject`` and ``detail``);
        True only for the one caller that opened it: what it reports is told exactly once."""
        ...

    def resolve_finding(self, kind: str, subject: str, *, actor: str | None = None, detail: dict | None = None) -> bool:
        """open → resolved, audited ``finding_resolved``; False when it was not open."""
        ...

    def get_finding(self, kind: str, subject: str) -> Finding | None: ...

    def open_findings(self, kind: str, *, limit: int = 50) -> list[Finding]:
        """The open findings of ``kind``, newest first."""
        ...

    # -- wizard drafts and Slack event ids --------------------------------------------------------

    def put_draft(self, key: str, user_id: str, data: str, max_age_seconds: float = 86400) -> None:
        """Save a form draft (JSON text, no plaintext secret); stale drafts go at the same time."""
        ...

    def get_draft(self, key: str, user_id: str, max_age_seconds: float = 86400) -> str | None:
        """The draft if ``user_id`` started it and it is not stale."""
        ...

    def delete_draft(self, key: str) -> bool:
        """Forget a draft; True only for the one caller that removed it."""
        ...

    def remember_event(self, event_id: str) -> bool:
        """Record an Events API ``event_id``; False when it was already recorded (a retry)."""
        ...

    def forget_events_before(self, cutoff: datetime) -> int:
        """Drop remembered event ids older than ``cutoff``; how many."""
        ...
