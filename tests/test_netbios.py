"""NetBIOS names (ingest/netbios.py): decoded from the name-service packets of a capture (Suricata 7
has no NBNS parser), stored, shown on the Summary, searchable (`netbios.name:`) and pivoted."""

import shutil
import subprocess

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.netbios import NBNS_ADD_ENTRY, NBNSHeader, NBNSQueryRequest, NBNSQueryResponse
from scapy.utils import wrpcap

from packettotal.ingest import netbios

from .conftest import PCAPS
from .test_pages import assert_inert
from .web import analysed, client, wait_done


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        yield c


def search(site, q: str) -> set[str]:
    r = site.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    return {g["capture_id"] for g in r.json()["groups"]}


def test_first_level_decoding():
    assert netbios.decode_name(b"FHEPFCELEHFCEPFFFACACACACACACABN") == ("WORKGROUP", 0x1D)
    assert netbios.decode_name(b"EOGFHEEJFDCACACACACACACACACACAAA") == ("NetIS", 0x00)
    assert netbios.decode_name(b"FHEPFCELEHFCEPFF") is None and netbios.decode_name(b"Z" * 32) is None
    assert netbios.decode_name(b"DMAMAB" + b"CA" * 13) == ("<\\x0c\\x01", 0x20)  # markup and bytes: as text


@pytest.mark.parametrize("payload", [b"", b"\x00" * 11, b"\x00\x01\x01\x10\xff\xff" + b"\x00" * 6,
                                     b"\x00\x01\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00\x20" + b"A" * 10,
                                     b"\x00\x01\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x20"])
def test_broken_packets_give_no_names_and_never_raise(payload):
    assert netbios.names_of(payload) == []


def nbns_capture(path) -> None:
    eth = Ether(src="02:00:00:00:00:11", dst="ff:ff:ff:ff:ff:ff")  # scapy's SUFFIX is encoded: "BN" is 0x1d
    query = eth / IP(src="10.40.0.7", dst="10.40.0.255") / UDP(sport=137, dport=137) / \
        NBNSHeader(NAME_TRN_ID=7, NM_FLAGS=0x11) / NBNSQueryRequest(QUESTION_NAME="WORKGROUP", SUFFIX=0x424E)
    answer = Ether(src="02:00:00:00:00:12", dst="02:00:00:00:00:11") / IP(src="10.40.0.9", dst="10.40.0.7") / \
        UDP(sport=137, dport=137) / NBNSHeader(NAME_TRN_ID=7, RESPONSE=1, NM_FLAGS=0x58, ANCOUNT=1, QDCOUNT=0) / \
        NBNSQueryResponse(RR_NAME="FILESRV01", SUFFIX=0x4341, ADDR_ENTRY=[NBNS_ADD_ENTRY(NB_ADDRESS="10.40.0.9")])
    query.time, answer.time = 1_700_000_000, 1_700_000_000.2
    wrpcap(str(path), [query, answer])


def test_a_built_query_is_searchable_by_its_decoded_name(site, tmp_path):
    path = tmp_path / "nbns.pcap"
    nbns_capture(path)
    row = analysed(site, path)
    assert row["status"] == "done", row
    cid = row["id"]
    assert cid in search(site, "netbios.name:WORKGROUP") and cid in search(site, "netbios.name:workgroup")
    assert cid in search(site, "netbios.name:FILE*") and cid not in search(site, "netbios.name:OTHER")
    html = site.get(f"/captures/{cid}").text
    assert 'id="netbios-names"' in html and "WORKGROUP&lt;1d&gt;" in html and "FILESRV01&lt;20&gt;" in html
    assert_inert(html, "summary")
    api = {(n["label"], n["kind"], n["ip"]) for n in site.get(f"/api/v1/captures/{cid}/netbios").json()}
    assert api == {("WORKGROUP<1d>", "query", "10.40.0.7"), ("FILESRV01<20>", "answer", "10.40.0.9")}
    pivot = site.get("/api/v1/ioc/WORKGROUP").json()
    assert cid in {c["capture_id"] for c in pivot["captures"]} and pivot["kind"] == "netbios_name"
    assert all("nbns" not in c["found_in"] for c in pivot["captures"])  # no such tab: the Summary shows them


def test_a_reanalysis_decodes_the_names_again(site, tmp_path):
    """Analysed again, the flow index exists: the names come from a pass of their own, not twice."""
    path = tmp_path / "nbns.pcap"
    nbns_capture(path)
    row = analysed(site, path)
    site.post(f"/api/v1/captures/{row['id']}/reanalyse")
    assert wait_done(site, row["id"])["status"] == "done"
    html = site.get(f"/captures/{row['id']}").text
    assert html.count("WORKGROUP&lt;1d&gt;") == 1 and row["id"] in search(site, "netbios.name:WORKGROUP")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark decodes the names independently")
@pytest.mark.parametrize("name", ["sv-smb2-psexec.pcap", "sv-ftp-data-190k.pcap"])
def test_real_captures_show_the_names_tshark_decodes(site, name):
    """The captures of ../shared/pcaps with NBNS traffic: every name Wireshark's dissector reads
    is shown and found."""
    out = subprocess.run(["tshark", "-r", str(PCAPS / name), "-Y", "nbns", "-T", "fields", "-e", "nbns.name"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    expected = {n.strip() for line in out.splitlines() for n in line.split(",") if n.strip()}
    assert expected
    row = analysed(site, PCAPS / name)
    html = site.get(f"/captures/{row['id']}").text
    for label in expected:  # "WPAD<00>"
        shown = label.replace("<", "&lt;").replace(">", "&gt;")
        assert shown in html, (label, name)
        assert row["id"] in search(site, f'netbios.name:"{label.split("<")[0]}"')


@pytest.mark.parametrize("ts", [1.8e13, float("inf"), -1e12])
def test_a_packet_time_no_date_holds_loses_the_time_not_the_capture(ts):
    import dpkt
    packet = IP(src="10.40.0.7", dst="10.40.0.255") / UDP(sport=137, dport=137) / \
        NBNSHeader(NAME_TRN_ID=7, NM_FLAGS=0x11) / NBNSQueryRequest(QUESTION_NAME="WORKGROUP", SUFFIX=0x424E)
    names = netbios.Names()
    names.packet(ts, dpkt.ip.IP(bytes(packet)))
    rows = names.rows()
    assert [(r["name"], r["first_seen"]) for r in rows] == [("WORKGROUP", "")]
    assert [o["value"] for o in netbios.observables("c", rows)] == ["WORKGROUP"]
