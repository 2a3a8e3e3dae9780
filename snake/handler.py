"""Serve some of Django's views on one long-lived thread, outside Django's ASGI handler.

Django's ASGI handler opens a thread-sensitive context per request (a new OS thread), closes
the database connection at the end of each (request_started/request_finished), and hops
between threads at each sync/async switch of the middleware chain: for a move or a state
read that cost several times the work (README, "Speed"). This handler runs the same URLconf,
views and MIDDLEWARE, loaded as a sync chain, on one thread of its own that keeps its
database connection: Django's host check, CSRF check, security headers and error views apply
exactly as on any other request, without the thread per request.

One thread serialises the requests it serves; route to it only short ones (asgi.py).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, cast

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import HttpResponse, HttpResponseBase
from django.urls import set_script_prefix

from snake.guards import refusal


def recover_connections() -> None:
    """Have this thread's database connections checked before a request uses them."""
    # Django's request signals would close every connection after every request; this thread
    # keeps its own for the process's life. So that a connection the database dropped (a
    # restart, an idle timeout) answers no request with a 500, the request's first query
    # checks it first (CONN_HEALTH_CHECKS, snake/settings.py; free on SQLite) and one that saw
    # an error is replaced.
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()
        connection.health_check_done = False  # type: ignore[attr-defined]  # django-stubs lacks it


class ThreadHandler(ASGIHandler):
    """An ASGI app serving Django's views through a sync middleware chain on one thread."""

    def __init__(self) -> None:
        # Not ASGIHandler.__init__: it loads the async chain, whose sync hooks hop threads.
        self.load_middleware(is_async=False)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snake-handler")

    async def __call__(  # type: ignore[override]  # django-stubs: its scope is a plain dict
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self.thread, self.respond, scope, body)
        await self.send_response(response, send)  # type: ignore[arg-type]  # django-stubs: dict messages

    def respond(self, scope: Scope, body: IO[bytes]) -> HttpResponseBase:
        """Answer one request on this handler's thread, as Django's handler would."""
        recover_connections()
        set_script_prefix(get_script_prefix(scope))
        # Not response.close(): it sends request_finished, whose receiver closes the database
        # connection this thread keeps. A body that is not streamed holds nothing to release.
        with body:
            request, error = self.create_request(dict[str, Any](scope), body)
            if request is None:  # Django's 400 for a request it cannot build
                # Refused before any middleware: it adds the headers they would have.
                return refusal.secured(cast(HttpResponse, error))
            return self.get_response(request)
