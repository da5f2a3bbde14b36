"""The AWS CLI commands equivalent to a plan, for people to read. Pure: no I/O.

Shown in the request wizard's review and in the approval message, so that a reviewer sees the
exact IAM calls in the form they already know. No secret ever appears: passwords and access
keys are made while the plan runs, so the password is the shell variable ``$PASSWORD`` and an
access key is what ``create-access-key`` answers. Every argument is shell-quoted
(:func:`shlex.quote`), so a line pasted into a POSIX shell runs the call it shows.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence

from bot.domain.plan import Step, StepKind

PASSWORD_PLACEHOLDER = "$PASSWORD"  # noqa: S105 - a shell variable name, not a password
POLICY_DOCUMENT_DIR = "bot/policies"


def _command(*words: str) -> str:
    return " ".join(shlex.quote(word) for word in words)


def _tags_json(step: Step) -> str:
    """Tags in the CLI's JSON form: unlike the ``Key=…,Value=…`` shorthand it survives commas."""
    return json.dumps([{"Key": t.key, "Value": t.value} for t in step.tags], ensure_ascii=False, separators=(",", ":"))


def step_command(step: Step) -> str:
    """One ``aws iam …`` line for ``step``; a ``# …`` comment for a kind this module does not know.

    ``create-login-profile`` takes ``"$PASSWORD"`` (set by the reader, never a real password);
    ``put-user-policy`` reads the inline document from the source user with a nested
    ``get-user-policy``, which is what the bot copies.
    """
    user = step.user_name
    kind = step.kind
    if kind is StepKind.ENSURE_BOT_POLICY:
        name = step.target or ""
        return (
            _command("aws", "iam", "create-policy", "--policy-name", name, "--policy-document")
            + f" file://{POLICY_DOCUMENT_DIR}/{shlex.quote(name)}.json  # only if the account has none yet"
        )
    if kind is StepKind.CREATE_USER:
        words = ["aws", "iam", "create-user", "--user-name", user]
        if step.permissions_boundary_arn:
            words += ["--permissions-boundary", step.permissions_boundary_arn]
        if step.tags:
            words += ["--tags", _tags_json(step)]
        return _command(*words)
    if kind is StepKind.CREATE_LOGIN_PROFILE:
        reset = "--password-reset-required" if step.password_reset_required else "--no-password-reset-required"
        return (
            _command("aws", "iam", "create-login-profile", "--user-name", user, "--password")
            + f' "{PASSWORD_PLACEHOLDER}" {reset}'
        )
    if kind is StepKind.CREATE_ACCESS_KEY:
        return _command("aws", "iam", "create-access-key", "--user-name", user)
    if kind is StepKind.ADD_USER_TO_GROUP:
        return _command("aws", "iam", "add-user-to-group", "--user-name", user, "--group-name", step.target or "")
    if kind is StepKind.ATTACH_USER_POLICY:
        return _command("aws", "iam", "attach-user-policy", "--user-name", user, "--policy-arn", step.target or "")
    if kind is StepKind.PUT_USER_POLICY:
        name = step.target or ""
        source = step.source_user or ""
        read_words = ["aws", "iam", "get-user-policy", "--user-name", source, "--policy-name", name]
        read = _command(*read_words, "--query", "PolicyDocument", "--output", "json")
        return _command("aws", "iam", "put-user-policy", "--user-name", user, "--policy-name", name) + (
            f' --policy-document "$({read})"'
        )
    return f"# {step.label}"


def cli_lines(steps: Iterable[Step]) -> list[str]:
    """One command per step, in the plan's order (which is the order IAM needs)."""
    return [step_command(step) for step in steps]


def cli_script(steps: Sequence[Step]) -> str:
    """The commands as one text, with a first line saying where ``$PASSWORD`` comes from when a
    login profile is made. Meant for a code block; callers cut it to their size limit."""
    lines = cli_lines(steps)
    if any(step.kind is StepKind.CREATE_LOGIN_PROFILE for step in steps):
        lines.insert(0, "# PASSWORD: generated (or the requester's custom one) when the plan runs; never shown here")
    return "\n".join(lines)
