"""Behind a reverse proxy (`trusted_proxies`): the client's address and scheme come from the
proxy's X-Forwarded-For / X-Forwarded-Proto, so login limits and the audit log count clients, not
the proxy, and session cookies are Secure when the proxy took TLS. From anyone else, the headers
are ignored (a client cannot pick its address). A real uvicorn server, configured as `serve` does."""

from __future__ import annotations

import httpx
import pytest

from packettotal.web.app import create_app

from .conftest import settings
from .web import serve_app

PASSWORD = "correct horse battery"
FORWARDED = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}


def login(url: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/login", data={"name": "ann", "password": password, "next": "/"},
                      headers=FORWARDED, timeout=30)


@pytest.mark.parametrize("trusted, address, secure", [("127.0.0.1", "203.0.113.7", True),
                                                       ("", "127.0.0.1", False),
                                                       ("192.0.2.0/24", "127.0.0.1", False)])
def test_forwarded_headers_count_only_from_a_trusted_proxy(tmp_path, trusted, address, secure):
    s = settings(tmp_path / "home", mode="team", trusted_proxies=trusted)
    app = create_app(s, seed_demo=False)
    accounts = app.state.instance.service.accounts
    accounts.add_user("ann", "analyst", PASSWORD)
    with serve_app(app, s) as url:
        assert login(url, "wrong password").status_code == 401
        ok = login(url, PASSWORD)
    assert ok.status_code == 303
    assert ("; secure" in ok.headers["set-cookie"].lower()) is secure
    failed = next(a for a in accounts.audit() if a["event"] == "login_failed")
    assert failed["address"] == address
