"""Django's test Client, its requests served in process by snake.asgi.application.

The Client builds each request as always (data, content_type, headers, HTTP_* extras, cookies)
and checks it as always (exceptions, .json(), cookies kept); only the handler differs: the
request goes to the ASGI application as a server would send it, so it passes the routing, the
body cap and snake.handler's thread, the code that serves a move. Django's test handler skips
the CSRF check unless told not to; this one never can, so without enforce_csrf_checks it does
what a browser does: GET a page for the csrftoken cookie and send the token back.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpResponse
from django.test import Client

from snake.handler import ThreadHandler

CHUNK = 64 * 1024  # a server hands a long body on in pieces, as it arrives
SAFE = ("GET", "HEAD", "OPTIONS", "TRACE")
# Neither the server nor Django sends a body with these (ClientHandler strips it too).
NO_BODY = (204, 304)


def thread_handler() -> ThreadHandler:
    """The ThreadHandler that snake.asgi serves moves, /state and the GRIP holds with."""
    from snake.asgi import handler

    return handler


def on_handler_thread(work: Any) -> Any:
    """Run `work()` on the handler's thread, between the requests it serves; return its result."""
    return thread_handler().thread.submit(work).result()


def _close_connections() -> None:
    for each in connections.all(initialized_only=True):
        # Not each.close(): SQLite's ignores closing an in-memory database (the test one).
        # The test thread's connection keeps that database alive.
        BaseDatabaseWrapper.close(each)


def reset_handler() -> None:
    """Close the handler thread's connections, which pytest-django never sees."""
    on_handler_thread(_close_connections)


def scope_of(environ: dict[str, Any]) -> dict[str, Any]:
    """The ASGI scope a server would build for the request that `environ` describes."""
    path = environ["PATH_INFO"].encode("iso-8859-1")  # the test client's raw bytes
    headers = [
        (key[5:].lower().replace("_", "-").encode(), str(value).encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_") and value != ""
    ]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append((key.lower().replace("_", "-").encode(), environ[key].encode()))
    if "HTTP_HOST" not in environ:  # every HTTP/1.1 client sends one
        port = environ["SERVER_PORT"]
        default = "443" if environ["wsgi.url_scheme"] == "https" else "80"
        host = environ["SERVER_NAME"] + ("" if port == default else f":{port}")
        headers.append((b"host", host.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": environ["REQUEST_METHOD"].upper(),
        "scheme": environ["wsgi.url_scheme"],
        "path": path.decode("utf-8", "replace"),
        "raw_path": quote(path).encode(),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": environ.get("SCRIPT_NAME", ""),
        "headers": headers,
        "client": (environ["REMOTE_ADDR"], 50000),
        "server": (environ["SERVER_NAME"], int(environ["SERVER_PORT"])),
    }


async def serve(scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """Run one request through the application; return the messages it sent."""
    from snake.asgi import application  # set up Django on first use, as pytest-django has

    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    answered = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        # The client stays connected until its answer is whole (Django listens for this).
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    await application(scope, receive, send)
    return sent


def response_of(sent: list[dict[str, Any]], method: str) -> HttpResponse:
    """Rebuild the answer the application sent as a response the test Client can annotate."""
    start, *bodies = sent
    assert start["type"] == "http.response.start", sent
    assert bodies and not bodies[-1].get("more_body", False), "the response never ended"
    content = b"".join(message.get("body", b"") for message in bodies)
    if method == "HEAD" or start["status"] in NO_BODY:
        content = b""  # as uvicorn and daphne send it (and Django's test handler strips it)
    response = HttpResponse(content, status=start["status"])
    del response["Content-Type"]
    for raw_name, raw_value in start.get("headers", []):
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        elif name in response.headers:
            response.headers[name] += f", {value}"
        else:
            response.headers[name] = value
    return response


class AsgiHandler:
    """The test Client's handler, answering through the ASGI application."""

    def __init__(self, client: AsgiClient, enforce_csrf_checks: bool) -> None:
        self.client = client
        self.enforce_csrf_checks = enforce_csrf_checks

    def __call__(self, environ: dict[str, Any]) -> HttpResponse:
        # Else the handler's thread waits on the test's open transaction, or reads around it.
        assert not connection.in_atomic_block, "serving through ASGI needs transaction=True"
        if not self.enforce_csrf_checks and environ["REQUEST_METHOD"] not in SAFE:
            self.pass_csrf(environ)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        response = response_of(
            asyncio.run(serve(scope_of(environ), body)), environ["REQUEST_METHOD"]
        )
        response.wsgi_request = None  # the request was built on the handler's side
        return response

    def pass_csrf(self, environ: dict[str, Any]) -> None:
        """Send the csrftoken cookie, its header and the Origin, as a browser's page does."""
        if "csrftoken" not in self.client.cookies:
            self.client.get("/")  # Django's page sets the cookie
        assert "csrftoken" in self.client.cookies, "GET / set no csrftoken cookie"
        environ["HTTP_COOKIE"] = "; ".join(
            sorted(f"{m.key}={m.coded_value}" for m in self.client.cookies.values())
        )
        # A test's own header is kept.
        environ.setdefault("HTTP_X_CSRFTOKEN", self.client.cookies["csrftoken"].value)
        host = dict(scope_of(environ)["headers"])[b"host"].decode("latin-1")
        environ.setdefault("HTTP_ORIGIN", f"{environ['wsgi.url_scheme']}://{host}")


class AsgiClient(Client):
    """Django's test Client whose requests are served by snake.asgi.application."""

    def __init__(self, enforce_csrf_checks: bool = False, *args: Any, **kwargs: Any) -> None:
        super().__init__(enforce_csrf_checks, *args, **kwargs)
        self.handler = AsgiHandler(self, enforce_csrf_checks)
