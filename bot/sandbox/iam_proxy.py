"""A loopback HTTP proxy in front of moto server that makes it answer more like IAM, and watches.

- **Pages list calls as IAM does.** moto answers ``ListUsers`` (and most list calls) with every
  item at once; IAM answers at most ``MaxItems`` (default 100) with ``IsTruncated`` and a
  ``Marker`` for the next page. The proxy reads the whole list from moto once per listing and
  hands it out page by page, so a client makes the calls, and reads the bytes, it would make
  against IAM.
- **Adds no delay of its own.** Each answer leaves in one write with ``TCP_NODELAY``, and moto is
  reached over kept-alive connections: a call through the proxy costs about what it costs direct
  (Nagle's algorithm with delayed ACKs added about 40 ms per call to a proxy that wrote headers
  and body apart). ``delay`` (seconds) adds a chosen latency to every call instead.
- **Records** every call's ``Action`` and parameters (passwords left out), for tests that compare
  what two clients asked IAM to do, and counts actions and bytes for benchmarks.

Used by the tests (the CLI preview run against the bot's own calls) and by ``benchmarks/``.
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bot.sandbox.processes import LOOPBACK, free_port

IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
IAM_PAGE_SIZE = 100  # IAM's default MaxItems
SECRET_PARAMETERS = frozenset({"Password", "NewPassword", "OldPassword"})
CACHED_LISTINGS = 64


@dataclass(frozen=True)
class _Listing:
    """A list read whole from moto: its answer's headers and shape (the list emptied), its items."""

    head: list
    skeleton: bytes
    items: list[ET.Element]


@dataclass(frozen=True)
class Call:
    """One request through the proxy: its ``Action`` and form parameters (no password)."""

    action: str
    params: dict[str, str]


def _pages_of(action: str, params: dict[str, str]) -> bool:
    """Whether ``action`` is an IAM call that IAM answers page by page (``Marker``/``MaxItems``)."""
    return params.get("Version") == "2010-05-08" and (action.startswith("List") or action == "GetGroup")


