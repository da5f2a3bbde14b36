"""IAM and Slack limits as pure validation. No I/O: callers pass in what IAM holds.

Each check cites the rule it implements. moto enforces almost none of these, so they live here.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

# IAM CreateUser API reference: UserName pattern [\w+=,.@-]+, length 1-64.
USER_NAME_PATTERN = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)
USER_NAME_MAX = 64
# Slack: a multi users select in a modal takes at most 10 users when we set max_selected_items.
MAX_RECIPIENTS = 10
# IAM's password symbol set (account password policy documentation), less "," and '"' and "'"
# because `aws configure import` splits the credentials CSV on plain commas and a quote confuses
# spreadsheet tools that open the same file.
PASSWORD_SYMBOLS = "!@#$%^&*()_+-=[]{}|"  # noqa: S105 - an alphabet, not a password
PASSWORD_MIN_GENERATED = 20
PASSWORD_MAX = 128  # CreateLoginProfile: 1-128 characters


class PasswordPolicy(BaseModel):
    """The account password policy (``get_account_password_policy``), or AWS's default.

    AWS's default when no custom policy exists: at least 8 characters and at least three of
    the four character classes (upper, lower, digit, symbol), which :attr:`min_classes` models.
    """

    model_config = ConfigDict(frozen=True)

    minimum_length: int = 8
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase: bool = False
    require_lowercase: bool = False
    allow_users_to_change_password: bool = True
    min_classes: int = 3
    is_default: bool = True

    @classmethod
    def from_api(cls, policy: dict[str, object]) -> PasswordPolicy:
        """Build from the ``PasswordPolicy`` dict of ``get_account_password_policy``."""
        return cls(
            minimum_length=int(policy.get("MinimumPasswordLength", 6)),  # type: ignore[call-overload]
            require_symbols=bool(policy.get("RequireSymbols", False)),
            require_numbers=bool(policy.get("RequireNumbers", False)),
            require_uppercase=bool(policy.get("RequireUppercaseCharacters", False)),
            require_lowercase=bool(policy.get("RequireLowercaseCharacters", False)),
            allow_users_to_change_password=bool(policy.get("AllowUsersToChangePassword", False)),
            min_classes=0,
            is_default=False,
        )


def user_name_error(name: str) -> str | None:
    """Why ``name`` is not a valid IAM user name, or None when it is.

    Rule: IAM CreateUser, ``UserName`` matches ``[\\w+=,.@-]+`` (ASCII word characters and
    ``+=,.@-``), 1 to 64 characters.
    """
    if not name:
        return "a user name cannot be empty"
    if len(name) > USER_NAME_MAX:
        return f"“{name[:20]}…” is {len(name)} characters; IAM allows at most {USER_NAME_MAX}"
    if not USER_NAME_PATTERN.match(name):
        bad = sorted({ch for ch in name if not re.match(r"[\w+=,.@-]", ch, re.ASCII)})
        shown = " ".join(repr(ch) for ch in bad)
        return f"“{name}” has characters IAM does not allow ({shown}); use letters, digits and + = , . @ _ -"
    return None


def parse_user_names(text: str) -> list[str]:
    """One user name per line; blank lines and surrounding spaces ignored."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def user_names_error(names: Sequence[str], recipient_count: int, existing_lower: Iterable[str]) -> str | None:
    """Validate the ``user_names`` field against the recipients and the users IAM already holds.

    Args:
        names: the requested IAM user names, in recipient order.
        recipient_count: how many Slack recipients were chosen (one IAM user each).
        existing_lower: names of existing IAM users, lower-cased.

    Rules: each name valid (:func:`user_name_error`); as many names as recipients; unique
    ignoring case within the request and against IAM (IAM user names are not case-sensitive:
    ``Bob`` and ``bob`` cannot both exist).
    """
    if not names:
        return "Enter one IAM user name per line, one for each recipient."
    if len(names) != recipient_count:
        return (
            f"You chose {recipient_count} recipient(s) but entered {len(names)} user name(s); "
            "enter exactly one name per recipient, in the same order."
        )
    for name in names:
        if error := user_name_error(name):
            return error
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            return (
                f"“{name}” and “{seen[name.lower()]}” are the same IAM user name "
                "(IAM ignores case); use different names."
            )
        seen[name.lower()] = name
    existing = set(existing_lower)
    taken = [name for name in names if name.lower() in existing]
    if taken:
        return f"An IAM user named “{taken[0]}” already exists (IAM ignores case); choose another name."
    return None


def recipients_error(recipients: Sequence[str]) -> str | None:
    """1 to :data:`MAX_RECIPIENTS` distinct Slack users (one IAM user each)."""
    if not recipients:
        return "Choose at least one person to receive credentials."
    if len(recipients) > MAX_RECIPIENTS:
        return f"Choose at most {MAX_RECIPIENTS} recipients per request."
    return None


def generate_password(policy: PasswordPolicy) -> str:
    """A random password that satisfies ``policy`` and survives the credentials CSV.

    Length is ``max(policy.minimum_length, 20)`` (capped at IAM's 128). One character of every
    class (upper, lower, digit, symbol) is always included, which satisfies any policy's class
    requirements and AWS's default "three of four classes" rule. Symbols come only from IAM's
    set without ``,`` ``"`` ``'`` (see :data:`PASSWORD_SYMBOLS`). Uses :mod:`secrets`.
    """
    length = min(max(policy.minimum_length, PASSWORD_MIN_GENERATED), PASSWORD_MAX)
    classes = [string.ascii_uppercase, string.ascii_lowercase, string.digits, PASSWORD_SYMBOLS]
    alphabet = "".join(classes)
    chars = [secrets.choice(cls) for cls in classes]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    # Fisher-Yates with a CSPRNG so the guaranteed characters are not always first.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)
