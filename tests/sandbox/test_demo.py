"""``iam-user-bot demo``: passes when the flow works, fails when a step does not happen, cleans up."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.sandbox import demo
from bot.sandbox.demo_form import NarratedFormFiller, Transcript, blocks_as_text, mask
from bot.sandbox.processes import HttpAnswer

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e  # every test here starts the bot or the demo as real processes


def _answers_connections(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_demo_plays_the_whole_flow_and_never_prints_a_secret() -> None:
    out = io.StringIO()
    result = demo.run_demo(out=out)
    text = out.getvalue()
    assert result.ok, result.error
    assert result.seconds < 30
    # The transcript shows each part the issue asks for.
    for expected in (
        "Who receives credentials",  # the modal's questions
        "[ Approve ]  [ Deny ]",  # the approval message as text
        "user       arn:aws:iam::123456789012:user/iam-user-bot/nina.newhire",  # IAM resources
        "groups     developers",
        "as Slack's link preview bot -> HTTP 200",  # the link before reveal
        "Reveal again -> HTTP 410",  # and after
        "-> arn:aws:iam::123456789012:user/iam-user-bot/nina.newhire",  # STS with the revealed key
        "Demo passed:",
    ):
        assert expected in text, expected
    assert "[FAIL]" not in text
    # The secrets really were revealed, and appear nowhere in the output (checked by label).
    secrets = {k: result.revealed[k] for k in ("password", "secret_access_key")}
    assert all(len(v) >= 16 for v in secrets.values())
    assert [name for name, value in secrets.items() if value in text] == []
    assert mask(secrets["secret_access_key"]) in text
    assert not re.search(r"/credentials/[A-Za-z0-9_-]+#(?!\*\*\*\*)[A-Za-z0-9_-]{5}", text), "an unmasked link key"


def test_demo_fails_and_says_where_when_a_step_does_not_happen() -> None:
    def bot_not_invited(moto, slack) -> None:
        slack.set_not_in_channel(demo.APPROVAL_CHANNEL)

    out = io.StringIO()
    result = demo.run_demo(out=out, before_bot=bot_not_invited)
    assert not result.ok
    assert "not_in_channel" in (result.error or "")
    kept = re.search(r"kept in (\S+)", out.getvalue())
    assert kept is not None and (Path(kept.group(1)) / "bot.log").exists()
    for leftover in Path(kept.group(1)).iterdir():
        leftover.unlink()
    Path(kept.group(1)).rmdir()


def test_demo_without_moto_prints_one_line_hint() -> None:
    code = "import sys; sys.modules['moto'] = None; from bot.cli import main; raise SystemExit(main(['demo']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[test]'" in lines[0]


def test_ctrl_c_stops_every_process_and_removes_the_temp_dir(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    urls: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        urls += re.findall(r"on (http://127\.0\.0\.1:\d+)", line)
        if "the bot (iam-user-bot serve" in line or time.monotonic() > deadline:
            break
    assert len(urls) == 3, urls  # moto, the stand-in, the bot
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert [u for u in urls if _answers_connections(u)] == []
    assert list(tmp_path.iterdir()) == []


def test_form_filler_follows_a_multi_view_wizard_by_block_id() -> None:
    """The wizard of issue 3 may split the form over views; the filler answers each by block_id."""
    first = {
        "id": "V1",
        "callback_id": "wizard_1",
        "title": {"type": "plain_text", "text": "Step 1"},
        "blocks": [
            {
                "type": "input",
                "block_id": "recipients",
                "label": {"type": "plain_text", "text": "Who"},
                "element": {"type": "multi_users_select", "action_id": "who"},
            },
            {
                "type": "input",
                "block_id": "permission_mode",
                "label": {"type": "plain_text", "text": "How"},
                "element": {
                    "type": "radio_buttons",
                    "action_id": "mode",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Add to groups"}, "value": "groups"},
                        {"text": {"type": "plain_text", "text": "Copy a user"}, "value": "copy_user"},
                    ],
                },
            },
        ],
    }
    second = {
        "callback_id": "wizard_2",
        "title": {"type": "plain_text", "text": "Step 2"},
        "blocks": [
            {
                "type": "input",
                "block_id": "policies",
                "label": {"type": "plain_text", "text": "Policies"},
                "element": {"type": "multi_external_select", "action_id": "pol"},
            },
            {
                "type": "input",
                "block_id": "tags",
                "optional": True,
                "label": {"type": "plain_text", "text": "Tags"},
                "element": {"type": "plain_text_input", "action_id": "tags"},
            },
        ],
    }

    class FakeSlackUser:
        """Answers like the bot would: the first view is updated to the second, then the modal closes."""

        def __init__(self) -> None:
            self.submitted: list[tuple[str, dict]] = []

        def block_suggestion(self, user_id, view, action_id, query) -> HttpAnswer:
            option = {"text": {"type": "plain_text", "text": "ReadOnlyAccess"}, "value": "arn:aws:iam::aws:policy/RO"}
            return HttpAnswer(200, {}, json.dumps({"options": [option]}).encode())

        def view_submission(self, user_id, view, values) -> HttpAnswer:
            self.submitted.append((view["callback_id"], values))
            if len(self.submitted) == 1:
                return HttpAnswer(200, {}, json.dumps({"response_action": "update", "view": second}).encode())
            return HttpAnswer(200, {}, b"")

    user = FakeSlackUser()
    answers = {"recipients": ["U1"], "permission_mode": "Add to groups", "policies": ["ReadOnlyAccess"]}
    out = io.StringIO()
    NarratedFormFiller(user, "U0REQ", Transcript(out), names={"U1": "nina"}).run(first, answers)
    submitted = user.submitted
    assert submitted[0] == (
        "wizard_1",
        {
            "recipients": {"who": {"type": "multi_users_select", "selected_users": ["U1"]}},
            "permission_mode": {
                "mode": {
                    "type": "radio_buttons",
                    "selected_option": {"value": "groups", "text": {"type": "plain_text", "text": "Add to groups"}},
                }
            },
        },
    )
    assert submitted[1][0] == "wizard_2"
    assert submitted[1][1]["policies"]["pol"]["selected_options"][0]["value"] == "arn:aws:iam::aws:policy/RO"
    assert submitted[1][1]["tags"]["tags"]["value"] is None
    assert 'View 2: "Step 2"' in out.getvalue() and "answer: @nina" in out.getvalue()

    # A required field the demo has no answer for stops it with the block_id named.
    with pytest.raises(demo.DemoFailed, match="'policies'"):
        NarratedFormFiller(FakeSlackUser(), "U0REQ", Transcript(io.StringIO())).values(second, {})


def test_blocks_as_text_reads_like_slack() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Request R-1"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "By <@U1> in <#C1> &lt;x&gt; <!date^1^{date}|today>"}},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve"}}]},
    ]
    assert blocks_as_text(blocks, {"U1": "rita", "C1": "approvals"}) == (
        "## Request R-1\nBy @rita in #approvals <x> today\n[ Approve ]"
    )
