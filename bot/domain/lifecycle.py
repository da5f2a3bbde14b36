"""The rules of a bot-made user's life after onboarding: key age and rotation notices, unused
credentials, what a check finds. Pure: no I/O; the caller reads IAM and passes "now".

Sources: CIS AWS Foundations Benchmark (v1.4+) 1.14, access keys rotated every 90 days or less,
and 1.12, credentials unused for 45 days or more disabled; AWS Config's ``access-keys-rotated``
(``maxAccessKeyAge``, default 90) and ``iam-user-unused-credentials-check``. IAM reports a key's
``CreateDate`` (``ListAccessKeys``), its last use (``GetAccessKeyLastUsed``: absent when never
used) and a password's last use (``PasswordLastUsed`` of ``GetUser``/``ListUsers``: absent when
never used). Ages are whole days, rounded down, as the IAM console shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Kinds of lifecycle findings (bot.domain.states.FINDING_MOVES), each opened once per subject.
ROTATION_DUE = "rotation_due"  # subject: an access key id; its owner got the rotation notice
KEY_DEACTIVATED = "key_deactivated"  # subject: an access key id; KEY_ROTATION_ENFORCE switched it off
OWNER_LEFT = "owner_left"  # subject: a Slack user id; their bot-made users were disabled
UNUSED_CREDENTIAL = "unused_credential"  # subject: "<user>/<key id or password>/<unused since>"
OWNER_BACKFILL = "owner_backfill"  # subject: "v1"; the one-time owner tag back-fill finished
OWNER_BACKFILL_UNSEALED = "owner_backfill_unsealed"  # subject: a request id the back-fill did not trust

PASSWORD = "password"  # noqa: S105 - the credential name of a console password in findings and digests
ROTATE_VALUE_SEPARATOR = "|"  # IAM user names cannot hold "|" ([\w+=,.@-]), access key ids neither


def age_days(since: datetime, now: datetime) -> int:
    """Whole days from ``since`` to ``now`` (0 on the first day; never negative)."""
    return max(0, (now - since).days)


@dataclass(frozen=True)
class LifecyclePolicy:
    """``KEY_MAX_AGE_DAYS``, ``KEY_ROTATION_NOTICE_DAYS``, ``KEY_ROTATION_ENFORCE`` and
    ``UNUSED_CREDENTIALS_DAYS`` (contract, section 5). ``notice_days`` is below ``max_age_days``
    (the configuration refuses anything else)."""

    max_age_days: int = 90
    notice_days: int = 14
    enforce: bool = False
    unused_days: int = 45

    @property
    def notice_at_days(self) -> int:
        """The age in days at which a key's owner gets the rotation notice (76 by default)."""
        return self.max_age_days - self.notice_days

    def notice_due(self, age: int) -> bool:
        """Whether an active key of ``age`` days is due for its (one) rotation notice."""
        return age >= self.notice_at_days

    def past_max_age(self, age: int) -> bool:
        """Whether an active key of ``age`` days is past ``KEY_MAX_AGE_DAYS`` (enforcement, when on)."""
        return age >= self.max_age_days

    def unused(self, days: int) -> bool:
        """Whether a credential unused for ``days`` days is reported to the approvers."""
        return days >= self.unused_days


@dataclass(frozen=True)
class KeyInfo:
    """An access key as IAM reports it: id, ``Active``/``Inactive``, created, last used (None: never)."""

    key_id: str
    status: str
    created: datetime
    last_used: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "Active"


@dataclass(frozen=True)
class ManagedUser:
    """A user the bot made (under ``/iam-user-bot/`` with ``iam-user-bot:managed=true``): its
    ``owner`` and ``request_id`` tags (None when absent), when it was created and when its
    password was last used (None: never, or no password)."""

    user_name: str
    owner: str | None
    request_id: str | None
    created: datetime
    password_last_used: datetime | None = None


@dataclass(frozen=True)
class UnusedCredential:
    """A password or an active key unused for ``days`` days: ``credential`` is the key id or
    :data:`PASSWORD`; ``since`` its last use, or its creation when it was never used."""

    user_name: str
    owner: str | None
    credential: str
    since: datetime
    days: int
    never_used: bool

    @property
    def subject(self) -> str:
        """The finding's subject: a credential unused since one moment is reported once."""
        return f"{self.user_name}/{self.credential}/{self.since.isoformat()}"


def unused_credentials(
    user: ManagedUser,
    keys: Sequence[KeyInfo],
    password_created: datetime | None,
    policy: LifecyclePolicy,
    now: datetime,
) -> list[UnusedCredential]:
    """The credentials of ``user`` unused for ``UNUSED_CREDENTIALS_DAYS`` or more.

    Args:
        password_created: when the login profile was made (None: the user has no password).

    A password counts from its last use, or from when its login profile was made if it was
    never used; an active key from its last use, or its creation. Inactive keys are off already.
    """
    found: list[UnusedCredential] = []
    if password_created is not None:
        since = user.password_last_used or password_created
        if policy.unused(days := age_days(since, now)):
            never = user.password_last_used is None
            found.append(UnusedCredential(user.user_name, user.owner, PASSWORD, since, days, never))
    for key in keys:
        if not key.active:
            continue
        since = key.last_used or key.created
        if policy.unused(days := age_days(since, now)):
            found.append(UnusedCredential(user.user_name, user.owner, key.key_id, since, days, key.last_used is None))
    return found


def rotate_value(user_name: str, key_id: str) -> str:
    """The ``rotate_access_key`` button's value: ``<user name>|<access key id>`` (≤ 64 + 1 + 128
    characters, inside Slack's 2,000 for a button value)."""
    return f"{user_name}{ROTATE_VALUE_SEPARATOR}{key_id}"


def parse_rotate_value(value: str) -> tuple[str, str] | None:
    """Inverse of :func:`rotate_value`; None for anything else (a button value can be forged)."""
    user_name, separator, key_id = value.partition(ROTATE_VALUE_SEPARATOR)
    if not separator or not user_name or not key_id or ROTATE_VALUE_SEPARATOR in key_id:
        return None
    if len(user_name) > 64 or not (16 <= len(key_id) <= 128) or not key_id.isalnum():
        return None
    return user_name, key_id


@dataclass(frozen=True)
class Disabled:
    """What disabling one user switched off: the access keys made ``Inactive`` (ids) and whether a
    login profile was deleted. Both empty when everything was off already (or the user is gone)."""

    keys: tuple[str, ...] = ()
    login_profile: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.keys) or self.login_profile


@dataclass(frozen=True)
class OwnedKeys:
    """One of a person's bot-made users with its access keys (oldest first), as ``keys`` lists them."""

    user_name: str
    keys: tuple[KeyInfo, ...]
