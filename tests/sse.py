"""A small SSE reader for the tests: real bytes off a socket, parsed as the browser does."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

_ATTR = re.compile(r'data-(x|y|seq)="(\d+)"')
_VIEWERS = re.compile(r'data-viewers="(\d+)"')


@dataclass
class Event:
    type: str
    data: str
    id: str | None

    @property
    def position(self) -> dict[str, int]:
        return {name: int(value) for name, value in _ATTR.findall(self.data)}

    @property
    def viewers(self) -> int:
        found = _VIEWERS.search(self.data)
        assert found is not None, f"no data-viewers in {self.data!r}"
        return int(found[1])


class SSEClient:
    def __init__(self, base_url: str, path: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        self.raw = bytearray()
        self.events: list[Event] = []
        self.closed = False  # the stream ended, cleanly or not
        self.error: BaseException | None = None  # why it broke; None: the body ended in order
        self._closing = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._reader.start()

    def _read(self) -> None:
        kind, data, event_id = "message", [], None
        try:
            while line := self.response.readline():
                self.raw += line
                text = line.decode().rstrip("\r\n")
                if text == "":
                    if data:
                        with self._cond:
                            self.events.append(Event(kind, "\n".join(data), event_id))
                            self._cond.notify_all()
                    kind, data = "message", []
                elif text.startswith(":"):
                    continue
                else:
                    field, _, value = text.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        kind = value
                    elif field == "data":
                        data.append(value)
                    elif field == "id":
                        event_id = value
            # http.client takes a close between chunks for the end: only the last chunk is one.
            if self.response.chunked and self.response.chunk_left is not None:
                raise http.client.IncompleteRead(b"")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # A reset, a cut chunk or bytes that do not decode: never mistaken for a clean end.
            # Errors that our own close() causes are not the server's.
            if not self._closing:
                self.error = exc
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def positions(self) -> list[dict[str, int]]:
        with self._cond:
            return [e.position for e in self.events if e.type == "position"]

    @property
    def ended_cleanly(self) -> bool:
        """Whether the stream ended as HTTP ends a body (its last chunk), nothing broken."""
        with self._cond:
            return self.closed and self.error is None

    @property
    def reset(self) -> bool:
        """Whether the peer reset the connection (an orderly close is a FIN, even mid-body)."""
        with self._cond:
            return isinstance(self.error, ConnectionResetError)

    def wait_for(self, predicate, timeout: float = 15) -> list[dict[str, int]]:
        """Wait until predicate(positions so far) holds; return the positions."""
        return self._wait("position", lambda e: e.position, predicate, timeout)

    def wait_watching(self, viewers: int, timeout: float = 15) -> list[int]:
        """Wait until the stream's newest `presence` says `viewers`; return every count shown."""
        return self._wait(
            "presence", lambda e: e.viewers, lambda vs: bool(vs) and vs[-1] == viewers, timeout
        )

    def wait_frozen(self, frozen: bool, timeout: float = 15) -> list[bool]:
        """Wait until the stream's newest `board` event says frozen (or not); return each said."""
        return self._wait(
            "board",
            lambda e: 'data-frozen="true"' in e.data,
            lambda fs: bool(fs) and fs[-1] == frozen,
            timeout,
        )

    def _wait(self, kind: str, parse, predicate, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [parse(e) for e in self.events if e.type == kind]
                if predicate(found):
                    return found
                if self.error is not None:
                    raise AssertionError(f"SSE stream broke: {self.error!r}; got {found}")
                if self.closed:
                    raise AssertionError(f"SSE stream ended (EOF) first; got {found}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SSE wait timed out after {timeout} s; got {found}")
                self._cond.wait(left)

    def wait_seq(self, seq: int, timeout: float = 15) -> dict[str, int]:
        return self.wait_for(lambda ps: bool(ps) and ps[-1]["seq"] >= seq, timeout)[-1]

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # Shut the socket down and let the reader see the end before the connection goes.
        self._closing = True
        if self.conn.sock is not None:
            with contextlib.suppress(OSError):
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        if self._reader.is_alive():
            self._reader.join(5)
        self.conn.close()
