"""The CLI preview runs, in bash and in zsh, exactly as shown, and makes what the bot makes.

For each request (each permission mode, MFA and self-managed credentials, names that start with
``-`` or ``=`` or hold ``+ = . @ _``, tags with spaces, ``=`` and Unicode), the bot provisions it
against moto server; the whole script its ``status <id>`` answer carries (the approval message
shows the same commands, fewer when long) is then pasted into an interactive bash and an
interactive zsh (``zsh -i``: ``#`` is no comment there) with the real AWS CLI (v1, the test
extra), after the bot's users and policies are gone. Both clients reach moto through a
recording proxy (:class:`bot.sandbox.iam_proxy.IamProxy`): every write call and its parameters,
and what IAM holds afterwards, must be the same. moto drops permissions boundaries and does not
keep ``PasswordResetRequired``, so those are compared on the recorded calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import AccessType, PermissionMode, RequestForm, Tag
from bot.domain.states import RequestStatus
from bot.sandbox.iam_proxy import Call, IamProxy
from tests.conftest import APPROVER, RECIPIENT
from tests.support.iam_cleanup import delete_users
from tests.support.provisioning import (
    SECOND_RECIPIENT,
    TEMPLATE_USER,
    build_world,
    file_and_approve,
    make_harness,
    reset_password_policy,
    user_state,
)

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent  # aws and iam-user-bot of this environment
SHELLS = {
    "bash": (["bash", "--norc", "--noprofile", "-i"], "set -e"),
    "zsh": (["zsh", "-f", "-i"], "setopt ERR_EXIT"),
}
WRITES = ("CreatePolicy", "CreateUser", "CreateLoginProfile", "CreateAccessKey", "AddUserToGroup",
          "AttachUserPolicy", "PutUserPolicy")  # fmt: skip
PASSWORD = "Preview-Pass-2026!x-"
DONE = "preview ran to the end"


class ProxiedMoto:
    """moto server as seen through the recording proxy (what :func:`make_harness` needs)."""

    def __init__(self, moto: Any, proxy: IamProxy) -> None:
        self.moto, self.proxy = moto, proxy

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        return self.moto.boto3_client(service, endpoint_url=self.proxy.url, **kwargs)


@pytest.fixture
def proxy(moto_server) -> Iterator[IamProxy]:
    with IamProxy(moto_server.url) as running:
        yield running


def forms(world) -> dict[str, RequestForm]:
    both = frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC})
    return {
        "groups": RequestForm(
            recipients=(RECIPIENT,),
            user_names=("-gina",),
            access_types=both,
            require_reset=True,
            permission_mode=PermissionMode.GROUPS,
            groups=("developers", "-ops"),
            tags=(Tag(key="cost center", value="a=b c"), Tag(key="Ünïcode key", value="välue: x/y+z@w")),
            mfa_required=True,
            justification="odd names, groups, reset, MFA",
        ),
        "copy_user": RequestForm(
            recipients=(RECIPIENT, SECOND_RECIPIENT),
            user_names=("=eve", "ana+ops=1.x_y@corp"),
            access_types=both,
            require_reset=False,
            permission_mode=PermissionMode.COPY_USER,
            copy_from_user=TEMPLATE_USER,
            permissions_boundary_arn=world.boundary_arn,
            self_manage_credentials=True,
            justification="copy from a user with a path, boundary, self-managed credentials",
        ),
        "policies": RequestForm(
            recipients=(RECIPIENT,),
            user_names=("Bo.B",),
            access_types=frozenset({AccessType.PROGRAMMATIC}),
            permission_mode=PermissionMode.POLICIES,
            policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess", world.deep_read_arn),
            permissions_boundary_arn=world.boundary_arn,
            mfa_required=True,
            self_manage_credentials=True,
            justification="AWS managed and pathed customer managed policies, both bot policies",
        ),
    }


class World:
    def __init__(self, iam: Any) -> None:
        base = build_world(iam)
        self.boundary_arn = base.boundary_arn
        iam.create_group(GroupName="-ops")
        document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*",
                                                                         "Resource": "*"}]})  # fmt: skip
        policy = iam.create_policy(PolicyName="deep-read", Path="/team/x/", PolicyDocument=document)
        self.deep_read_arn = policy["Policy"]["Arn"]


@pytest.fixture
def world(iam, slack) -> Iterator[World]:
    slack.add_user(SECOND_RECIPIENT, name="omar.newhire", email="omar.newhire@example.com")
    yield World(iam)
    reset_password_policy(iam)


def unescape(text: str) -> str:
    """Slack shows ``&amp; &lt; &gt;`` as the characters; that is what a reader copies."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def script_lines(messages: list[str]) -> list[str]:
    """The command lines inside the code fences of the ``status <id>`` script messages."""
    lines: list[str] = []
    for message in messages:
        assert message.count("```") == 2, "each part holds one code block"
        code = message.split("```")[1].strip("\n")
        lines += [unescape(line) for line in code.split("\n")]
    return lines


def shown_in_approval_message(blocks: list[Any]) -> list[str]:
    lines: list[str] = []
    for block in (b.to_dict() for b in blocks):
        text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
        if text.startswith("```"):
            lines += [unescape(line) for line in text.strip("`").strip("\n").split("\n")]
    return lines


def normalized(calls: list[Call]) -> list[str]:
    """Write calls as comparable text, in a stable order (users run in parallel, so in any order)."""
    out = []
    for call in calls:
        params = {k: v for k, v in call.params.items() if k not in ("Version", "Action")}
        if "PolicyDocument" in params:
            params["PolicyDocument"] = json.loads(params["PolicyDocument"])
        out.append(json.dumps([call.action, params], sort_keys=True, ensure_ascii=False))
    return sorted(out)


