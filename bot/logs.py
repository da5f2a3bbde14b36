"""Logging: one line per event, text or JSON, with a redaction filter as a second safety net.

The first line of defence is that no code logs a secret. The filter catches mistakes: anything
shaped like a secret access key, a Slack token, a one-time link key, or a password the bot
generated is replaced by ``[REDACTED]`` before any handler writes it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

REDACTED = "[REDACTED]"
# The alphabet of bot.rules.generate_password: letters, digits and IAM's symbols less , " '.
_PW = r"A-Za-z0-9!@#$%^&*()_+\-=\[\]{}|"
SECRET_PATTERNS = [
    # Slack tokens: bot, user, app-level, refresh, config (xoxb-, xoxp-, xapp-, xoxe-…).
    re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}"),
    # A one-time link's key sits after "#" in the link; never log the fragment.
    re.compile(r"(/credentials/[A-Za-z0-9_-]+)#[A-Za-z0-9_=-]+"),
    # Passwords and secret keys labelled as such in a message (password=…, "SecretAccessKey": "…").
    re.compile(r"(?i)((?:password|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"),
    # AWS secret access keys: 40 chars of base64 alphabet standing alone. Not preceded by a
    # host or path character, so "example.com/credentials/<24-char id>" (40 chars) survives.
    re.compile(r"(?<![A-Za-z0-9/+.:@_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
    # A bare link key: 32 bytes in base64url without padding is 43 characters.
    re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_=-])"),
    # A generated password: 20+ characters of its alphabet holding all four classes.
    re.compile(
        rf"(?<![{_PW}])(?=[{_PW}]*[A-Z])(?=[{_PW}]*[a-z])(?=[{_PW}]*[0-9])"
        rf"(?=[{_PW}]*[!@#$%^&*()_+\-=\[\]{{}}|])[{_PW}]{{20,}}(?![{_PW}])"
    ),
]


def redact(text: str) -> str:
    """``text`` with every secret-shaped substring replaced by ``[REDACTED]``.

    Shapes: Slack tokens (``xoxb-``, ``xoxp-``, ``xapp-``…), the fragment of a one-time link,
    ``password=…`` / ``secret_access_key=…`` values, 40-character AWS secret access keys,
    43-character base64url link keys, and 20+-character tokens shaped like a password from
    :func:`bot.rules.generate_password`. A safety net only: code must not log secrets at all.
    """
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in), exception text and stack through
    :func:`redact`, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text, never the arguments
            message = str(record.msg)
            record.msg, record.args = message, None
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """``LOG_FORMAT=json``: one JSON object a line with time, level, logger, message, ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "slack_user": getattr(record, "slack_user", None),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """Human lines: time level logger message [request=… user=…]."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{k}={getattr(record, a)}"
            for k, a in (("request", "request_id"), ("user", "slack_user"))
            if getattr(record, a, None)
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Send logs to stderr through the redaction filter, in ``text`` or ``json``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore at DEBUG logs request bodies, which hold passwords: keep it quiet whatever LOG_LEVEL says.
    for noisy in ("botocore", "boto3", "urllib3", "slack_sdk.web.base_client"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
