"""The approval seal, and the checks a run makes against it before any IAM call. Pure: no I/O.

Why this exists: the store (the SQLite file or the DynamoDB table) holds requests, reviews,
approvals and plans, and the bot runs whatever an approved request's records say. Write access
to the store alone must not be enough to make the bot create, grant or delete anything. So what
an approval stores is not the plain :func:`bot.domain.risk.fingerprint` of what the approvers saw
but an HMAC-SHA256 of it, keyed by a secret the store never holds (derived in
:func:`bot.credentials.sealing.approval_seal_key` from ``CUSTOM_PASSWORD_SEALING_KEY``, else
``SLACK_BOT_TOKEN``). Before every run (fresh or resumed, onboarding or removal) the seal is
recomputed from the request's stored form and the review's stored expansion and compared in
constant time; a stored plan must then be the one those verified records make.

The seal covers the request id and the plain fingerprint, nothing per approver: every approval
of one request stores the same string, so the store keeps counting distinct approvers by
comparing them (a sensitive request's second approval adds up to the first).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from bot.domain import risk
from bot.domain.models import OnboardingRequest, PermissionExpansion, RemoveMode, RequestForm, Review
from bot.domain.plan import Step, build_plan
from bot.domain.records import NewSecret, RotationRow, SecretRow
from bot.domain.removal import MODE_KINDS

SEAL_PREFIX = "seal1:"  # the version of the sealed form; a plain fingerprint is 64 hex digits alone
SEAL_KEY_BYTES = 32
DOMAIN = "iam-user-bot approval seal v1"
OFFER_DOMAIN = "iam-user-bot review seal v1"
KEY_ID_DOMAIN = b"iam-user-bot approval seal key id v1"
LINK_DOMAIN = "iam-user-bot link record seal v1"
ROTATION_DOMAIN = "iam-user-bot rotation record seal v1"
KEY_ID_HEX = 8  # 32 bits: tells a changed key from a forged seal, says nothing of the key
SHOWN_STEPS = 3  # how many offending steps an audit detail names
SHOWN_CHARS = 160  # of each: the labels come from the store, which may hold anything


class ApprovalSeal:
    """Seals and checks approval fingerprints with one deployment's key.

    Args:
        key: at least 32 bytes, held only by the running bot (never by the store).

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < SEAL_KEY_BYTES:
            raise ValueError(f"the approval seal key must be at least {SEAL_KEY_BYTES} bytes")
        self._key = key
        self.key_id = hmac.new(key, KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:KEY_ID_HEX]

    def __repr__(self) -> str:
        return "ApprovalSeal(<key hidden>)"

    def _mac(self, *parts: str | int) -> str:
        # Canonical JSON, so no pair of values can be confused with another.
        message = json.dumps(list(parts), separators=(",", ":")).encode()
        return f"{SEAL_PREFIX}{self.key_id}:{hmac.new(self._key, message, hashlib.sha256).hexdigest()}"

    def seal(self, request_id: str, fingerprint: str) -> str:
        """What an approval stores: ``seal1:<key id>:<64 hex digits>``, HMAC-SHA256 over the request
        id and the plain fingerprint. The key id (an HMAC of a constant, 8 hex digits) only tells a
        seal made under another key apart."""
        return self._mac(DOMAIN, request_id, fingerprint)

    def offer(self, request_id: str, fingerprint: str, approvals_required: int) -> str:
        """What a review stores when it is read, before the approvers' message is posted: the seal
        of the request id, the plain fingerprint and the approvals it needs (its own domain, so it
        is never an approval's seal). A click checks it, so what approvers were shown is what
        their click approves."""
        return self._mac(OFFER_DOMAIN, request_id, fingerprint, approvals_required)

    def matches(self, request_id: str, fingerprint: str, stored: str | None) -> bool:
        """Whether ``stored`` is :meth:`seal` of ``(request_id, fingerprint)`` (constant time)."""
        if not stored:
            return False
        return hmac.compare_digest(self.seal(request_id, fingerprint).encode(), stored.encode())


