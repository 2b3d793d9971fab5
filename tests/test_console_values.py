"""What the console shows, computed by pure functions: the timeline's geometry, severity names,
cells' times, a download's name. The browser side of it is tests/test_browser_layout.py."""

import gzip

import pytest

from packettotal.ingest.threats import severity_label
from packettotal.web import charts, downloads, tabs

from .captures import pcap_bytes, pcapng_bytes


@pytest.mark.parametrize("n", [1, 2, 7, 60, 600, 5000])
def test_the_timeline_bars_span_the_axis_in_order(n):
    bars = charts.timeline({"buckets": [{"flow": i % 3} for i in range(n)]})
    assert len(bars) == n and bars[0].x == 0
    assert bars[-1].x + bars[-1].width == pytest.approx(charts.WIDTH, abs=0.01)
    assert all(a.x + a.width <= b.x + 1e-6 for a, b in zip(bars, bars[1:], strict=False))
    assert all(b.width > 0 and 0 <= b.y <= charts.HEIGHT for b in bars)


def test_the_timeline_marks_its_alerts_and_keeps_the_bars_below_the_marks():
    bars = charts.timeline({"buckets": [{"flow": 4}, {"alert": 2, "http": 8}, {}, {"alert": "x"}]})
    assert [b.alerts for b in bars] == [0, 2, 0, 0]  # a value that is not a count is no alert
    assert min(b.y for b in bars) >= charts.MARK
    assert bars[1].label == "bucket 2: 10 events (http 8, alert 2)" and bars[2].height == 0


@pytest.mark.parametrize(("severity", "shown"), [
    (1, "1 High"), (2, "2 Medium"), (3, "3 Low"), (4, "4 Info"), (9, "9 Info"), (0, "Unknown"), (None, "Unknown"),
    ("2", "2"), ("medium", "Medium"), ("high", "High")])
def test_severities_are_named(severity, shown):
    assert severity_label(severity) == shown


def test_an_alert_cell_names_its_severity_and_a_time_cell_is_short():
    alert = {"timestamp": "2016-01-04T16:25:58.432868+0000", "alert": {"severity": 2}}
    columns = {c.label: c for c in tabs.tab("alert").columns}
    assert tabs.cell(alert, columns["Severity"]) == ["2 Medium"]
    assert tabs.cell(alert, columns["Time"]) == ["2016-01-04 16:25:58.432868"]
    assert tabs.short_time("2016-01-04T16:25:58.432868+0100") == "2016-01-04 16:25:58.432868+0100"
    assert tabs.short_time("<b>not a time") == "<b>not a time"


def test_http_shows_the_referer():
    assert "Referer" in [c.label for c in tabs.tab("http").columns]


class _Stored:
    """A service's one method that capture_name reads: where a stored capture is."""

    def __init__(self, folder):
        self.folder = folder

    def capture_path(self, cid):
        return self.folder / cid


@pytest.mark.parametrize(("data", "ext"), [(pcap_bytes(), "pcap"), (pcap_bytes(order=">", nsec=True), "pcap"),
                                           (pcapng_bytes(), "pcapng"), (gzip.compress(pcapng_bytes()), "pcap")])
def test_a_capture_is_named_by_the_format_of_its_stored_file(tmp_path, data, ext):
    (tmp_path / "ab").write_bytes(data)  # stored decompressed: a gzip stored as is would not be a capture
    assert downloads.capture_name(_Stored(tmp_path), "ab") == f"ab.{ext}"
