"""Solara serving the chat page (readingroom.ui.solara_page) on the
loopback, behind the room's door (readingroom.ui.gate):

    READINGROOM_UPSTREAM_TOKEN=... python -m readingroom.ui.solara_server --port 8867

Every request, page, asset or websocket, must carry the token only the
door sends (`Authorization: token ...`), so nobody on the machine walks
around the door to 127.0.0.1:port. The token comes in the environment,
which only this user can read, not on the command line, which every user
can.

Offline by construction: solara's telemetry is off, and its browser code
comes from the solara-assets package; a file not there is a 404 here,
never fetched from a CDN.
"""
from __future__ import annotations

import argparse
import hmac
import os
from pathlib import Path

UPSTREAM_TOKEN_VARIABLE = "READINGROOM_UPSTREAM_TOKEN"
CDN_PATH = "/_solara/cdn/"
KERNEL_KEEP = "15m"  # a session whose page is gone gives its memory back after this (as Voila's culling)

SOLARA_SETTINGS = {
    "SOLARA_APP": "readingroom.ui.solara_page",
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false",
    "SOLARA_MODE": "production",
    "SOLARA_KERNEL_CULL_TIMEOUT": KERNEL_KEEP,
    "SOLARA_THEME_LOADER": "plain",
}


class DoorOnly:
    """ASGI middleware: refuses what did not come through the door, and
    CDN files solara-assets does not hold (see the module notes)."""

    def __init__(self, app, token: str, cdn_folder: Path):
        self.app, self.expected, self.cdn_folder = app, f"token {token}".encode(), cdn_folder.resolve()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            return await self._refuse(scope, receive, send, 403, b"only through the room's door")
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(CDN_PATH) and not self._held(path[len(CDN_PATH):]):
            return await self._refuse(scope, receive, send, 404, b"not here (and never fetched from a CDN)")
        await self.app(scope, receive, send)

    def _held(self, relative: str) -> bool:
        target = (self.cdn_folder / relative).resolve()
        return target.is_relative_to(self.cdn_folder) and (target.is_file() or (target / "__main.js").is_file())

    @staticmethod
    async def _refuse(scope, receive, send, status: int, text: bytes) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": text})


def application(token: str):
    """Solara's starlette app behind DoorOnly. Importing it loads the page
    (the shared index) when the server starts."""
    os.environ.update(SOLARA_SETTINGS)
    import solara.server.settings
    import solara.server.starlette

    return DoorOnly(solara.server.starlette.app, token, solara.server.settings.assets.proxy_cache_dir)


def main(argv=None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    token = os.environ.pop(UPSTREAM_TOKEN_VARIABLE, "")
    if len(token) < 16:
        raise SystemExit(f"${UPSTREAM_TOKEN_VARIABLE} must hold the door's token (16 characters or more)")
    uvicorn.run(application(token), host="127.0.0.1", port=args.port, log_level="warning", ws="websockets-sansio",
                lifespan="on", ws_max_size=64 << 20)


if __name__ == "__main__":
    main()
