"""``iam-user-bot check``: is the bot set up to work? One line per check, each with its fix.

Every problem is reported in one run: a bad variable does not hide the others, nor the Slack,
database and AWS checks that do not depend on it. Checks, in order: configuration (every bad
or missing variable, one line each), the database file, the public URL (HTTPS), Slack
(``auth.test`` with the bot token; the token's scopes against the app manifest; approvers,
requesters and their user groups exist; in Socket Mode the app-level token), the AWS identity
(``sts:GetCallerIdentity``, which needs no permission) and the IAM permissions the bot needs.
Permissions are checked with ``iam:SimulatePrincipalPolicy`` on the bot's own ARN when that
call is allowed (it evaluates every action without performing any); otherwise read-only probes
run and the write permissions are reported as unverified. Nothing is created or changed in IAM
or Slack; the database file is created or migrated only when the configuration is valid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from bot.aws.secrets import SOURCE_VARIABLE, read_secrets
from bot.aws.selfcheck import check_client
from bot.config import (
    APPROVERS_MISSING,
    DYNAMODB_TABLE_MISSING,
    SIGNING_SECRET_MISSING,
    ConfigError,
    Settings,
    cross_field_problems,
    describe_errors,
)
from bot.ops.check_aws import check_aws
from bot.ops.check_slack import check_slack
from bot.ops.report import CheckLine, Inputs

# How to fix each variable, for the configuration lines (README, "Configuration").
CONFIG_FIXES = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "copy the Signing Secret from the app's Basic Information page",
    "SLACK_APP_TOKEN": "generate an app-level token (xapp-…) with connections:write under Basic Information",
    "SLACK_API_URL": "leave it unset for Slack itself (https://slack.com/api/)",
    "APPROVAL_CHANNEL_ID": "use the channel's ID (channel details → About → Channel ID, C… or G…), not its name",
    "APPROVER_USER_IDS": "use member IDs (profile → ⋮ → Copy member ID, U…), separated by commas",
    "REQUESTER_USER_IDS": "use member IDs (profile → ⋮ → Copy member ID, U…), separated by commas",
    "PUBLIC_BASE_URL": "set the bot's external address, like https://iam-bot.example.org",
    "DATABASE_PATH": "point it at a writable file on persistent local storage",
    "LOG_LEVEL": "use DEBUG, INFO, WARNING, ERROR or CRITICAL (or leave it unset: INFO)",
    "LOG_FORMAT": "use text or json (or leave it unset: text)",
    "STORE": "set it to sqlite (the default) or dynamodb",
    "DYNAMODB_TABLE": "use the table's name; `iam-user-bot init-store` creates it",
}
CROSS_FIELD_FIXES = {
    APPROVERS_MISSING: "set APPROVER_USER_IDS to approvers' member IDs (U…), or APPROVER_USERGROUP_ID to a "
    "user group (S…)",
    SIGNING_SECRET_MISSING: "copy the Signing Secret from the app's Basic Information page, or set SLACK_APP_TOKEN "
    "for Socket Mode",
    DYNAMODB_TABLE_MISSING: "set DYNAMODB_TABLE to the table's name (`iam-user-bot init-store` creates it)",
}
CONFIG_FIX_DEFAULT = "set it as the README's Configuration table says"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_configuration() -> tuple[list[CheckLine], Settings | None]:
    """One line when the configuration is valid, else one line per problem (each with its fix)."""
    overrides: dict[str, str] = {}
    source = os.environ.get(SOURCE_VARIABLE, "").strip()
    if source:
        try:
            overrides = {name.lower(): value for name, value in read_secrets(source).items()}
        except ConfigError as error:
            fix = "give the bot's credentials read access to it, or correct the name"
            return [CheckLine("configuration", False, str(error), fix)], None
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = [(message.removeprefix("configuration: "), variable) for variable, message in describe_errors(error)]
        # pydantic checks the rules across variables only when every variable is valid: read them
        # from the environment too, so one run names them all.
        problems += [(problem, "") for problem in cross_field_problems(os.environ)]
        lines = [
            CheckLine(
                "configuration",
                False,
                message,
                CONFIG_FIXES.get(variable, CONFIG_FIX_DEFAULT) if variable else CROSS_FIELD_FIXES.get(message, ""),
            )
            for message, variable in dict.fromkeys(problems)
        ]
        return lines, None
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    return [CheckLine("configuration", True, f"{mode}, approvals in {settings.approval_channel_id}")], settings


def check_database(path: Path, environ: Mapping[str, str] | None = None, configured: bool = True) -> CheckLine:
    """The store: the SQLite file at ``path`` (created and migrated; a warning when group or
    others may read its files), or with ``STORE=dynamodb`` in ``environ`` the DynamoDB table (it
    must exist: ``iam-user-bot init-store`` creates it).

    With a broken configuration (``configured`` false) nothing is opened or written: the line
    says what is there, or fails when the folder cannot hold the file.
    """
    from bot.storage import describe, open_from_environment

    environ = dict(environ if environ is not None else os.environ)
    dynamodb = environ.get("STORE", "").strip().lower() == "dynamodb"
    if not configured and dynamodb:
        return CheckLine("store", True, f"{describe(environ)}: checked once the configuration is valid", skipped=True)
    if dynamodb:
        try:
            version = open_from_environment(environ).schema_version
        except Exception as error:
            return CheckLine("store", False, f"{describe(environ)}: {error}", "run `iam-user-bot init-store`")
        return CheckLine("store", True, f"{describe(environ)} at schema version {version}")
    if not configured:
        folder = path.parent if str(path.parent) else Path(".")
        if path.exists():
            return CheckLine("database", True, f"{path} exists; opened once the configuration is valid", skipped=True)
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return CheckLine(
                "database", True, f"{path} does not exist yet; created once the configuration is valid", skipped=True
            )
        return CheckLine(
            "database",
            False,
            f"{folder} is not a folder the bot can write to, so {path.name} cannot be created there",
            "point DATABASE_PATH at a writable file on persistent storage",
        )
    try:
        version = open_from_environment({**environ, "DATABASE_PATH": str(path)}).schema_version
    except Exception as error:
        return CheckLine(
            "database",
            False,
            f"{path}: {error}",
            "point DATABASE_PATH at a writable file on persistent storage",
        )
    detail = f"{path} at schema version {version}"
    if exposed := readable_by_others(path):
        return CheckLine(
            "database",
            True,
            f"{detail}, but {', '.join(exposed)} can be read by other users of this machine",
            f"chmod 600 {' '.join(str(p) for p in database_files(path))}",
            warn=True,
        )
    return CheckLine("database", True, detail)


def database_files(path: Path) -> list[Path]:
    """The database file and whichever of its ``-wal`` and ``-shm`` files exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def readable_by_others(path: Path) -> list[str]:
    """``"<file> (mode 0644)"`` for each database file whose group or other bits are set."""
    return [f"{p.name} (mode {p.stat().st_mode & 0o777:04o})" for p in database_files(path) if p.stat().st_mode & 0o077]


