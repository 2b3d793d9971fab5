"""Finding captures: the capture list's filters and paging, on the API and the /captures page,
and `name:` in searches, over real captures analysed by real Suricata (a threat rule of the
test's own makes the DNS captures alert)."""

import re

import pytest

from .conftest import PCAPS
from .test_pages import assert_inert
from .web import analysed, client

RULES = 'alert dns any any -> any any (msg:"TEST any DNS"; classtype:bad-unknown; sid:3100001; rev:1;)\n'
ALERTING = ("sv-dns-udp-txt.pcap", "sv-dns-nxdomain-soa.pcap")
QUIET = ("sv-icmp-echo.pcap", "sv-http-4files.pcap")
HOSTILE = "<b onmouseover=alert(1)>%_x.pcap"  # no slash (a name is cut at its last one), no quote


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules")
    (rules / "test.rules").write_text(RULES)
    with client(tmp_path_factory.mktemp("home"), user_rules_dir=rules) as c:
        rows = {}
        for name in (*QUIET, *ALERTING):
            rows[name] = analysed(c, PCAPS / name)
        rows[HOSTILE] = analysed(c, PCAPS / "sv-modbus.pcap", name=HOSTILE)
        # stored, never analysed: queued (the service alone, not the instance's workers)
        sub = c.app.state.instance.service.submit(PCAPS / "sv-icmp-echo.pcap", "x")  # known: done
        assert sub.capture["status"] == "done"
        queued = c.app.state.instance.service.submit(PCAPS / "dpkt-truncated_dns_2.pcap", "waiting.pcap")
        rows["waiting.pcap"] = c.get(f"/api/v1/captures/{queued.capture['id']}").json()
        for name, kind, value in (("sv-icmp-echo.pcap", "family", "Ping Family"),
                                  ("sv-dns-udp-txt.pcap", "tag", "ping family")):
            r = c.post(f"/api/v1/captures/{rows[name]['id']}/labels", json={"kind": kind, "value": value})
            assert r.status_code in (200, 201), r.text
        yield c, rows


def listed(c, **params) -> tuple[int, list[str]]:
    r = c.get("/api/v1/captures", params=params)
    assert r.status_code == 200, r.text
    return int(r.headers["x-total-count"]), [x["name"] for x in r.json()]


def test_the_rows_are_as_expected(site):
    c, rows = site
    assert {r["status"] for n, r in rows.items() if n != "waiting.pcap"} == {"done"}
    assert rows["waiting.pcap"]["status"] == "queued"
    assert all(rows[n]["summary"]["alerts"] > 0 for n in ALERTING)
    assert all(rows[n]["summary"]["alerts"] == 0 for n in (*QUIET, HOSTILE))


def test_paging_newest_first_with_a_total(site):
    c, rows = site
    total, every = listed(c, limit=100)
    assert total == len(rows) == len(every) == 6
    assert every == sorted(rows, key=lambda n: rows[n]["submitted_at"], reverse=True)
    pages = [listed(c, limit=4, offset=o) for o in (0, 4, 8)]
    assert [t for t, _ in pages] == [6, 6, 6]
    assert [len(p) for _, p in pages] == [4, 2, 0]
    assert pages[0][1] + pages[1][1] == every


def test_each_filter(site):
    c, rows = site
    assert listed(c, q="ICMP") == (1, ["sv-icmp-echo.pcap"])
    assert listed(c, q="sv-dns")[0] == 2
    assert listed(c, q=")>%_x")[1] == [HOSTILE]  # LIKE's own characters are literal
    assert listed(c, q="nothing-like-it") == (0, [])
    assert listed(c, status="queued") == (1, ["waiting.pcap"])
    assert listed(c, status="done")[0] == 5
    assert sorted(listed(c, has_alerts="true")[1]) == sorted(ALERTING)
    assert sorted(listed(c, has_alerts="false")[1]) == sorted([*QUIET, HOSTILE, "waiting.pcap"])
    assert sorted(listed(c, label="ping family")[1]) == sorted(["sv-icmp-echo.pcap", "sv-dns-udp-txt.pcap"])
    assert listed(c, label="family:PING FAMILY") == (1, ["sv-icmp-echo.pcap"])
    assert listed(c, label="tag:ping family")[0] == 2  # tag: any kind, as in searches
    assert listed(c, label="campaign:ping family") == (0, [])
    # dates: whole days, and times (the end excluded)
    day = rows["sv-icmp-echo.pcap"]["submitted_at"][:10]
    assert listed(c, submitted_from=day, submitted_to=day)[0] == 6
    assert listed(c, submitted_to="2000-01-01")[0] == 0
    pivot = rows[ALERTING[0]]["submitted_at"]
    later = [n for n in rows if rows[n]["submitted_at"] >= pivot]
    assert sorted(listed(c, submitted_from=pivot)[1]) == sorted(later)
    assert sorted(listed(c, submitted_to=pivot)[1]) == sorted(set(rows) - set(later))
    assert listed(c, analysed_from=day)[0] == 5  # the queued capture was never analysed
    done_at = rows[ALERTING[1]]["finished_at"]
    assert listed(c, analysed_to=done_at, analysed_from=rows[ALERTING[0]]["finished_at"])[1] == [ALERTING[0]]
    # together: AND
    assert listed(c, has_alerts="true", label="ping family", q="txt") == (1, ["sv-dns-udp-txt.pcap"])


