"""scripts/bench: reading the tools' output (wrk, /proc, Prometheus text, py-spy stacks)."""

from __future__ import annotations

import os

import pytest

from scripts.benchlib import procstat, profile
from scripts.benchlib.openloop import content_length, due, summarize
from scripts.benchlib.stand import counter_total
from scripts.benchlib.wrk import WrkOutputError, parse_wrk, to_ms

WRK_404 = """Running 1s test @ http://127.0.0.1:18931/nonexistent
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.04ms  649.81us  11.30ms   93.61%
    Req/Sec     1.93k   163.99     2.06k    80.00%
  Latency Distribution
     50%    0.95ms
     75%    1.19ms
     90%    1.45ms
     99%    2.95ms
  1916 requests in 1.00s, 0.95MB read
  Non-2xx or 3xx responses: 1916
Requests/sec:   1915.63
Transfer/sec:      0.95MB
"""

WRK_OK = """Running 2s test @ http://10.77.0.1:8080/1k
  1 threads and 16 connections
  Latency Distribution
     50%  187.00us
     75%  230.00us
     90%  290.00us
     99%    1.20s
  169650 requests in 2.00s, 209.41MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
Requests/sec:  84825.10
Transfer/sec:    104.70MB
"""


def test_wrk_output_with_errors_counts_them() -> None:
    r = parse_wrk(WRK_404)
    assert (r.rps, r.requests, r.seconds) == (1915.63, 1916, 1.0)
    assert (r.p50_ms, r.p99_ms) == (0.95, 2.95)
    assert r.errors == 1916


def test_wrk_units_convert_to_milliseconds_and_socket_errors_add_up() -> None:
    r = parse_wrk(WRK_OK)
    assert r.p50_ms == pytest.approx(0.187)
    assert r.p99_ms == pytest.approx(1200.0)
    assert r.errors == 5
    assert r.rps == pytest.approx(84825.10)


def test_wrk_output_without_latency_distribution_names_what_is_missing() -> None:
    text = WRK_OK.replace("     50%  187.00us\n", "")
    with pytest.raises(WrkOutputError, match="50% latency"):
        parse_wrk(text)
    with pytest.raises(WrkOutputError, match="Requests/sec"):
        parse_wrk("unable to connect to 10.77.0.1:8080 Connection refused\n")


def test_unknown_wrk_unit_is_an_error() -> None:
    assert to_ms("2", "m") == 120_000.0
    with pytest.raises(WrkOutputError, match="'d'"):
        to_ms("2", "d")


def test_proc_stat_with_spaces_and_parentheses_in_the_name() -> None:
    line = "4242 (python (x) y) S 4200 4242 4242 0 -1 4194560 900 0 0 0 150 25 7 3 20 0 1 0 5 0 0"
    s = procstat.parse_stat(line)
    assert (s.pid, s.ppid, s.cpu_ticks) == (4242, 4200, 150 + 25 + 7 + 3)
    with pytest.raises(ValueError, match="not a /proc"):
        procstat.parse_stat("garbage")


def test_process_tree_follows_children_and_ignores_others() -> None:
    stats = {
        p: procstat.Stat(p, pp, 10)
        for p, pp in ((10, 1), (11, 10), (12, 10), (13, 12), (20, 1), (21, 20))
    }
    assert sorted(procstat.tree(10, stats)) == [10, 11, 12, 13]
    assert procstat.tree(99, stats) == []


def test_this_process_has_cpu_and_peak_rss() -> None:
    sum(i * i for i in range(200_000))  # burn a little CPU so the reading is not zero
    assert procstat.cpu_ms(os.getpid()) > 0
    assert procstat.peak_rss_mib(os.getpid()) > 1
    assert procstat.parse_hwm_kib("Name:\tx\nVmHWM:\t  2048 kB\n") == 2048
    with pytest.raises(ValueError, match="VmHWM"):
        procstat.parse_hwm_kib("Name:\tx\n")


def test_open_loop_schedule_and_response_framing() -> None:
    assert due(10.0, 0, 1000.0) == 10.0
    assert due(10.0, 1500, 1000.0) == pytest.approx(11.5)
    head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\ncontent-LENGTH: 1024\r\n\r\n"
    assert content_length(head) == 1024
    with pytest.raises(ValueError, match="without Content-Length"):
        content_length(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")


def test_open_loop_summary_in_milliseconds() -> None:
    lat = [0.001] * 98 + [0.004, 0.050]
    r = summarize(lat, sent=101, errors=1)
    assert (r.sent, r.ok, r.errors) == (101, 100, 1)
    assert r.p50_ms == pytest.approx(1.0)
    assert r.p99_ms == pytest.approx(4.0)
    assert r.max_ms == pytest.approx(50.0)
    with pytest.raises(RuntimeError, match="no successful response out of 7"):
        summarize([], sent=7, errors=7)


def test_counter_total_sums_every_series_of_one_family_only() -> None:
    text = (
        "# TYPE istio_requests_total counter\n"
        'istio_requests_total{response_code="200"} 7.0\n'
        'istio_requests_total{response_code="503"} 2.0\n'
        'istio_requests_total_created{response_code="200"} 1.7e9\n'
        "istio_tcp_connections_opened_total 4.0\n"
    )
    assert counter_total(text, "istio_requests_total") == 9.0
    assert counter_total(text, "istio_tcp_connections_opened_total") == 4.0
    assert counter_total(text, "mesh_absent_total") == 0.0


def test_collapsed_stacks_give_self_and_inclusive_shares() -> None:
    text = (
        'process 12:"python -m proxy run";main (a.py);serve (b.py);parse (h11.py) 30\n'
        "main (a.py);serve (b.py);write (streams.py) 50\n"
        "main (a.py);serve (b.py);serve (b.py) 20\n"
        "not a stack line\n"
    )
    p = profile.parse_collapsed(text)
    assert p.samples == 100
    assert p.top(1) == [("write (streams.py)", 50.0)]
    incl = dict(p.top(10, inclusive=True))
    assert incl["serve (b.py)"] == 100.0  # recursion counted once per stack
    assert incl["parse (h11.py)"] == 30.0
    assert not any(name.startswith("process ") for name in incl)
    assert profile.by_file(p) == {"streams.py": 50, "h11.py": 30, "b.py": 20}
    text = profile.render("L7", p)
    assert "write (streams.py)" in text and "  50.0  streams.py" in text