def iam_state(iam: Any, user_names: tuple[str, ...]) -> dict[str, Any]:
    """Users (groups, policies, inline documents, login profile, how many keys, tags) and the
    bot-managed policies (description, tags, document)."""
    users = {}
    for name in user_names:
        state = user_state(iam, name)
        state["access_keys"] = len(state["access_keys"])
        state["inline"] = {
            policy: iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
            for policy in state["inline"]
        }
        users[name] = state
    policies = {}
    for policy in iam.list_policies(Scope="Local")["Policies"]:
        if policy["PolicyName"].startswith("iam-user-bot-"):
            full = iam.get_policy(PolicyArn=policy["Arn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=full["DefaultVersionId"])
            policies[policy["PolicyName"]] = {
                "path": full["Path"],
                "description": full.get("Description"),
                "tags": {t["Key"]: t["Value"] for t in full.get("Tags", [])},
                "document": version["PolicyVersion"]["Document"],
            }
    return {"users": users, "bot_policies": policies}


def remove(iam: Any, user_names: tuple[str, ...]) -> None:
    """Take the request's users and the bot-managed policies out of IAM again."""
    delete_users(iam, user_names)
    for policy in iam.list_policies(Scope="Local")["Policies"]:
        if policy["PolicyName"].startswith("iam-user-bot-"):
            iam.delete_policy(PolicyArn=policy["Arn"])


def paste(shell: str, lines: list[str], proxy: IamProxy, home: Path) -> subprocess.CompletedProcess[str]:
    """``lines`` typed into an interactive ``shell`` (as a paste is), stopping at the first
    failing command; the AWS CLI and ``iam-user-bot`` of this environment on ``PATH``."""
    argv, errexit = SHELLS[shell]
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PS1": "",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "PASSWORD": PASSWORD,
    }
    typed = "\n".join([errexit, *lines, f"echo '{DONE}'", "exit 0"]) + "\n"
    return subprocess.run(argv, input=typed, capture_output=True, text=True, env=env, cwd=home, timeout=300)


@pytest.mark.parametrize("case", ["groups", "copy_user", "policies"])
def test_every_previewed_command_runs_in_bash_and_zsh_and_makes_what_the_bot_makes(
    case: str, moto_server, slack, iam, world, proxy, tmp_path
) -> None:
    form = forms(world)[case]  # the world's password policy: 14 characters, users may not change theirs
    bot = make_harness(ProxiedMoto(moto_server, proxy), slack, tmp_path / "bot.db")
    request = file_and_approve(bot, form)
    proxy.reset()
    done = bot.provisioning.provision(request.id)
    assert done is not None and done.status is RequestStatus.PROVISIONED, done and done.error
    made_by_bot = iam_state(iam, form.user_names)
    bot_writes = normalized(proxy.recorded(*WRITES))
    assert sum('"CreateUser"' in call for call in bot_writes) == len(form.user_names)
    if form.console:
        assert sum(state["login_profile"] for state in made_by_bot["users"].values()) == len(form.user_names)

    # What a reader copies: the whole script of `status <id>`; the approval message shows its start.
    messages = bot.services.desk.followups(APPROVER, f"status {request.id}")
    lines = script_lines(messages)
    _text, blocks = bot.services.board.render(done)
    shown = shown_in_approval_message(blocks)
    assert shown and shown == lines[: len(shown)]
    assert not [line for line in lines if "#" in line], "a comment (or a # zsh would read as one)"
    remove(iam, form.user_names)

    for shell in SHELLS:
        home = tmp_path / shell
        home.mkdir()
        proxy.reset()
        ran = paste(shell, lines, proxy, home)
        assert ran.returncode == 0 and DONE in ran.stdout, f"{shell} stopped: {ran.stderr[-2000:]}"
        assert normalized(proxy.recorded(*WRITES)) == bot_writes, f"{shell}: other IAM calls than the bot's"
        assert iam_state(iam, form.user_names) == made_by_bot, f"{shell}: IAM holds something else"
        remove(iam, form.user_names)


def test_a_script_too_long_for_one_message_comes_in_parts_cut_between_commands(
    moto_server, slack, iam, world, proxy, tmp_path
) -> None:
    """Ten users with 40 long tags each: the approval message names what it leaves out; the
    ``status`` answer carries every command, whole, in several messages Slack accepts."""
    tags = tuple(Tag(key=f"key-{i:02d}-" + "k" * 100, value="v" * 200) for i in range(40))
    names = tuple(f"user{i}" for i in range(10))
    form = RequestForm(
        recipients=tuple(f"U0NEWHIR{i:02d}" for i in range(10)),
        user_names=names,
        access_types=frozenset({AccessType.PROGRAMMATIC}),
        permission_mode=PermissionMode.GROUPS,
        groups=("developers",),
        tags=tags,
        justification="a long script",
    )
    bot = make_harness(ProxiedMoto(moto_server, proxy), slack, tmp_path / "bot.db")
    request = file_and_approve(bot, form)
    messages = bot.services.desk.followups(APPROVER, f"status {request.id}")
    lines = script_lines(messages)
    assert len(messages) > 1 and all(len(m) <= 40_000 for m in messages)
    assert [line.split()[2] for line in lines] == ["create-user", "create-access-key", "add-user-to-group"] * 10
    assert all(len(line) > 3000 for line in lines[::3])  # each create-user passes what one block holds
    _text, blocks = bot.services.board.render(request)
    body = json.dumps([b.to_dict() for b in blocks])
    assert f"DM me `status {request.id}` for the whole script" in body and "longer than one Slack block" in body
    for message in messages:  # Slack (the stand-in) takes each part
        assert bot.services.messenger.dm(APPROVER, message) is not None