@pytest.mark.parametrize("params", [{"submitted_from": "yesterday"}, {"analysed_to": "2026-13-01"},
                                    {"status": "lost"}, {"has_alerts": "perhaps"}, {"q": "x" * 201}])
def test_a_bad_filter_is_refused_with_the_reason(site, params):
    c, _ = site
    r = c.get("/api/v1/captures", params=params)
    assert r.status_code in (400, 422) and r.json()["detail"]
    page = c.get("/captures", params=params)
    assert page.status_code in (400, 422)


def test_name_is_a_capture_field_in_searches(site):
    c, rows = site

    def found(q: str) -> list[str]:
        r = c.get("/api/v1/search", params={"q": q, "limit": 100})
        assert r.status_code == 200, r.text
        return sorted(g["name"] for g in r.json()["groups"])

    assert found("name:SV-ICMP-ECHO.PCAP") == ["sv-icmp-echo.pcap"]  # exact, case-insensitive
    assert found("name:sv-dns*") == sorted(ALERTING)
    assert found("name:sv-dns* AND NOT name:*txt*") == ["sv-dns-nxdomain-soa.pcap"]
    assert found("name:sv-* AND event_type:fileinfo") == ["sv-http-4files.pcap"]
    assert found('name:"<b onmouseover=alert(1)>%_x.pcap"') == [HOSTILE]
    assert found("name:*%_x*") == [HOSTILE]  # LIKE's own characters are literal
    assert found("name:sv-icmp") == []  # a name, not a word of it: wildcards for that
    fields = {f["name"]: f for f in c.get("/api/v1/fields").json()}
    assert fields["name"]["example"] == "name:*.pcapng"


def _names_on(html: str) -> list[str]:
    body = html[html.index('id="captures"'):html.index("</table>", html.index('id="captures"'))]
    return re.findall(r'<td><a href="/captures/[0-9a-f]{64}">([^<]*)</a></td>', body)


def test_the_page_filters_and_pages(site):
    c, rows = site
    first = c.get("/captures", params={"limit": 25})
    assert first.status_code == 200
    assert "6 captures; 1–6 shown" in first.text and 'rel="next"' not in first.text
    assert len(_names_on(first.text)) == 6
    assert_inert(first.text, "/captures")
    assert "&lt;b onmouseover=alert(1)&gt;%_x.pcap" in first.text  # escaped, shown literally

    r = c.get("/captures", params={"has_alerts": "true", "limit": 25, "status": "", "q": ""})  # blank: no filter
    assert sorted(_names_on(r.text)) == sorted(ALERTING) and "2 captures" in r.text
    assert '<option value="true" selected>' in r.text
    r = c.get("/captures", params={"label": "family:ping family"})
    assert _names_on(r.text) == ["sv-icmp-echo.pcap"] and "family: Ping Family" in r.text
    r = c.get("/captures", params={"q": "pcap", "limit": 1000})
    assert r.status_code == 422  # page sizes are bounded
    # paging: every page's next link leads on, the filters kept
    seen, url, pages = [], "/captures?q=pcap&limit=2&offset=0", 0
    while url:
        html = c.get(url).text
        seen += _names_on(html)
        pages += 1
        nxt = re.search(r'<a href="(/captures\?[^"]+)" rel="next">', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert "q=pcap" in (url or "q=pcap")
        if pages > 1:
            assert 'rel="prev"' in html
    assert pages == 3 and len(seen) == 6 == len(set(seen))
    assert "page 3 of 3" in html
    r = c.get("/captures", params={"submitted_to": "not a day"})
    assert r.status_code == 400 and "submitted_to is a date" in r.text


def test_the_home_links_the_list(site):
    c, _ = site
    home = c.get("/")
    assert 'href="/captures"' in home.text and 'id="all-captures"' in home.text


def test_a_database_from_before_the_alert_counts_gets_them(tmp_path):
    """capture_stats is filled once from the summaries of a database made before it."""
    import sqlalchemy as sa

    from packettotal import listing
    from packettotal.service import PacketTotal

    from .conftest import analyse, settings
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "test.rules").write_text(RULES)
    s = settings(tmp_path / "home", user_rules_dir=rules)
    pt = PacketTotal(s)
    try:
        loud, quiet = (analyse(pt, PCAPS / n)["id"] for n in (ALERTING[0], QUIET[0]))
    finally:
        pt.close()
    engine = sa.create_engine(s.database.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:  # as a database of the version before (and before the migrations)
        conn.execute(sa.text("DROP TABLE capture_stats"))
        conn.execute(sa.text("DROP TABLE alembic_version"))
    engine.dispose()
    pt = PacketTotal(s)
    try:
        assert [r["id"] for r in pt.find_captures(listing.make(has_alerts=True)).rows] == [loud]
        assert [r["id"] for r in pt.find_captures(listing.make(has_alerts=False)).rows] == [quiet]
    finally:
        pt.close()
