"""The HTTP app: the output directory, the health endpoint, one-click unsubscribe.

One small ASGI app (Starlette) served by uvicorn, used by `aggregator serve`
(a local preview) and by `aggregator daemon` (production, usually behind
nginx or caddy). It serves files with the content types feed readers expect
(`.atom` as application/atom+xml, `feed.json` as application/feed+json,
`rss.xml` as application/rss+xml) and answers conditional requests
(ETag / Last-Modified -> 304).

Unsubscribe follows RFC 8058: the email's List-Unsubscribe header points at
`/unsubscribe/{token}`; a mail client POSTs `List-Unsubscribe=One-Click` there.
A GET never unsubscribes (link scanners and previews follow GETs): it shows
a confirmation page whose button sends that same POST.

What this module does not do: touch the database. The health report and
the unsubscribe action are callables given to `create_app`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Scope

#: token -> the address it unsubscribed, or None for an unknown token
Unsubscribe = Callable[[str], str | None]
#: () -> the health report; a false "ok" key answers 503
Health = Callable[[], Mapping[str, Any]]

HEALTH_PATH = "/healthz"
UNSUBSCRIBE_PATH = "/unsubscribe/{token}"

#: by file name first, then by suffix; everything else: Python's mimetypes
CONTENT_TYPES_BY_NAME = {
    "feed.json": "application/feed+json",
    "rss.xml": "application/rss+xml",
}
CONTENT_TYPES_BY_SUFFIX = {
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
}


def content_type(name: str) -> str | None:
    """The Content-Type for an output file name, or None to let mimetypes guess."""
    if name in CONTENT_TYPES_BY_NAME:
        return CONTENT_TYPES_BY_NAME[name]
    return CONTENT_TYPES_BY_SUFFIX.get(os.path.splitext(name)[1].lower())


class OutputFiles(StaticFiles):
    """StaticFiles with our content types and a revalidate-always cache policy.

    Feeds and pages change when a build runs, so clients keep them but ask
    again each time (no-cache); ETag and Last-Modified make that a cheap 304.
    """

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=content_type(os.path.basename(str(full_path))),
        )
        response.headers["cache-control"] = "no-cache"
        if self.is_not_modified(response.headers, Request(scope).headers):
            return NotModifiedResponse(response.headers)
        return response


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem;cursor:pointer}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={"cache-control": "no-store"},
    )


def create_app(
    output_dir: Path,
    *,
    health: Health | None = None,
    unsubscribe: Unsubscribe | None = None,
) -> Starlette:
    """The app serving `output_dir`, plus /healthz and /unsubscribe/{token} when given."""
    routes: list[Route | Mount] = []

    if health is not None:
        report = health

        async def healthz(request: Request) -> JSONResponse:
            data = dict(await run_in_threadpool(report))
            status = 200 if data.get("ok", True) else 503
            return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})

        routes.append(Route(HEALTH_PATH, healthz, methods=["GET"]))

    if unsubscribe is not None:
        action = unsubscribe

        async def confirm(request: Request) -> HTMLResponse:
            return _page(
                "Unsubscribe",
                "<p>Stop receiving this newsletter?</p>"
                # No action: the form posts back to this very URL, token included.
                '<form method="post">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                "<button type=submit>Unsubscribe</button></form>",
            )

        async def one_click(request: Request) -> HTMLResponse:
            async with request.form() as form:
                value = form.get("List-Unsubscribe")
            if value != "One-Click":
                return _page(
                    "Bad request",
                    "<p>This address expects the one-click unsubscribe form "
                    "(List-Unsubscribe=One-Click).</p>",
                    400,
                )
            email = await run_in_threadpool(action, request.path_params["token"])
            if email is None:
                return _page(
                    "Link not recognised",
                    "<p>This unsubscribe link is not valid. If you still receive the "
                    "newsletter, use the link in the latest issue.</p>",
                    404,
                )
            return _page(
                "Unsubscribed",
                f"<p>{html.escape(email)} will receive no more issues.</p>",
            )

        routes.append(Route(UNSUBSCRIBE_PATH, confirm, methods=["GET"]))
        routes.append(Route(UNSUBSCRIBE_PATH, one_click, methods=["POST"]))

    # check_dir=False: the daemon starts before its first build made the directory.
    routes.append(Mount("/", OutputFiles(directory=output_dir, html=True, check_dir=False)))
    return Starlette(routes=routes)


def serve(app: Starlette, host: str, port: int) -> None:
    """Run `app` with uvicorn in the foreground until Ctrl-C."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def server(app: Starlette, host: str, port: int) -> Any:
    """A uvicorn Server for `app`, to run in a thread and stop with `should_exit`."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)
