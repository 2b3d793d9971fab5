"""Carved files with their context, for real (Suricata on dev captures and on captures built here):
host, URL, Content-Type, direction, magic and size in the Files tab, in files.csv and on a file
hash's pivot page (names, hosts/URLs, a download); a disguised executable is a finding."""

import csv
import hashlib
import io
from html.parser import HTMLParser

import pyzipper
import pytest
from scapy.utils import wrpcap

from packettotal.demo import _Clock, _tcp_session
from packettotal.ingest import files as carved
from packettotal.ingest.findings import extension
from packettotal.web.downloads import FILE_COLUMNS

from .conftest import PCAPS
from .test_findings import CLIENT, SERVER, http, pe_bytes
from .web import analysed, client

FOUR_FILES = PCAPS / "sv-http-4files.pcap"
EK = PCAPS / "cs-ek_to_cryptowall4.pcapng"
PE_RULE = 'rule pe_file { strings: $mz = "MZ" condition: $mz at 0 and uint32(0x80) == 0x00004550 }\n'


class Table(HTMLParser):
    """The rows of one table of a page (by id): each cell's text and the attributes of its elements."""

    def __init__(self, html: str, table_id: str):
        super().__init__()
        self.id, self.inside, self.rows, self.head = table_id, 0, [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.id:
            self.inside = 1
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.rows[-1].append({"text": "", "tags": [], "tag": tag})
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1]["tags"].append((tag, a))

    def handle_endtag(self, tag):
        if tag == "table" and self.inside:
            self.inside = 0
            for cell in (c for r in self.rows for c in r):
                cell["text"] = cell["text"].strip()
            self.head, self.rows = [c["text"] for c in self.rows[0]], self.rows[1:]

    def handle_data(self, data):
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1]["text"] += data


def pe(variant: int) -> bytes:
    body = bytearray(pe_bytes())
    body[-1] = variant  # another file, the same kind
    return bytes(body)


def disguised_pkts(clock) -> list:
    """Three executables over HTTP: one under image/jpeg, one under application/octet-stream but
    named .jpg, and one honestly served as an executable; a user agent with quotes and a backslash."""
    clock.t = 1_700_003_000
    pkts = _tcp_session(clock, CLIENT, SERVER, 50301, 80, *http("/img/header", pe(1), "image/jpeg"))
    req, resp = http("/pics/holiday.jpg", pe(2), "application/octet-stream", host="photos.example.org")
    pkts += _tcp_session(clock, CLIENT, SERVER, 50302, 80, req.replace(b"User-Agent: t", b'User-Agent: a "q" \\b'),
                         resp)
    pkts += _tcp_session(clock, CLIENT, SERVER, 50303, 80, *http("/setup.exe", pe(3), "application/x-msdownload"))
    return pkts


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    rules = tmp_path_factory.mktemp("yara")
    (rules / "pe.yar").write_text(PE_RULE)
    with client(tmp_path_factory.mktemp("home"), yara_rules_dir=rules) as c:
        yield c


@pytest.fixture(scope="module")
def four(c):
    return analysed(c, FOUR_FILES)


@pytest.fixture(scope="module")
def ek(c):
    return analysed(c, EK)


@pytest.fixture(scope="module")
def disguised(c, tmp_path_factory):
    path = tmp_path_factory.mktemp("built") / "disguised.pcap"
    wrpcap(str(path), disguised_pkts(_Clock()))
    row = analysed(c, path)
    assert row["status"] == "done", row["error"]
    return row


def events(c, cid: str, etype: str) -> list[dict]:
    return [e for e in c.get(f"/api/v1/captures/{cid}/events", params={"type": etype, "limit": 1000}).json()["events"]]


def expected_files(c, cid: str) -> dict[str, dict]:
    """From Suricata's own records: each file's first fileinfo record, and its flow's opener."""
    opener = {e["event"]["flow_id"]: (e["event"]["src_ip"], e["event"]["src_port"]) for e in events(c, cid, "flow")}
    out: dict[str, dict] = {}
    for e in events(c, cid, "fileinfo"):
        rec = e["event"]
        out.setdefault(rec["fileinfo"]["sha256"], {
            "rec": rec, "names": [], "direction": "to_server" if (rec["src_ip"], rec["src_port"]) ==
            opener[rec["flow_id"]] else "to_client"})["names"].append(rec["fileinfo"]["filename"])
    return out