class RecordSeal(ApprovalSeal):
    """Seals and checks the store's records that drive IAM writes after provisioning: a one-time
    link's record (:class:`~bot.domain.records.SecretRow`) and a key rotation's
    (:class:`~bot.domain.records.RotationRow`). Same form and key-id scheme as the approval seal
    (``seal1:<key id>:<hex>``), under its own key (:func:`bot.credentials.sealing.record_seal_key`,
    its own HKDF label), so no record's seal is ever an approval's.

    Why: a store writer can copy a real record whole (its request id, recipient and user are
    readable in the store) under a new id; IAM's tags cannot tell that copy from the original,
    the seal (which covers the id) does.
    """

    def __repr__(self) -> str:
        return "RecordSeal(<key hidden>)"

    def link(self, row: SecretRow | NewSecret) -> str:
        """The seal of a link's record: its id (the link digest), request, recipient, IAM user,
        access key id, whether it holds a console password, the link it replaces, and when it
        expires (moved, the sweep would switch its credentials off early, or never)."""
        secret_id = row.id if isinstance(row, SecretRow) else row.secret_id
        return self._mac(
            LINK_DOMAIN,
            secret_id,
            row.request_id,
            row.recipient,
            row.user_name,
            row.access_key_id or "",
            int(row.console),
            row.replaces or "",
            row.expires_at.astimezone(UTC).isoformat(),
        )

    def rotation(self, row: RotationRow) -> str:
        """The seal of a key rotation's record: its user, the key it replaces, the keys it keeps,
        its owner and request, and when it started: what it is given when it starts."""
        return self._mac(
            ROTATION_DOMAIN,
            row.user_name,
            row.old_key_id,
            *sorted(row.kept_key_ids),
            "|",
            row.owner,
            row.request_id,
            row.started_at.astimezone(UTC).isoformat(),
        )

    def problem(self, expected: str, stored: str | None, record: str) -> SealProblem | None:
        """Why ``stored`` is not ``expected`` (a record's seal, computed now), or None; constant
        time. ``record`` names the record in the words ("the link's record")."""
        if stored and hmac.compare_digest(expected.encode(), stored.encode()):
            return None
        if not stored:
            return SealProblem(f"{record} carries no seal (the bot did not write it)")
        if stored.startswith(SEAL_PREFIX) and not stored.startswith(f"{SEAL_PREFIX}{self.key_id}:"):
            return SealProblem(
                f"{record} was sealed under another key (the sealing secret changed since)", SealCause.OTHER_KEY
            )
        return SealProblem(f"{record} does not match its seal (written or edited by someone not the bot)")


class SealCause(enum.StrEnum):
    """What a refusal most likely means (each is refused all the same)."""

    TAMPERED = "tampered"  # the records do not match their seal: written by someone not the bot
    LEGACY = "legacy"  # approved before approvals were sealed (a plain fingerprint is stored)
    OTHER_KEY = "other_key"  # sealed under another key: the sealing secret changed since


@dataclass(frozen=True)
class SealProblem:
    """Why a request's stored records may not run: ``what`` names what did not match (no secret).
    A ``LEGACY`` or ``OTHER_KEY`` cause is benign if nobody wrote to the store: it needs a new
    approval; either may also be forged, so both are refused like ``TAMPERED``."""

    what: str
    cause: SealCause = SealCause.TAMPERED

    @property
    def reapprove(self) -> bool:
        """The likely fix is a new request approved again (not an investigation)."""
        return self.cause is not SealCause.TAMPERED


def approval_problem(seal: ApprovalSeal, request: OnboardingRequest, review: Review | None) -> SealProblem | None:
    """Why the stored approval of ``request`` does not cover its stored form and review, or None.

    The review's ``fingerprint`` (fixed by the final approval) must be the seal of the request's
    id and :func:`bot.domain.risk.fingerprint` of its form and the review's expansion.
    """
    if review is None:
        return SealProblem("no review is stored for the request")
    if not review.fingerprint:
        return SealProblem("no approval is recorded for the request")
    plain = risk.fingerprint(request.form, review.expansion)
    if seal.matches(request.id, plain, review.fingerprint):
        return None
    stored = review.fingerprint
    if hmac.compare_digest(plain.encode(), stored.encode()):
        return SealProblem("the approval was recorded before approvals were sealed", SealCause.LEGACY)
    if stored.startswith(SEAL_PREFIX) and not stored.startswith(f"{SEAL_PREFIX}{seal.key_id}:"):
        what = "the approval was sealed under another key (the sealing secret changed since)"
        return SealProblem(what, SealCause.OTHER_KEY)
    return SealProblem("the approval's seal does not match the stored request form and review")


