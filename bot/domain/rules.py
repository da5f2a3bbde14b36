"""IAM and Slack limits as pure validation. No I/O: callers pass in what IAM holds.

Each check cites the rule it implements. moto enforces almost none of these, so they live here.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

# IAM CreateUser API reference: UserName pattern [\w+=,.@-]+, length 1-64.
USER_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}\Z", re.ASCII)  # \Z: "$" would let "name\n" through
USER_NAME_MAX = 64
# Slack: a multi users select in a modal takes at most 10 users when we set max_selected_items.
MAX_RECIPIENTS = 10
# IAM allows "," in user names, but the credentials CSV (the IAM console's layout, unquoted, which
# `aws configure import` splits on plain commas) cannot carry one: every column after it would
# shift, and the importer would take the password for the access key id. So the wizard refuses it.
CSV_BREAKING_NAME_CHAR = ","
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


def user_names_error(
    names: Sequence[str],
    recipient_count: int,
    existing_lower: Iterable[str] | Mapping[str, str],
    requested_lower: Mapping[str, str] | None = None,
) -> str | None:
    """Validate the ``user_names`` field against the recipients and the users IAM already holds.

    Args:
        names: the requested IAM user names, in recipient order.
        recipient_count: how many Slack recipients were chosen (one IAM user each).
        existing_lower: the existing IAM users among (or beside) ``names``: their names, or a
            mapping of each name (any case) to the user's name as IAM spells it.
        requested_lower: names (lower-cased) of IAM users that open requests will create, to
            the id of that request: the later of two such requests would fail at provisioning.

    Rules: each name valid (:func:`user_name_error`); as many names as recipients; no comma
    (:data:`CSV_BREAKING_NAME_CHAR`: the credentials CSV); unique ignoring case within the
    request and against IAM (CreateUser: "Names are not distinguished by case", so ``Bob`` and
    ``bob`` cannot both exist).
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
    if with_comma := next((name for name in names if CSV_BREAKING_NAME_CHAR in name), None):
        return (
            f"“{with_comma}” holds a comma: IAM allows it, but the credentials file cannot carry it (the IAM "
            "console's CSV layout has no quoting, and `aws configure import` splits its rows on every comma). "
            "Use letters, digits and + = . @ _ - only."
        )
    spelled_as = existing_lower if isinstance(existing_lower, Mapping) else {name: name for name in existing_lower}
    existing = {name.lower(): spelling for name, spelling in spelled_as.items()}
    taken = [name for name in names if name.lower() in existing]
    if taken:
        found = existing[taken[0].lower()]
        spelled = "" if found == taken[0] else f" (spelled “{found}”)"
        return f"An IAM user named “{taken[0]}” already exists{spelled}; IAM ignores case, so choose another name."
    requested = requested_lower or {}
    if pending := [name for name in names if name.lower() in requested]:
        return (
            f"“{pending[0]}” is already requested in {requested[pending[0].lower()]}, which is not finished yet "
            "(IAM ignores case); choose another name."
        )
    return None


def recipient_account_error(user_id: str, user: Mapping[str, Any] | None) -> str | None:
    """Why Slack user ``user_id`` cannot receive IAM credentials, or None.

    ``user`` is Slack's ``users.info`` object, or ``{"error": code}`` when Slack refused (None:
    no answer at all). A bot or app user, a deactivated account, or one Slack cannot vouch for
    never gets an IAM user: nobody would hold its credentials, or the wrong party would.
    """
    if user is not None and user.get("error") == "user_not_found":
        return f"<@{user_id}> is not a member of this Slack workspace; choose a person from the list."
    if user is None or user.get("error"):
        return f"I could not look up <@{user_id}> in Slack just now; try again in a moment."
    if user.get("deleted"):
        return f"<@{user_id}> is a deactivated Slack account; choose an active person."
    if user.get("is_bot") or user.get("is_app_user") or user_id == "USLACKBOT":
        return f"<@{user_id}> is a bot or app, not a person; only people receive IAM credentials."
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


# -- custom passwords -----------------------------------------------------------------------------

