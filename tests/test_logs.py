"""The logging safety net: secret-shaped text never reaches a log line, however it is logged.

Fake secrets are generated here in the shapes the bot handles; a failing check names the
shape, never prints the secret.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import string
from collections.abc import Iterator

import pytest

from bot import logs
from bot.credentials.vault import b64url
from bot.domain.rules import PasswordPolicy, generate_password


def fake_secrets() -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "/+"
    return {
        "secret access key": "".join(secrets.choice(alphabet) for _ in range(40)),
        "bot token": "xoxb-" + "".join(secrets.choice(string.digits) for _ in range(12)) + "-abcDEF123456",
        "app token": "xapp-1-A0ABCDEF-" + secrets.token_hex(20),
        "user token": "xoxp-1234-5678-" + secrets.token_hex(16),
        "generated password": generate_password(PasswordPolicy()),
        "long generated password": generate_password(PasswordPolicy(minimum_length=64)),
        "link key": b64url(secrets.token_bytes(32)),
    }


def leaked(text: str, found: dict[str, str]) -> list[str]:
    return [label for label, secret in found.items() if secret in text]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records go through the bot's filter into a string, as configure() wires it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RedactingFilter())
    handler.setFormatter(logs.TextFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers[:] = []


@pytest.mark.parametrize("label", list(fake_secrets()))
def test_each_shape_is_redacted_in_messages_args_and_dict_args(captured, label: str) -> None:
    logger, stream = captured
    found = fake_secrets()
    secret = found[label]
    logger.info("plain %s text", secret)
    logger.info("in the message itself: " + secret)
    logger.warning("dict args: %(value)s", {"value": secret})
    logger.info("quoted in JSON: %s", json.dumps({"SecretAccessKey": secret, "Password": secret}))
    logger.info("as a repr: %r", (secret,))
    logger.info("labelled password=%s secret_access_key=%s", secret, secret)
    out = stream.getvalue()
    assert leaked(out, {label: secret}) == []
    assert out.count(logs.REDACTED) >= 8


def test_exceptions_chains_and_stacks_are_redacted(captured) -> None:
    logger, stream = captured
    found = fake_secrets()
    try:
        try:
            raise KeyError(found["secret access key"])
        except KeyError as inner:
            raise RuntimeError(f"while using {found['generated password']} and {found['bot token']}") from inner
    except RuntimeError:
        logger.exception("it failed for %s", found["app token"], stack_info=True)
    out = stream.getvalue()
    assert "Traceback" in out and "RuntimeError" in out and "KeyError" in out and "Stack (most recent" in out
    assert leaked(out, found) == []


def test_a_broken_format_string_does_not_leak_its_arguments(captured) -> None:
    logger, stream = captured
    found = fake_secrets()
    logger.info("two placeholders %s %s but one argument", found["link key"])
    assert leaked(stream.getvalue(), found) == []


def test_a_link_keeps_its_path_but_loses_its_fragment(captured) -> None:
    logger, stream = captured
    key = b64url(secrets.token_bytes(32))
    logger.info("sent https://bot.example.com/credentials/ABCDEFGHabcdefgh12345678#%s", key)
    out = stream.getvalue()
    assert "https://bot.example.com/credentials/" in out and leaked(out, {"link key": key}) == []


def test_ordinary_words_ids_and_names_survive(captured) -> None:
    logger, stream = captured
    line = (
        "request R-ABCD2345 for nina.newhire (U0NEWHIRE1) in C0APPROVALS approved at 2026-11-30T10:00:00+00:00; "
        "access key AKIAIOSFODNN7EXAMPLE; tag iam-user-bot:request-id; policy arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    logger.info(line)
    assert stream.getvalue().strip().endswith(line)


def test_json_lines_are_redacted_too(capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    found = fake_secrets()
    try:
        logs.configure("json", "DEBUG")
        try:
            raise ValueError(found["secret access key"])
        except ValueError:
            logging.getLogger("tests.json").exception("failed with %s", found["generated password"])
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    entry = json.loads(err.strip().splitlines()[-1])
    assert entry["level"] == "ERROR" and "ValueError" in entry["exception"]
    assert leaked(err, found) == []


def test_json_fields_passed_as_extra_are_redacted_too(capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    found = fake_secrets()
    try:
        logs.configure("json", "INFO")
        extra = {"detail": f"password={found['generated password']} token {found['bot token']}", "attempt": 2}
        logging.getLogger("tests.json").warning("a line with extra fields", extra=extra)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    entry = json.loads(err.strip().splitlines()[-1])
    assert entry["attempt"] == 2 and "[REDACTED]" in entry["detail"]  # the field is there, cleaned
    assert leaked(err, found) == []


@pytest.mark.parametrize("library", ["botocore", "slack_sdk", "slack_bolt", "websockets.client", "aiohttp.client"])
def test_libraries_that_log_payloads_stay_quiet_whatever_the_level(capsys, library: str) -> None:
    # websockets logs every Socket Mode frame at DEBUG: a form's custom password among them.
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("text", "DEBUG")
        assert logging.getLogger(library).getEffectiveLevel() >= logging.INFO
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize(
    "base", ["https://bot.example.com", "http://127.0.0.1:3000", "https://example.org/apis", "http://localhost:3000"]
)
def test_link_paths_of_any_host_survive(captured, base: str) -> None:
    logger, stream = captured
    secret_id = "ABCDEFGHabcdefgh12345678"
    logger.info("GET %s/credentials/%s 200", base, secret_id)
    assert f"{base}/credentials/{secret_id} 200" in stream.getvalue()


def test_environment_style_assignments_are_redacted(captured) -> None:
    logger, stream = captured
    found = fake_secrets()
    logger.info("AWS_SECRET_ACCESS_KEY=%s SLACK_BOT_TOKEN=%s", found["secret access key"], found["bot token"])
    logger.info("key=%s", found["secret access key"])
    assert leaked(stream.getvalue(), found) == []
