"""IAM tag rules: the ``tags`` field parsed and checked as IAM would. Pure: no I/O.

IAM ``Tag`` (API reference): at most 50 tags per user, key 1-128 and value 0-256 characters of
``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``; keys starting ``aws:`` (any case) are reserved for AWS; keys
are case-insensitive on users (``Department`` and ``department`` are the same tag).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.models import Tag

TAGS_PER_USER_MAX = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_EXTRA_CHARS = frozenset("_.:/=+-@")
RESERVED_TAG_PREFIXES = ("aws:", "iam-user-bot:")


def tag_char_allowed(ch: str) -> bool:
    """Whether ``ch`` is in IAM's tag alphabet: a Unicode letter (L*), separator (Z*), number (N*),
    or one of ``_ . : / = + - @``. Python's ``re`` has no ``\\p{…}``, so this reads the category."""
    return ch in TAG_EXTRA_CHARS or unicodedata.category(ch)[0] in "LZN"


def _bad_tag_chars(text: str) -> str:
    bad = sorted({ch for ch in text if not tag_char_allowed(ch)})
    return " ".join(repr(ch) for ch in bad)


@dataclass(frozen=True)
class TagsResult:
    """Parsed tags, or the first problem found (with its 1-based line number in the message)."""

    tags: tuple[Tag, ...] = ()
    error: str | None = None


def parse_tags(text: str, bot_tag_count: int = 0) -> TagsResult:
    """Parse the ``tags`` field: one ``Key=Value`` a line, blank lines ignored.

    The line is split at its first ``=``, so values may hold ``=``, keys may not; spaces around
    key and value are trimmed. ``Key=`` gives an empty value (IAM allows 0-character values).

    Args:
        text: the field's text.
        bot_tag_count: tags the bot adds itself (``bot.domain.plan.BOT_TAG_KEYS``); they count
            towards IAM's 50 tags per user.

    Rules (IAM ``Tag``): key 1-128 characters, value 0-256, both of
    ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``; no ``aws:`` prefix in any case (reserved by AWS) and no
    ``iam-user-bot:`` prefix (the bot's provenance tags); keys unique ignoring case; at most
    ``50 - bot_tag_count`` tags.
    """
    tags: list[Tag] = []
    seen: dict[str, int] = {}
    limit = TAGS_PER_USER_MAX - bot_tag_count
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"Line {number} (“{line[:40]}”)"
        if "=" not in line:
            return TagsResult(error=f"{where} has no “=”; write one tag a line as Key=Value.")
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not key:
            return TagsResult(error=f"{where} has no key before “=”; write Key=Value.")
        if len(key) > TAG_KEY_MAX:
            return TagsResult(error=f"Line {number}: the key is {len(key)} characters; IAM allows 1 to {TAG_KEY_MAX}.")
        if len(value) > TAG_VALUE_MAX:
            return TagsResult(
                error=f"Line {number}: the value is {len(value)} characters; IAM allows 0 to {TAG_VALUE_MAX}."
            )
        for part, label in ((key, "key"), (value, "value")):
            if bad := _bad_tag_chars(part):
                return TagsResult(
                    error=f"Line {number}: the {label} has characters IAM does not allow in tags ({bad}); "
                    "use letters, numbers, spaces and _ . : / = + - @"
                )
        # Upper-case, then casefold: "ß"/"SS" and "ı"/"I" must each count as one key. AWS does not
        # document its case mapping, so the coarser comparison is the safe one.
        lowered = key.upper().casefold()
        if prefix := next((p for p in RESERVED_TAG_PREFIXES if lowered.startswith(p)), None):
            owner = "AWS" if prefix == "aws:" else "the bot's own provenance tags"
            return TagsResult(error=f"Line {number}: keys starting “{prefix}” are reserved for {owner}; rename it.")
        if lowered in seen:
            return TagsResult(
                error=f"Lines {seen[lowered]} and {number} have the same key “{key}” "
                "(IAM ignores case in tag keys); keep one."
            )
        seen[lowered] = number
        tags.append(Tag(key=key, value=value))
    if len(tags) > limit:
        return TagsResult(
            error=f"{len(tags)} tags: IAM allows {TAGS_PER_USER_MAX} per user and the bot adds {bot_tag_count} "
            f"of its own, so enter at most {limit}."
        )
    return TagsResult(tags=tuple(tags))


def format_tags(tags: Iterable[Tag]) -> str:
    """Inverse of :func:`parse_tags`: ``Key=Value`` lines (to pre-fill the field again)."""
    return "\n".join(f"{tag.key}={tag.value}" for tag in tags)
