"""Running the app under uvicorn. uvicorn bounds the wait between requests (timeout_keep_alive)
but not the request head: a client dripping header bytes, or connecting and sending nothing,
would hold its connection forever. The protocol here gives the head a deadline; the body's
bounds are the guard's (guard.py), which can still answer them."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Settings

log = logging.getLogger("packettotal.web")


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete within
    `header_timeout` seconds of its first byte (or of the connection, for the first request)."""

    def __init__(self, *args, header_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    # narrower than asyncio.Protocol's BaseTransport, as in uvicorn's own H11Protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:  # a next request begins
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("%s: no complete request head after %s s: connection closed",
                     f"{self.client[0]}:{self.client[1]}" if self.client else "client", self.header_timeout)
            self.transport.close()


def config(app: FastAPI, settings: Settings, host: str, port: int, **kwargs) -> uvicorn.Config:
    # uvicorn calls `http` as a factory, so a partial works, though its hint names a class
    protocol = partial(HeadTimeoutProtocol, header_timeout=settings.header_timeout)
    proxies = settings.trusted_proxies.strip()  # uvicorn's own X-Forwarded-* handling, for those only
    return uvicorn.Config(app, host=host, port=port, proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                          server_header=False, http=protocol, **kwargs)  # type: ignore[arg-type]
