"""Run moto server and the bot as local processes on 127.0.0.1, wait until they answer, and talk HTTP to them.

Used by the end-to-end tests and the ``demo`` command: moto server stands in for IAM/STS and the bot
runs as a real server process (``iam-user-bot serve`` under gunicorn). :func:`http` sends one plain
request to either. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
# Fixed, fake AWS credentials for moto: moto accepts any, and real ones must never be used here.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ExitedEarly(RuntimeError):
    """The process being waited for exited before its URL answered (a port taken meanwhile, say)."""


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None, *, need_ok: bool = False) -> None:
    """Poll ``url`` until it answers; raise ``RuntimeError`` after ``timeout`` s.

    Any HTTP status counts, unless ``need_ok``: then only a 2xx does, so that another server
    that grabbed the port first cannot pass for ours.

    Raises:
        ExitedEarly: ``process`` exited first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ExitedEarly(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we built
                return
        except urllib.error.HTTPError:
            if not need_ok:
                return
            time.sleep(0.1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class MotoServer:
    """moto server in a subprocess (one request at a time: :mod:`bot.sandbox.moto_serial`), with AWS
    managed policies loaded."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        env = {**os.environ, **MOTO_ENV, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        out = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "bot.sandbox.moto_serial", "-H", LOOPBACK, "-p", str(self.port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/moto-api/", timeout=60, process=self._process)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self) -> dict[str, str]:
        """Environment that points boto3 at this server."""
        return {**MOTO_ENV, "AWS_ENDPOINT_URL": self.url}

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` talking to this server (few retries: moto answers fast)."""
        import boto3
        from botocore.config import Config

        params: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": MOTO_ENV["AWS_DEFAULT_REGION"],
            "aws_access_key_id": MOTO_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
            "config": Config(retries={"mode": "standard", "max_attempts": 2}),
        }
        params.update(kwargs)
        return boto3.client(service, **params)


@dataclass
class BotProcess:
    """``iam-user-bot serve`` in a subprocess, logging to ``log_path``.

    ``command`` runs the CLI (default: this interpreter's ``bot.cli``; an installed
    ``…/bin/iam-user-bot`` to run a package), in ``cwd`` (default: the current folder).
    """

    env: dict[str, str]
    log_path: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    command: tuple[str, ...] = (sys.executable, "-m", "bot.cli")
    cwd: Path | None = None
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60, attempts: int = 3) -> BotProcess:
        """Start and wait for ``/healthz`` to answer 200.

        A port picked by :func:`free_port` can be taken by another process before gunicorn binds
        it; gunicorn then gives up and exits. Up to ``attempts`` ports are tried, and environment
        values naming the old URL (``PUBLIC_BASE_URL``) follow the new port.
        """
        for attempt in range(attempts):
            env = {**os.environ, **self.env, "PORT": str(self.port)}
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                [*self.command, "serve", "--host", LOOPBACK, "--workers", str(self.workers)],
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: kill() takes the workers too
            )
            try:
                wait_http(f"{self.url}/healthz", timeout=timeout, process=self._process, need_ok=True)
                return self
            except ExitedEarly:
                self._process = None
                self._log.close()
                if attempt == attempts - 1 or "Connection in use" not in self.log_text():
                    raise
                old = self.url
                self.port = free_port()
                self.env = {k: v.replace(old, self.url) for k, v in self.env.items()}
        raise AssertionError("unreachable")

    def stop(self, kill: bool = False) -> None:
        """Stop gracefully (SIGTERM to the master), or with ``kill`` as a host that loses power:
        SIGKILL to the master and every worker at once."""
        if self._process is None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # The master and its workers (its own process group): a worker left behind would keep
            # its connections to moto and the stand-in open.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None
        self._log.close()

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid while running."""
        return self._process.pid if self._process else None


@dataclass
class HttpAnswer:
    """An HTTP answer: status, headers (lower-case names), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    """One HTTP request with urllib; 4xx/5xx are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return HttpAnswer(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())
