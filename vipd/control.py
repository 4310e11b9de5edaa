"""Control socket: one JSON object per line in, one per line out, over a root-only AF_UNIX socket.

Requests: {"cmd": "status"} | {"cmd": "failback", "instance": N, "force": bool}
          | {"cmd": "drain"/"undrain", "instance": N} | {"cmd": "reload"}
Replies:  {"ok": true, ...} or {"ok": false, "error": "..."}
{"cmd": "events"} turns the connection into a subscription: {"ok": true}, then one event object a
line (see vipd.observe) until either side closes it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from typing import Awaitable, Callable

log = logging.getLogger("vipd.control")

Handler = Callable[[dict], Awaitable[dict] | dict]


class ControlServer:
    def __init__(self, path: str, handler: Handler, observer=None) -> None:
        self.path = path
        self.handler = handler
        self.observer = observer       # vipd.observe.Observer: the source of "events"
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        if os.path.exists(self.path):
            if _socket_alive(self.path):
                raise RuntimeError(f"{self.path}: another vipd is running (socket answers)")
            os.unlink(self.path)
        old = os.umask(0o177)    # root-only: the socket can drain and fail back instances
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                    if req.get("cmd") == "events" and self.observer is not None:
                        await self._stream(reader, writer)
                        return
                    reply = self.handler(req)
                    if asyncio.iscoroutine(reply):
                        reply = await reply
                except (ValueError, KeyError) as e:
                    reply = {"ok": False, "error": str(e)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:   # a bad request must never take the daemon down
            log.exception("control request failed")
        finally:
            writer.close()


    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send events until the client goes away (EOF) or falls too far behind."""
        q = self.observer.subscribe()
        gone = asyncio.ensure_future(reader.read())     # EOF or anything: the client is done
        try:
            writer.write(b'{"ok": true}\n')
            await writer.drain()
            while True:
                nxt = asyncio.ensure_future(q.get())
                await asyncio.wait((nxt, gone), return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    return
                event = nxt.result()
                if event is None:
                    return
                writer.write(json.dumps(event).encode() + b"\n")
                await writer.drain()
        finally:
            self.observer.unsubscribe(q)
            gone.cancel()


def _socket_alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def follow(path: str, req: dict):
    """Blocking client for a subscription: yields each event object until the daemon closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        f = s.makefile("rb")
        first = json.loads(f.readline() or b"{}")
        if not first.get("ok"):
            raise ValueError(first.get("error") or "the daemon closed the connection")
        for line in f:
            yield json.loads(line)
    finally:
        s.close()


def request(path: str, req: dict, timeout: float = 5.0) -> dict:
    """Blocking client used by the CLI."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return json.loads(buf)
