"""Ids: request ids (``R-`` and 8 characters of an alphabet without look-alikes, read aloud and
typed), and the digest a one-time link is stored under.

The one pattern every module uses to tell a well-formed id from anything else (a button value or
a typed word anyone can forge)."""

from __future__ import annotations

import hashlib
import re
import secrets

REQUEST_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: ids get read aloud
REQUEST_ID_PATTERN = re.compile(rf"R-[{REQUEST_ID_ALPHABET}]{{8}}")


def new_request_id() -> str:
    """``R-`` and 8 random characters of :data:`REQUEST_ID_ALPHABET` (40 bits)."""
    return "R-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(8))


def is_request_id(text: str) -> bool:
    """Whether ``text`` is exactly a well-formed request id."""
    return REQUEST_ID_PATTERN.fullmatch(text) is not None


def link_digest(link_id: str) -> str:
    """The name the store and Slack know a one-time link by: SHA-256 of its id, 64 hex digits.

    The link id (``/credentials/<id>``, ≥ 128 random bits) is what a reveal POST needs; the
    database, the audit log and the buttons in Slack hold only this digest, so a copy of any of
    them can neither address nor burn a link. No salt or key is needed: an id of 128+ random
    bits cannot be found from its digest by trying ids.
    """
    return hashlib.sha256(link_id.encode("utf-8")).hexdigest()