class IamProxy:
    """Forwards to ``target`` (moto server's URL) on a free loopback port (:attr:`url`).

    Args:
        delay: seconds added to every call (0: none).
        page_size: the largest page of a list call when the client sets no ``MaxItems``.
    """

    def __init__(self, target: str, delay: float = 0.0, page_size: int = IAM_PAGE_SIZE) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.delay = delay
        self.page_size = page_size
        self.actions: Counter[str] = Counter()
        self.calls: list[Call] = []
        self.bytes_out = 0
        self._lock = threading.Lock()
        self._listings: OrderedDict[str, _Listing] = OrderedDict()
        self._local = threading.local()
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server = ThreadingHTTPServer((LOOPBACK, self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- what went through ------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the counts and the recorded calls."""
        with self._lock:
            self.actions.clear()
            self.calls.clear()
            self.bytes_out = 0

    def iam_calls(self) -> int:
        """Calls made so far, STS's ``GetCallerIdentity`` left out."""
        with self._lock:
            return sum(n for action, n in self.actions.items() if action != "GetCallerIdentity")

    def recorded(self, *actions: str) -> list[Call]:
        """The recorded calls of these actions (all when none is named), in order."""
        with self._lock:
            return [c for c in self.calls if not actions or c.action in actions]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> IamProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding ---------------------------------------------------------------------------

    def _upstream(self) -> HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = HTTPConnection(self.target.hostname, self.target.port, timeout=60)
            conn.connect()
            conn.sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
            self._local.conn = conn
        return conn

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, list, bytes]:
        """One request to moto over this thread's kept-alive connection: ``(status, headers, body)``."""
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.request(method, path, body, headers)
                answer = conn.getresponse()
                return answer.status, answer.getheaders(), answer.read()
            except (ConnectionError, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _whole_list(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, list, bytes, ET.Element | None, list[ET.Element]]:
        """moto's first answer to a listing, parsed, and every item moto holds (following moto's
        own markers where it pages at all): ``(status, headers, body, root, items)``."""
        query = {k: v for k, v in params.items() if k not in ("Marker", "MaxItems")}
        status, head, data = self.forward("POST", path, urllib.parse.urlencode(query).encode(), headers)
        if status != 200:
            return status, head, data, None, []
        root = ET.fromstring(data)  # noqa: S314 - moto's answer on loopback
        result, items = _list_of(root)
        while result is not None and _text(result, "IsTruncated") == "true" and _text(result, "Marker"):
            query["Marker"] = _text(result, "Marker")
            _status, _head, more = self.forward("POST", path, urllib.parse.urlencode(query).encode(), headers)
            result, extra = _list_of(ET.fromstring(more))  # noqa: S314
            items.extend(extra)
        return status, head, data, root, items

    def _page(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, list, bytes]:
        """A page of a list call, as IAM answers it: at most ``MaxItems`` (default
        :attr:`page_size`) items, ``IsTruncated``, and a ``Marker`` for the next page. The first
        page reads the whole list from moto; the next ones are cut from what it read."""
        marker = params.get("Marker", "")
        size = min(int(params.get("MaxItems") or self.page_size), 1000)
        token, _, start = marker.partition(":")
        with self._lock:
            listing = self._listings.get(token) if marker else None
        if listing is None:
            status, head, data, root, items = self._whole_list(path, params, headers)
            result = _list_of(root)[0] if root is not None else None
            container = _container(result) if result is not None else None
            if root is None or container is None:
                return status, head, data
            for child in list(container):
                container.remove(child)
            ET.register_namespace("", IAM_NAMESPACE)
            listing = _Listing(head, ET.tostring(root), items)
            token, start = secrets.token_hex(8), "0"
        root = ET.fromstring(listing.skeleton)  # noqa: S314 - our own serialization of moto's answer
        result = _list_of(root)[0]
        container = _container(result) if result is not None else None
        assert result is not None and container is not None
        offset = int(start or 0)
        container.extend(listing.items[offset : offset + size])
        more = offset + size < len(listing.items)
        _set(result, "IsTruncated", "true" if more else "false")
        for old in result.findall(f"{{{IAM_NAMESPACE}}}Marker"):
            result.remove(old)
        if more:
            _set(result, "Marker", f"{token}:{offset + size}")
            with self._lock:
                self._listings[token] = listing
                while len(self._listings) > CACHED_LISTINGS:
                    self._listings.popitem(last=False)
        ET.register_namespace("", IAM_NAMESPACE)
        return 200, listing.head, ET.tostring(root)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                params = dict(urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
                action = params.get("Action", "?")
                with proxy._lock:
                    proxy.actions[action] += 1
                    kept = {k: v for k, v in params.items() if k not in SECRET_PARAMETERS}
                    proxy.calls.append(Call(action, kept))
                if proxy.delay:
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                if _pages_of(action, params):
                    status, head, data = proxy._page(self.path, params, headers)
                else:
                    status, head, data = proxy.forward(self.command, self.path, body, headers)
                lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
                lines += [f"{k}: {v}" for k, v in head if k.lower() not in ("transfer-encoding", "content-length")]
                lines += [f"Content-Length: {len(data)}", "", ""]
                self.wfile.write("\r\n".join(lines).encode("latin-1") + data)  # one write: no Nagle wait
                with proxy._lock:
                    proxy.bytes_out += len(data)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(f"{{{IAM_NAMESPACE}}}{tag}")
    return (found.text or "") if found is not None else ""


def _set(element: ET.Element, tag: str, value: str) -> None:
    found = element.find(f"{{{IAM_NAMESPACE}}}{tag}")
    if found is None:
        found = ET.SubElement(element, f"{{{IAM_NAMESPACE}}}{tag}")
    found.text = value


def _container(result: ET.Element) -> ET.Element | None:
    """The list element of a ``…Result`` (the one holding ``member`` elements, or an empty one)."""
    for child in result:
        name = child.tag.rsplit("}", 1)[-1]
        if name in ("IsTruncated", "Marker", "Group"):
            continue
        if len(child) == 0 or child[0].tag.endswith("}member"):
            return child
    return None


def _list_of(root: ET.Element) -> tuple[ET.Element | None, list[ET.Element]]:
    """The ``…Result`` element of an answer and the members of its list."""
    result = next((child for child in root if child.tag.endswith("Result")), None)
    if result is None:
        return None, []
    container = _container(result)
    return result, list(container) if container is not None else []