def test_the_api_gives_each_file_its_host_url_content_type_and_direction(c, four, ek):
    for cap in (four, ek):
        want = expected_files(c, cap["id"])
        got = {f["sha256"]: f for f in c.get(f"/api/v1/captures/{cap['id']}/files").json()}
        assert set(got) == set(want) and len(got) >= 3
        for sha, f in got.items():
            rec = want[sha]["rec"]
            assert f["host"] == rec["http"]["hostname"] and f["url"] == rec["http"]["url"]
            assert f["content_type"] == rec["http"].get("http_content_type")
            assert f["direction"] == want[sha]["direction"]
            assert f["names"] == list(dict.fromkeys(want[sha]["names"]))
            assert [s["filename"] for s in f["seen"]][:1] == [rec["fileinfo"]["filename"]]
    four_files = c.get(f"/api/v1/captures/{four['id']}/files").json()
    # sv-http-4files: two files POSTed to the server, and the answers sent back to the client
    assert {f["direction"] for f in four_files} == {"to_server", "to_client"}


def test_the_files_tab_shows_where_each_file_came_from_narrowly(c, ek):
    page = c.get(f"/captures/{ek['id']}/tab/fileinfo").text
    table = Table(page, "carved")
    assert table.head == ["Name", "Where", "Content type", "Type", "Size", "Hashes", "YARA", ""]
    files = {f["sha256"]: f for f in c.get(f"/api/v1/captures/{ek['id']}/files").json()}
    assert len(table.rows) == len(files)
    for row in table.rows:
        sha = row[0]["tags"] and [a for t, a in row[5]["tags"] if t == "a"][0]["title"]
        f = files[sha]
        name, where, ctype, magic, size = (cell["text"] for cell in row[:5])
        # values are whole in the page (cut to two lines by the stylesheet) and, when long, in their title
        assert name.startswith(f["filename"])
        assert f["host"] in where and ("to client" if f["direction"] == "to_client" else "to server") in where
        assert f["url"] in where and ctype.strip() == (f["content_type"] or "")
        assert magic.strip() == f["magic"] and size.split()[0].replace(",", "") == str(f["size"])
        long = [a["title"] for cell in row[:4] for t, a in cell["tags"]
                if t == "span" and "cut" in a.get("class", "").split()]
        assert all(len(v) > 16 for v in long)
        if len(f["url"]) > 16:
            assert f["url"] in long


def test_files_csv_carries_the_context_and_the_yara_matches(c, ek, disguised):
    by_capture = {}
    for cap in (ek, disguised):
        z = c.get(f"/api/v1/captures/{cap['id']}/export", params={"format": "zip"})
        with pyzipper.AESZipFile(io.BytesIO(z.content)) as zf:
            zf.setpassword(b"infected")
            rows = list(csv.DictReader(io.StringIO(zf.read("files/files.csv").decode())))
            assert list(rows[0]) == FILE_COLUMNS
        api = {f["sha256"]: f for f in c.get(f"/api/v1/captures/{cap['id']}/files").json()}
        assert {r["sha256"] for r in rows} == set(api)
        for r in rows:
            f = api[r["sha256"]]
            for k in ("host", "url", "content_type", "direction", "magic", "filename"):
                assert r[k] == (f[k] or ""), k
            assert r["size"] == str(f["size"]) and r["names"] == " | ".join(f["names"])
            rules = [f"{m['namespace']}:{m['rule']}" for m in f["yara"]["matches"]]
            assert r["yara"] == " ".join(rules)
        by_capture[cap["id"]] = rows
    pe_rows = [r for r in by_capture[disguised["id"]] if r["magic"].startswith("PE32")]
    assert len(pe_rows) == 3 and all(r["yara"] == "pe.yar:pe_file" for r in pe_rows)
    assert all(r["yara"] == "" for r in by_capture[ek["id"]])  # no executable among the exploit kit's files


