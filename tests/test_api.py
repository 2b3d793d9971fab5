"""The REST API on a real instance: real uploads, real Suricata, real stores."""

import base64
import csv
import gzip
import io
import re

import orjson
import pytest
import pyzipper

from packettotal import demo
from .captures import pcap_bytes
from .conftest import PCAPS
from .web import DEMO_DOMAIN, analysed, app_routes, client, upload

FOUR_FILES = PCAPS / "sv-http-4files.pcap"
LIMIT = 400_000


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home"), max_upload_bytes=LIMIT) as c:
        yield c


@pytest.fixture(scope="module")
def demo_capture(api, tmp_path_factory):
    path = demo.write(tmp_path_factory.mktemp("demo") / "demo.pcap")
    row = analysed(api, path)
    assert row["status"] == "done", row
    return row


@pytest.fixture(scope="module")
def files_capture(api):
    row = analysed(api, FOUR_FILES)
    assert row["status"] == "done", row
    return row


def test_upload_answers_202_with_status_url_then_done(api):
    r = upload(api, PCAPS / "sv-dns-udp-txt.pcap")
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued" and body["status_url"] == f"/api/v1/captures/{body['id']}"
    assert body["page_url"] == f"/captures/{body['id']}"
    from .web import wait_done
    row = wait_done(api, body["id"])
    assert row["status"] == "done" and row["summary"]["counts"]["dns"] > 0
    assert row["links"]["events"] == f"/api/v1/captures/{body['id']}/events"


def test_known_capture_redirects_303_even_gzipped(api, demo_capture):
    raw = api.get(f"/api/v1/captures/{demo_capture['id']}/download").content
    for data in (raw, gzip.compress(raw)):
        r = upload(api, data=data, name="again.pcap")
        assert r.status_code == 303
        assert r.headers["location"] == f"/api/v1/captures/{demo_capture['id']}"
        assert r.json()["id"] == demo_capture["id"]


@pytest.mark.parametrize("data,status,words", [
    (b"<!doctype html><html><body>hello</body></html>", 415, "HTML document"),
    (b"", 400, "empty"),
    (pcap_bytes(packets=0), 400, "no packets"),
    (gzip.compress(b"just text, not a capture at all " * 10), 415, "not a packet capture"),
])
def test_refused_uploads_say_why(api, data, status, words):
    r = upload(api, data=data, name="bad.pcap")
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == "refused" and words.lower() in body["detail"].lower()


def _work_files(api) -> list:
    work = api.app.state.instance.service.settings.work_dir
    return [p for p in work.glob("*") if p.is_file()]


def test_oversize_upload_is_413_and_leaves_no_file(api):
    big = pcap_bytes(packets=8000)  # ~470 KB, over the 400 KB limit
    assert len(big) > LIMIT
    r = upload(api, data=big, name="big.pcap")
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]
    assert _work_files(api) == []


def test_oversize_upload_without_length_is_cut_while_streaming(api):
    big = pcap_bytes(packets=8000)
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pcap\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()

    def chunks():  # no Content-Length: the server can only count while it reads
        yield head
        for i in range(0, len(big), 16384):
            yield big[i:i + 16384]
        yield f"\r\n--{boundary}--\r\n".encode()

    r = api.post("/api/v1/captures", content=chunks(),
                 headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]
    assert _work_files(api) == []


