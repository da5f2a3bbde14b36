"""Logging: one line per event, text or JSON, with a redaction filter as a second safety net.

Every line carries the request id and the Slack user id it concerns, when there is one. Code
can pass them as ``extra={"request_id": …, "slack_user": …}``; otherwise they come from context
variables: :func:`bolt_log_context` (a Bolt middleware) sets the Slack user of each incoming
request, the approval stage binds the request id (:func:`bind`), and :class:`ContextExecutor` carries
both into the threads that run listeners and provisioning after the ack.

The first line of defence is that no code logs a secret. The filter catches mistakes: anything
shaped like a secret access key, a Slack token, a one-time link key, or a password the bot
generated is replaced by ``[REDACTED]`` before any handler writes it. Line breaks inside a message
or a traceback are escaped, so one event is one line and user text cannot forge log lines.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from bot.domain.ids import is_request_id

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_slack_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("slack_user", default=None)

REDACTED = "[REDACTED]"
# The alphabet of bot.domain.rules.generate_password: letters, digits and IAM's symbols less , " '.
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
    :func:`bot.domain.rules.generate_password`. A safety net only: code must not log secrets at all.
    """
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


# Bolt logs the raw body of a request whose signature fails ("… body: …"); a form submission's body
# can hold a password typed into the form. Keep the line, drop the body.
_PAYLOAD_IN_LIBRARY_LINE = re.compile(r"(?s)(\bbody: ).*")


# What every LogRecord has; any other attribute came in through ``extra`` and is printed by the
# JSON formatter as a field of its own, so it is redacted too.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in), exception text, stack and every text
    field passed as ``extra`` through :func:`redact`, before any handler formats it.

    Lines from Bolt and the Slack SDK also lose any request body they quote.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text, never the arguments
            message = str(record.msg)
            record.msg, record.args = message, None
        cleaned = redact(message)
        if record.name.startswith(("slack_bolt", "slack_sdk")):
            cleaned = _PAYLOAD_IN_LIBRARY_LINE.sub(r"\1[not logged])", cleaned)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def bind(*, request_id: str | None = None, slack_user: str | None = None) -> None:
    """Attach ids to every later log line of the current context (thread, or task copy)."""
    if request_id is not None:
        _request_id.set(request_id)
    if slack_user is not None:
        _slack_user.set(slack_user)


@contextlib.contextmanager
def log_context(*, request_id: str | None = None, slack_user: str | None = None) -> Iterator[None]:
    """Like :func:`bind`, for the ``with`` block only (the previous ids come back after it)."""
    tokens = []
    if request_id is not None:
        tokens.append((_request_id, _request_id.set(request_id)))
    if slack_user is not None:
        tokens.append((_slack_user, _slack_user.set(slack_user)))
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def current_ids() -> dict[str, str | None]:
    """``{"request_id": …, "slack_user": …}`` bound in the current context."""
    return {"request_id": _request_id.get(), "slack_user": _slack_user.get()}


class ContextFilter(logging.Filter):
    """Fills ``request_id`` and ``slack_user`` of a record from the context, unless given in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_ids().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's context (so they keep its log ids).

    ``ThreadPoolExecutor`` alone runs tasks in the worker thread's own, empty context.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


def slack_ids(body: dict[str, Any]) -> dict[str, str | None]:
    """The Slack user id (and a request id on approve/deny buttons) of a Bolt request body.

    Slash commands carry ``user_id``; interactivity payloads ``user.id``; events ``event.user``.
    """
    user = body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user")
    request_id = None
    for action in body.get("actions") or []:
        value = str(action.get("value") or "")
        if is_request_id(value):
            request_id = value
    return {"slack_user": user if isinstance(user, str) else None, "request_id": request_id}


def bolt_log_context(body: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt global middleware: log lines while handling this request name its Slack user."""
    with log_context(**slack_ids(body)):
        return next()


def json_formatter() -> logging.Formatter:
    """``LOG_FORMAT=json`` (python-json-logger): one object a line with ``time`` (ISO UTC),
    ``level``, ``logger``, ``message``, ``request_id``, ``slack_user``, for an audit event its name
    as ``event`` (pipelines filter without parsing the message), and ``exception`` when there is one."""
    return JsonFormatter(
        ["levelname", "name", "message", "request_id", "slack_user"],
        rename_fields={"levelname": "level", "name": "logger", "audit_event": "event", "exc_info": "exception"},
        timestamp="time",
        json_ensure_ascii=True,
    )


class TextFormatter(logging.Formatter):
    """Human lines: time level logger message [request=… user=…]."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{k}={getattr(record, a)}"
            for k, a in (("request", "request_id"), ("user", "slack_user"))
            if getattr(record, a, None)
        ]
        line = f"{line} [{' '.join(ids)}]" if ids else line
        return line.replace("\r", "\\r").replace("\n", "\\n")


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Send logs to stderr through the context and redaction filters, in ``text`` or ``json``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # Python warnings become log lines too, not stray stderr text
    # Settings refuse an unknown LOG_LEVEL at start-up; gunicorn's logger is set up before they are
    # read (GunicornLogger), and falls back to INFO, the documented default, until then.
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    # At DEBUG, botocore logs request bodies (passwords), slack_sdk / Bolt log payloads (a custom
    # password typed into the form) and, in Socket Mode, websockets logs the frames that carry them:
    # keep them at INFO or above whatever LOG_LEVEL says.
    for noisy in ("botocore", "boto3", "urllib3", "slack_sdk", "slack_bolt", "websockets", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    # botocore's INFO lines only say where it found credentials and endpoints, once per client:
    # noise in every start-up (and before a start-up's one-line error), so warnings only.
    for chatty in ("botocore", "boto3"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # The scheduler logs every run of every periodic job at INFO; its warnings and errors stay.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    bolt_app = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _ClientGivenFilter) for f in bolt_app.filters):
        bolt_app.addFilter(_ClientGivenFilter())


class _ClientGivenFilter(logging.Filter):
    """Drops Bolt's start-up warning that ``token`` is unused when ``client`` is given.

    Bolt reads ``SLACK_BOT_TOKEN`` from the environment by itself; the bot hands it a configured
    client instead (retries, base URL), so the warning is always true and only alarms operators.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


class GunicornLogger(_GunicornLogger):
    """gunicorn's own lines (start, workers, errors, access log) through the bot's handler and format.

    Used by ``iam-user-bot serve`` and the Procfile (``--logger-class bot.logs.GunicornLogger``), so
    that with ``LOG_FORMAT=json`` every line of the process is JSON.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # Read raw (bot.config has not checked them yet), with bot.env's optional quotes taken off.
        log_format = os.environ.get("LOG_FORMAT", "text").strip().strip("\"'").lower()
        level = os.environ.get("LOG_LEVEL", "INFO").strip().strip("\"'") or "INFO"
        configure("json" if log_format == "json" else "text", level)
        for logger in (self.error_log, self.access_log):
            logger.handlers = []
            logger.propagate = True
