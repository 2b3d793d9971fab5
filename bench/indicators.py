"""Indicators in the search box: what telling them from queries costs, and a lone indicator's
answer (its pivot) against the Lucene query a person would otherwise have to write.

Side by side, median of --runs, on a fresh home holding a few real dev captures:
  classify     query/indicators.classify (with the public suffix list) per typed text
  parse        query/lucene.parse of the same texts (what every search does anyway)
  pivot        service.search(<a carved file's sha1>): the pivot's captures
  lucene       service.search("hash:<sha1>"): the same captures through the event index
  suggest      the unknown-field check of a query that found nothing (difflib over the known names)
  bulk split   query/indicators.split_bulk + refang of 1,000 pasted values, against service.bulk_ioc of them
Usage: python bench/indicators.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from packettotal import config  # noqa: E402
from packettotal.query import indicators, lucene, suggest  # noqa: E402
from packettotal.service import PacketTotal  # noqa: E402

PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()
CAPTURES = ("sv-http-4files.pcap", "dpkt-http.pcap", "cs-ek_to_cryptowall4.pcapng", "cs-cryptowall4_c2.pcapng",
            "cs-http_espn.pcapng", "cs-ratinfected.pcapng")
TEXTS = ("dns.rrname:*.evil.com AND src_ip:10.0.0.0/8", "event_type:http", "tag:emotet AND domain:*.com",
         "www.ethereal.com", "hxxp://evil[.]com/a/b?c=d", "1.2.3.4", "2001:db8::1", "invoice.pdf",
         "3395856ce81f2b7382dee72602f798b642f14140", "t13d1516h2_8daaf6152771_b186095e22b6",
         "flow.bytes_toserver:[100000 TO *] AND NOT dest_port:443", "user[at]example[dot]com")


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    suffixes = indicators.public_suffixes()
    print(f"public suffix list: {len(suffixes or ())} top-level domains")

    per = args.runs * 50
    c = median_ms(lambda: [indicators.classify(t, suffixes) for t in TEXTS], per) / len(TEXTS)
    p = median_ms(lambda: [lucene.parse(t) for t in TEXTS if indicators.classify(t, suffixes) is None], per)
    p /= sum(1 for t in TEXTS if indicators.classify(t, suffixes) is None)
    print(f"classify {c * 1000:8.1f} us/text   parse {p * 1000:8.1f} us/query   classify/parse {c / p:.3f}")

    with tempfile.TemporaryDirectory() as home:
        pt = PacketTotal(config.load(env={}, home=Path(home), engines=1, ndpi="off"))
        try:
            ids = {}
            for name in CAPTURES:
                sub = pt.submit(PCAPS / name, name)
                ids[name] = pt.analyse(sub.capture["id"])["id"]
            sha1 = next(f["sha1"] for f in pt.capture_files(ids["sv-http-4files.pcap"]) if f["sha1"])
            a, b = pt.search(sha1), pt.search(f"hash:{sha1}")
            assert [g["capture_id"] for g in a.groups] == [g["capture_id"] for g in b.groups], (a, b)
            pv = median_ms(lambda: pt.search(sha1), args.runs)
            lu = median_ms(lambda: pt.search(f"hash:{sha1}"), args.runs)
            print(f"bare sha1: pivot {pv:7.2f} ms   hash:<sha1> {lu:7.2f} ms   pivot/lucene {pv / lu:.2f}")

            node = pt.parse("dns.rrnam:www.example.com")
            sg = median_ms(lambda: suggest.first_unknown(node), args.runs)
            empty = median_ms(lambda: pt._search(node, 50, 0, "hits"), args.runs)
            print(f"unknown field: check {sg:7.2f} ms   empty search {empty:7.2f} ms   check/search {sg / empty:.2f}")

            values = [f"10.{i // 250}.{i % 250}[.]1" if i % 3 else f"host{i}[.]example[.]com" for i in range(1000)]
            text = ";\n".join(values)
            sp = median_ms(lambda: indicators.split_bulk(text, 1000), args.runs)
            bk = median_ms(lambda: pt.bulk_ioc(indicators.split_bulk(text, 1000)), args.runs)
            print(f"bulk 1,000: split+refang {sp:7.2f} ms   whole bulk {bk:7.2f} ms   share {sp / bk:.3f}")
        finally:
            pt.close()


if __name__ == "__main__":
    main()