def test_a_file_hash_pivot_page_names_the_file_where_it_came_from_and_downloads_it(c, ek):
    files = c.get(f"/api/v1/captures/{ek['id']}/files").json()
    f = max(files, key=lambda f: len(f["names"]))  # one answer the exploit kit sent under two URLs
    assert len(f["names"]) == 2 and len(f["seen"]) >= 2
    pivot = c.get(f"/api/v1/ioc/{f['sha256']}").json()
    [ctx] = pivot["files"]
    assert ctx["names"] == f["names"] and ctx["magic"] == f["magic"] and ctx["size"] == f["size"]
    assert {(s["host"], s["url"]) for s in ctx["seen"]} == {(s["host"], s["url"]) for s in f["seen"]}
    page = c.get(f"/ioc/{f['sha256']}").text
    seen = Table(page, "file-seen")
    assert seen.head == ["Capture", "Name", "Host", "URL", "Content type", "Direction", "Seen (UTC)"]
    assert [(r[1]["text"], r[2]["text"], r[3]["text"], r[4]["text"]) for r in seen.rows] == \
        [(s["filename"], s["host"], s["url"], s["content_type"]) for s in f["seen"]]
    for n in f["names"]:
        assert f'<code class="name">{n}</code>' in page
    link = page.split('id="file-download" href="', 1)[1].split('"', 1)[0]
    assert link == f"/api/v1/captures/{ek['id']}/files/{f['sha256']}"
    with pyzipper.AESZipFile(io.BytesIO(c.get(link).content)) as zf:
        zf.setpassword(b"infected")
        assert hashlib.sha256(zf.read(f"{f['sha256']}.bin")).hexdigest() == f["sha256"]


def test_an_executable_under_an_image_type_or_an_image_name_is_a_finding_that_shows(c, disguised):
    found = [f for f in disguised["summary"]["findings"] if f["name"] == "disguised_executable"]
    sha = {n: hashlib.sha256(pe(n)).hexdigest() for n in (1, 2, 3)}
    assert {f["key"] for f in found} == {sha[1], sha[2]}  # the honest setup.exe is not one
    why = {f["key"]: f["why"] for f in found}
    assert why[sha[1]].startswith("cdn.example.net/img/header was served as image/jpeg but is PE32 executable")
    assert "photos.example.org/pics/holiday.jpg was named .jpg but is PE32 executable" in why[sha[2]]
    assert disguised["id"] in [g["capture_id"] for g in c.get("/api/v1/search", params={
        "q": "finding:disguised_executable"}).json()["groups"]]
    summary = c.get(f"/captures/{disguised['id']}").text
    assert 'data-finding="disguised_executable"' in summary
    tab = Table(c.get(f"/captures/{disguised['id']}/tab/fileinfo").text, "carved")
    marked = {[a for t, a in r[5]["tags"] if t == "a"][0]["title"]: "disguised executable" in r[3]["text"]
              for r in tab.rows}
    assert marked == {sha[1]: True, sha[2]: True, sha[3]: False}


def test_extensions_and_sightings_are_pure_and_bounded():
    assert [extension(n) for n in ("/a/logo.JPG", "/x.php?f=a.jpg", "C:\\dir\\inv.pdf", "noext", ".hidden", "")] == \
        ["jpg", "php", "pdf", "", "", ""]
    rows: dict[str, dict] = {}
    row = {"sha256": "a" * 64, "truncated": False}
    for i in range(50):
        seen = {"filename": f"n{i % 30}", "host": "h", "url": "/", "content_type": None, "direction": None}
        carved.merge(rows, row, seen)
    assert len(rows["a" * 64]["seen"]) == carved.MAX_SIGHTINGS


def test_context_of_a_file_is_escaped(c, tmp_path):
    clock = _Clock()
    clock.t = 1_700_004_000
    hostile = '/"><script>alert(7)</script>.jpg'
    path = tmp_path / "hostile.pcap"
    wrpcap(str(path), _tcp_session(clock, CLIENT, SERVER, 50400, 80,
                                   *http(hostile, pe(9), 'image/<b>x</b>"', host="evil.example.com")))
    row = analysed(c, path)
    [f] = c.get(f"/api/v1/captures/{row['id']}/files").json()
    assert f["url"] == hostile and f["content_type"] == 'image/<b>x</b>"'
    for page in (c.get(f"/captures/{row['id']}/tab/fileinfo").text, c.get(f"/ioc/{f['sha256']}").text):
        assert "<script>alert(7)" not in page and "<b>x</b>" not in page and "&lt;script&gt;alert(7)" in page


def test_a_reanalysis_records_the_sightings_again_not_twice(c, four):
    before = c.get(f"/api/v1/captures/{four['id']}/files").json()
    assert c.post(f"/api/v1/captures/{four['id']}/reanalyse").status_code == 202
    from .web import wait_done
    assert wait_done(c, four["id"])["status"] == "done"
    after = c.get(f"/api/v1/captures/{four['id']}/files").json()
    def strip(rows):  # Suricata numbers flows anew on each run
        return [{**{k: v for k, v in f.items() if k != "yara"},
                 "seen": [{k: v for k, v in s.items() if k != "flow_id"} for s in f["seen"]]} for f in rows]
    assert strip(after) == strip(before) and all(len(f["seen"]) == 1 for f in after)
