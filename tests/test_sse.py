"""The tests' SSE reader tells a stream that ended in order from one that broke."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.sse import SSEClient

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b'event: position\ndata: <div data-x="5" data-y="6" data-seq="1"></div>\n\n'


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def serve() -> Iterator:
    """A one-shot loopback server: sends `body` after the request, then closes, resets, or
    holds the connection until the client goes."""
    threads: list[threading.Thread] = []

    def start(body: bytes, end: str = "close") -> str:
        listener = socket.create_server(("127.0.0.1", 0))

        def answer() -> None:
            with listener, listener.accept()[0] as conn:
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(body)
                if end == "reset":  # linger 0: close() sends a RST, not a FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                while end == "hold" and conn.recv(65536):
                    pass

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for thread in threads:
        thread.join(10)


def test_an_orderly_end_is_clean(serve) -> None:
    client = SSEClient(serve(HEAD + chunk(EVENT) + b"0\r\n\r\n"), "/")
    try:
        assert client.wait_seq(1) == {"x": 5, "y": 6, "seq": 1}
        with pytest.raises(AssertionError, match=r"ended \(EOF\)"):
            client.wait_seq(2)
        assert client.ended_cleanly and client.error is None
    finally:
        client.close()


def test_a_reset_is_an_error_that_wait_for_names(serve) -> None:
    client = SSEClient(serve(HEAD + chunk(EVENT), end="reset"), "/")
    try:
        with pytest.raises(AssertionError, match="SSE stream broke: ConnectionResetError"):
            client.wait_seq(2)
        assert client.closed and client.reset and not client.ended_cleanly
    finally:
        client.close()


@pytest.mark.parametrize(
    "cut",
    [
        HEAD + chunk(EVENT) + b"ff\r\nevent: posi",  # inside a chunk
        # Between two chunks, before the last: what daphne and uvicorn do to open streams on
        # SIGTERM (a FIN between two events).
        HEAD + chunk(EVENT),
    ],
    ids=["inside-a-chunk", "between-chunks"],
)
def test_a_stream_cut_before_its_last_chunk_is_an_error(serve, cut: bytes) -> None:
    client = SSEClient(serve(cut), "/")
    try:
        with pytest.raises(AssertionError, match="SSE stream broke: IncompleteRead"):
            client.wait_seq(2)
        assert not client.reset and not client.ended_cleanly
    finally:
        client.close()


def test_bytes_that_do_not_decode_are_an_error(serve) -> None:
    client = SSEClient(serve(HEAD + chunk(b"data: \xff\xfe\n\n") + b"0\r\n\r\n"), "/")
    try:
        with pytest.raises(AssertionError, match="SSE stream broke: UnicodeDecodeError"):
            client.wait_for(bool)
    finally:
        client.close()


def test_closing_it_ourselves_is_no_error(serve) -> None:
    client = SSEClient(serve(HEAD + chunk(EVENT), end="hold"), "/")
    client.wait_seq(1)
    client.close()
    assert client.error is None