def test_malformed_multipart_is_400(api):
    r = api.post("/api/v1/captures", content=b"not multipart", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = api.post("/api/v1/captures", files={"other": ("x", b"abc")})
    assert r.status_code == 400 and "part named 'file'" in r.json()["detail"]


def test_get_capture_errors(api):
    assert api.get("/api/v1/captures/" + "ab" * 32).json()["error"] == "not_found"
    assert api.get("/api/v1/captures/" + "ab" * 32).status_code == 404
    assert api.get("/api/v1/captures/not-hex!").status_code == 422


def test_get_capture_by_md5_and_list(api, demo_capture):
    row = api.get(f"/api/v1/captures/{demo_capture['md5']}").json()
    assert row["id"] == demo_capture["id"] and row["summary"]["alerts"] >= 1
    listed = {c["id"] for c in api.get("/api/v1/captures?status=done").json()}
    assert demo_capture["id"] in listed


def test_events_by_type_and_filter(api, demo_capture):
    base = f"/api/v1/captures/{demo_capture['id']}/events"
    dns = api.get(base, params={"type": "dns"}).json()
    assert dns["total"] == demo_capture["summary"]["counts"]["dns"]
    assert all(e["event"]["event_type"] == "dns" for e in dns["events"])
    hits = api.get(base, params={"q": f"http.hostname:{DEMO_DOMAIN}"}).json()
    assert hits["total"] >= 1 and all(e["event"].get("http", {}).get("hostname") == DEMO_DOMAIN
                                      for e in hits["events"])
    bad = api.get(base, params={"q": "dns.rrname:(a OR"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_query" and bad.json()["position"] is not None


def test_events_cursor_walks_every_event_once(api, files_capture):
    base = f"/api/v1/captures/{files_capture['id']}/events"
    seen, cursor = [], None
    while True:
        page = api.get(base, params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["seq"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == page["total"]
    assert page["total"] == files_capture["summary"]["indexed"] + 1  # + Suricata's stats record


def test_events_sorted_and_paged_by_offset_cursor(api, files_capture):
    base = f"/api/v1/captures/{files_capture['id']}/events"
    first = api.get(base, params={"type": "flow", "sort": "flow.bytes_toclient", "order": "desc", "limit": 2}).json()
    sizes = [e["event"]["flow"]["bytes_toclient"] for e in first["events"]]
    assert sizes == sorted(sizes, reverse=True)
    if first["next_cursor"]:
        nxt = api.get(base, params={"type": "flow", "sort": "flow.bytes_toclient", "order": "desc", "limit": 2,
                                    "cursor": first["next_cursor"]}).json()
        assert all(e["event"]["flow"]["bytes_toclient"] <= sizes[-1] for e in nxt["events"])
    assert api.get(base, params={"sort": "http.url"}).status_code == 400
    forged = base64.urlsafe_b64encode(b"x:1").decode()
    assert api.get(base, params={"cursor": forged}).status_code == 400


def test_files_list_and_encrypted_download(api, files_capture):
    cid = files_capture["id"]
    rows = api.get(f"/api/v1/captures/{cid}/files").json()
    stored = [f for f in rows if f["stored"]]
    assert stored, rows
    f = stored[0]
    r = api.get(f["download_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert f["sha256"] in r.headers["content-disposition"]
    with pyzipper.AESZipFile(io.BytesIO(r.content)) as z:
        z.setpassword(b"infected")
        data = z.read(f"{f['sha256']}.bin")
        manifest = list(csv.DictReader(io.StringIO(z.read("files.csv").decode())))
    import hashlib
    assert hashlib.sha256(data).hexdigest() == f["sha256"]
    assert manifest[0]["sha256"] == f["sha256"]
    with pyzipper.AESZipFile(io.BytesIO(r.content)) as z, pytest.raises(RuntimeError):
        z.read(f"{f['sha256']}.bin")  # no password: nothing readable
    assert api.get(f"/api/v1/captures/{cid}/files/{'0' * 64}").status_code == 404


def test_download_is_the_original_capture(api, files_capture):
    r = api.get(f"/api/v1/captures/{files_capture['id']}/download")
    assert r.status_code == 200 and r.content == FOUR_FILES.read_bytes()
    assert r.headers["content-disposition"] == f'attachment; filename="{files_capture["id"]}.pcap"'


def test_export_eve_csv_zip(api, files_capture):
    cid = files_capture["id"]
    eve = api.get(f"/api/v1/captures/{cid}/export", params={"format": "eve"})
    lines = [orjson.loads(x) for x in eve.content.splitlines()]
    assert len(lines) == files_capture["summary"]["indexed"] + 1
    assert {r["event_type"] for r in lines} >= {"http", "fileinfo", "flow"}
    r = api.get(f"/api/v1/captures/{cid}/export", params={"format": "csv", "type": "http"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == files_capture["summary"]["counts"]["http"] and "http.hostname" in rows[0]
    missing = api.get(f"/api/v1/captures/{cid}/export", params={"format": "csv"})
    assert missing.status_code == 400 and "http" in missing.json()["detail"]
    z = api.get(f"/api/v1/captures/{cid}/export", params={"format": "zip"})
    with pyzipper.AESZipFile(io.BytesIO(z.content)) as zf:
        zf.setpassword(b"infected")
        names = set(zf.namelist())
        assert zf.read(f"{cid}.pcap") == FOUR_FILES.read_bytes()
        assert len(zf.read("eve.json").splitlines()) == len(lines)
        assert orjson.loads(zf.read("summary.json"))["id"] == cid
    assert {"csv/http.csv", "csv/flow.csv", "files/files.csv"} <= names
    assert any(n.startswith("files/") and n.endswith(".bin") for n in names)


def test_ioc_fields_and_search(api, demo_capture):
    ioc = api.get(f"/api/v1/ioc/{DEMO_DOMAIN.upper()}").json()
    assert ioc["kind"] == "domain" and ioc["matched"] == [DEMO_DOMAIN]
    mine = next(c for c in ioc["captures"] if c["capture_id"] == demo_capture["id"])
    assert {"dns", "http"} <= set(mine["found_in"]) and mine["first_seen"] <= mine["last_seen"]
    assert {"dns.rrname", "http.hostname"} <= {f["field"] for f in mine["fields"]}
    url = api.get("/api/v1/ioc/http://downloads.example.com/tools/eicar.com").json()
    assert url["kind"] == "url" and url["total_captures"] >= 1
    fields = {f["name"] for f in api.get("/api/v1/fields").json()}
    assert {"dns.rrname", "src_ip", "ip", "capture", "tag", "family", "campaign"} <= fields
    found = api.get("/api/v1/search", params={"q": "alert.signature_id:9100001"}).json()
    assert demo_capture["id"] in {g["capture_id"] for g in found["groups"]}
    assert api.get("/api/v1/search", params={"q": "a AND (b"}).status_code == 400


def test_every_response_carries_security_headers(api, demo_capture):
    for path in ("/", f"/captures/{demo_capture['id']}", "/api/v1/fields", "/api/v1/captures/" + "0" * 64):
        h = api.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"


def test_openapi_documents_every_endpoint(api):
    spec = api.get("/api/v1/openapi.json").json()
    routes = {(re.sub(r":\w+}", "}", r.path), m.lower()) for r in app_routes(api.app) if r.path.startswith("/api/v1/")
              and r.path != "/api/v1/openapi.json" for m in getattr(r, "methods", ()) if m != "HEAD"}
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert routes and routes == documented
    for path, method in routes:
        op = spec["paths"][path][method]
        assert op.get("summary") and op.get("responses"), (path, method)
    assert "multipart/form-data" in spec["paths"]["/api/v1/captures"]["post"]["requestBody"]["content"]


def _downloads_left(api) -> list:
    folder = api.app.state.instance.service.settings.work_dir / "downloads"
    return list(folder.glob("*")) if folder.exists() else []


def test_built_downloads_leave_nothing_on_disk(api, files_capture):
    cid = files_capture["id"]
    for headers in ({"range": "bytes=99999999-"}, {"range": "nonsense"}, {}):
        r = api.get(f"/api/v1/captures/{cid}/export", params={"format": "zip"}, headers=headers)
        assert r.status_code == 200 and r.content[:2] == b"PK"
    assert _downloads_left(api) == []


def test_a_server_error_is_json_with_headers_and_leaves_no_file(api, files_capture, tmp_path):
    service = api.app.state.instance.service
    blob = service.capture_path(files_capture["id"])
    aside = tmp_path / "aside"
    blob.rename(aside)
    try:
        from fastapi.testclient import TestClient
        quiet = TestClient(api.app, raise_server_exceptions=False)  # server errors as responses
        r = quiet.get(f"/api/v1/captures/{files_capture['id']}/export", params={"format": "zip"})
        assert r.status_code == 500 and r.json()["error"] == "internal"
        assert "script-src 'self'" in r.headers["content-security-policy"]
    finally:
        aside.rename(blob)
    assert _downloads_left(api) == []


def test_csv_export_honours_the_tab_filter(api, files_capture):
    cid = files_capture["id"]
    r = api.get(f"/api/v1/captures/{cid}/export", params={"format": "csv", "type": "fileinfo",
                                                          "q": "fileinfo.filename:BEemDNNWAKeCH"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["fileinfo.filename"] for x in rows] == ["BEemDNNWAKeCH"]


def test_same_new_capture_uploaded_at_once_is_analysed_once(api, tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    data = pcap_bytes(packets=7)
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: upload(api, data=data, name="same.pcap").status_code, range(6)))
    assert codes.count(202) == 1 and set(codes) <= {202, 303}, codes


def test_unknown_host_header_is_refused(api):
    r = api.get("/api/v1/fields", headers={"host": "rebound.evil.example"})
    assert r.status_code == 400
