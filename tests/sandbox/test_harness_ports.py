"""The harness survives a port taken between picking it and gunicorn binding it."""

from __future__ import annotations

import socket

import pytest

from bot.sandbox.processes import LOOPBACK, BotProcess, http
from tests.conftest import bot_env


@pytest.mark.e2e
def test_bot_moves_to_a_free_port_when_its_port_is_taken(moto_server, slack, tmp_path) -> None:
    taken = socket.socket()
    taken.bind((LOOPBACK, 0))
    taken.listen()
    busy_port = taken.getsockname()[1]
    process = BotProcess(env={}, log_path=tmp_path / "bot.log", port=busy_port)
    process.env = bot_env(moto_server, slack, tmp_path / "bot.db", "s" * 32, process.url)
    try:
        process.start(timeout=30)
        assert process.port != busy_port
        assert process.env["PUBLIC_BASE_URL"] == process.url
        assert http("GET", f"{process.url}/healthz").status == 200
        assert "Connection in use" in process.log_text()  # the retry really happened
    finally:
        process.stop()
        taken.close()