# CreateLoginProfile: Password matches [\u0009\u000A\u000D\u0020-\u00FF]+, 1-128 characters.
PASSWORD_ALLOWED = re.compile(r"^[\t\n\r\u0020-\u00ff]+$")
# The account password policy's "symbol" class is exactly this set (IAM user guide,
# "Setting an account password policy"); other printable characters are allowed in a password
# but do not count as a symbol.
IAM_PASSWORD_SYMBOLS = frozenset("!@#$%^&*()_+-=[]{}|'")
# Contract ("Credentials"): the credentials CSV is split on plain commas by `aws configure
# import`, so a password holding either of these would break the file it is downloaded in.
PASSWORD_FORBIDDEN = frozenset(',"')


def _password_classes(password: str) -> dict[str, bool]:
    return {
        "an uppercase letter (A-Z)": any("A" <= ch <= "Z" for ch in password),
        "a lowercase letter (a-z)": any("a" <= ch <= "z" for ch in password),
        "a number (0-9)": any("0" <= ch <= "9" for ch in password),
        "a symbol (! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')": any(ch in IAM_PASSWORD_SYMBOLS for ch in password),
    }


def custom_password_error(password: str, policy: PasswordPolicy) -> str | None:
    """Why IAM (or the credentials CSV) would refuse ``password``, or None when it is fine.

    Rules, in order: CreateLoginProfile's 1-128 characters of ``[\\t\\n\\r\\u0020-\\u00FF]``;
    no ``,`` or ``"`` (contract: the CSV that ``aws configure import`` reads) and no control
    character (tab, CR, LF, DEL, U+0080-U+009F: Python's csv and the importer's line split would
    end the row there; U+0085 is a line break to ``str.splitlines``); the account
    password policy's minimum length and required classes (:class:`PasswordPolicy`), or AWS's
    default policy (8 characters, three of the four classes) when the account has none.
    The message never repeats the password.
    """
    if not password:
        return "Enter the password, or choose an autogenerated one."
    if len(password) > PASSWORD_MAX:
        return f"The password is {len(password)} characters; IAM allows at most {PASSWORD_MAX}."
    if not PASSWORD_ALLOWED.match(password):
        return "The password has characters IAM does not allow; use printable Latin-1 characters only."
    if any(ch in PASSWORD_FORBIDDEN for ch in password):
        return 'The password may not contain a comma (,) or a double quote ("): they break the credentials CSV.'
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        return (
            "The password may not contain a tab, a line break or another control character: IAM allows them, "
            "but they do not survive the credentials CSV (a line break ends its row) or copying by hand."
        )
    if len(password) < policy.minimum_length:
        return (
            f"The password is {len(password)} characters; the account password policy needs at least "
            f"{policy.minimum_length}."
        )
    classes = _password_classes(password)
    required = {
        "an uppercase letter (A-Z)": policy.require_uppercase,
        "a lowercase letter (a-z)": policy.require_lowercase,
        "a number (0-9)": policy.require_numbers,
        "a symbol (! @ # $ % ^ & * ( ) _ + - = [ ] { } | ')": policy.require_symbols,
    }
    missing = [name for name, needed in required.items() if needed and not classes[name]]
    if missing:
        return "The account password policy needs " + ", ".join(missing) + "."
    present = sum(classes.values())
    if present < policy.min_classes:
        absent = [name for name, there in classes.items() if not there]
        return (
            f"AWS's default password policy needs at least {policy.min_classes} of: uppercase letter, lowercase "
            f"letter, number, symbol; add {' or '.join(absent)}."
        )
    return None


# -- suggested user names -------------------------------------------------------------------------


def suggest_user_name(email: str | None, fallback: str, taken_lower: set[str]) -> str:
    """An IAM user name for a Slack user: the e-mail's local part made IAM-valid, else ``fallback``.

    Characters outside ``[\\w+=.@-]`` (ASCII; IAM's set less the comma the credentials CSV cannot
    carry) are dropped after accents are stripped
    (``josé`` → ``jose``), the result is cut to 64 characters, and a number is appended when
    the name (ignoring case) is in ``taken_lower``, which is updated with the name chosen.
    """
    local = (email or "").partition("@")[0] or fallback
    ascii_text = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode("ascii")
    name = "".join(ch for ch in ascii_text if re.match(r"[\w+=.@-]", ch, re.ASCII)) or "user"
    name = name[:USER_NAME_MAX]
    candidate, number = name, 1
    while candidate.lower() in taken_lower:
        number += 1
        suffix = str(number)
        candidate = name[: USER_NAME_MAX - len(suffix)] + suffix
    taken_lower.add(candidate.lower())
    return candidate