def check_public_url(url: str) -> CheckLine:
    """One-time links must be HTTPS: over plain HTTP the page that reads the key could be altered."""
    parts = urlsplit(url)
    if parts.scheme == "https" or parts.hostname in LOCAL_HOSTS:
        return CheckLine("public url", True, f"one-time links start with {url.rstrip('/')}/credentials/")
    return CheckLine(
        "public url",
        False,
        f"{url} is not HTTPS: the link page, which reads the decryption key, could be altered on the way",
        "serve the bot behind HTTPS and set PUBLIC_BASE_URL=https://…",
    )


def run_checks(make_client: Callable[[str], Any] = check_client) -> list[CheckLine]:
    """Every check, in order. With a broken configuration, every check that does not depend on
    the broken variables still runs (database, public URL, Slack, AWS)."""
    lines, settings = check_configuration()
    inputs = Inputs.from_settings(settings) if settings is not None else Inputs.from_environment(os.environ)
    lines.append(check_database(inputs.database_path, configured=settings is not None))
    if inputs.public_base_url:
        lines.append(check_public_url(inputs.public_base_url))
    if inputs.bot_token:
        lines += check_slack(inputs)
    lines += check_aws(make_client)
    return lines


def main() -> int:
    """Print one line per check; exit status 0 when all passed, 1 otherwise."""
    lines = run_checks()
    for line in lines:
        print(line.render())
    return 0 if all(line.ok for line in lines) else 1