def offer_problem(seal: ApprovalSeal, request: OnboardingRequest, review: Review) -> SealProblem | None:
    """Why ``request`` and its ``review`` are not what the review's seal says the approvers were
    shown (its form, its expansion, the approvals it needs), or None."""
    offered = review.offered
    if not offered:
        return SealProblem("its review holds no seal (read before reviews were sealed)", SealCause.LEGACY)
    plain = risk.fingerprint(request.form, review.expansion)
    if hmac.compare_digest(seal.offer(request.id, plain, review.approvals_required).encode(), offered.encode()):
        return None
    if offered.startswith(SEAL_PREFIX) and not offered.startswith(f"{SEAL_PREFIX}{seal.key_id}:"):
        return SealProblem(
            "its review was sealed under another key (the sealing secret changed since)", SealCause.OTHER_KEY
        )
    return SealProblem("the stored request or its review changed after approvers were shown it")


def approved_plans(request: OnboardingRequest, expansion: PermissionExpansion, account_id: str) -> list[list[Step]]:
    """The plans :meth:`bot.provisioning.runner.Provisioner.prepare` may have stored for a verified
    request: built from its form and the approved expansion, once for each answer the account's
    password policy may have given at the run (``AllowUsersToChangePassword``, which decides
    whether ``IAMUserChangePassword`` is attached). Empty when no plan can be built (a
    ``copy_user`` request without its expanded source)."""
    digests = {p.name: p.sha256 for p in expansion.inline_policies}
    plans = []
    for may_change in (True, False):
        try:
            plan = build_plan(
                request,
                approver=request.decided_by or "unknown",
                account_id=account_id,
                copy_source=expansion.copy_source,
                users_may_change_password=may_change,
                inline_digests=digests,
            )
        except ValueError:
            return []
        if plan not in plans:
            plans.append(plan)
    return plans


def plan_problem(stored: Sequence[Step], approved: Sequence[Sequence[Step]]) -> SealProblem | None:
    """Why a stored onboarding plan is none of the ``approved`` ones (:func:`approved_plans`), or
    None. Every field of every step counts (kind, user, target, copied-from user, document
    digest, tags, boundary, reset), and so does the order: the journal is indexed by it."""
    if any(list(stored) == list(plan) for plan in approved):
        return None
    if not approved:
        return SealProblem("the approved plan cannot be rebuilt from the stored request and review")
    closest = min(approved, key=lambda plan: len(set(plan) ^ set(stored)))
    extra = [step.label for step in stored if step not in closest]
    missing = [step.label for step in closest if step not in stored]
    parts = []
    if extra:
        parts.append("steps nobody approved: " + _named(extra))
    if missing:
        parts.append("approved steps missing: " + _named(missing))
    return SealProblem("the stored plan is not the approved one (" + (", ".join(parts) or "steps reordered") + ")")


def removal_problem(form: RequestForm, steps: Sequence[Step]) -> SealProblem | None:
    """Why a removal plan does more than the verified removal ``form`` approved, or None: every
    step must take something away (a kind its mode uses: ``disable`` only deactivates keys and
    deletes the login profile) from one of the form's users."""
    mode = RemoveMode(str(form.remove_mode))
    kinds = MODE_KINDS[mode]
    users = set(form.user_names)
    wrong_kind = [step.label for step in steps if step.kind not in kinds]
    wrong_user = [step.label for step in steps if step.user_name not in users]
    parts = []
    if wrong_kind:
        parts.append(f"steps a {mode} does not make: " + _named(wrong_kind))
    if wrong_user:
        parts.append("steps on users not in the request: " + _named(wrong_user))
    return SealProblem("the stored removal plan is not the approved one (" + ", ".join(parts) + ")") if parts else None


def _named(labels: Sequence[str]) -> str:
    """The first :data:`SHOWN_STEPS` labels, each cut to :data:`SHOWN_CHARS`, and how many more."""
    shown = "; ".join(
        label if len(label) <= SHOWN_CHARS else label[: SHOWN_CHARS - 1] + "…" for label in labels[:SHOWN_STEPS]
    )
    return shown + (f" (and {len(labels) - SHOWN_STEPS} more)" if len(labels) > SHOWN_STEPS else "")
