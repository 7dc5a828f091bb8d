"""scripts/bench: medians over reps, added latency, ratios, targets and the printed table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.benchlib import report, results, setups
from scripts.benchlib.results import Sample, Target
from scripts.benchlib.stats import median, percentile


def test_percentile_is_nearest_rank_and_median_averages_the_middle() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 0) == 3.0
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="outside"):
        percentile(values, 101)
    with pytest.raises(ValueError, match="no"):
        median([])


def sample(setup: str, rep: int, **figs: float | None) -> Sample:
    return Sample(setup, rep, figs)


def test_aggregate_takes_the_median_per_setup_and_keeps_missing_as_none() -> None:
    samples = [
        sample("direct", 1, rps=100.0, ol_p99_ms=1.0, cpu_ms_per_1k=None),
        sample("direct", 2, rps=300.0, ol_p99_ms=3.0, cpu_ms_per_1k=None),
        sample("direct", 3, rps=200.0, ol_p99_ms=2.0, cpu_ms_per_1k=None),
        sample("mesh-l7", 1, rps=50.0, ol_p99_ms=2.5, cpu_ms_per_1k=40.0),
        sample("mesh-l7", 2, rps=70.0, ol_p99_ms=3.5, cpu_ms_per_1k=20.0),
    ]
    figs = results.aggregate(samples)
    assert figs["direct"]["rps"] == 200.0
    assert figs["direct"]["cpu_ms_per_1k"] is None
    assert figs["mesh-l7"]["rps"] == 60.0
    assert figs["mesh-l7"]["cpu_ms_per_1k"] == 30.0
    results.add_latency_over(figs)
    assert figs["mesh-l7"]["added_p99_ms"] == pytest.approx(1.0)
    assert figs["direct"]["added_p99_ms"] == 0.0
    assert figs["mesh-l7"]["added_p50_ms"] is None  # neither measured a p50


def test_ratios_divide_mesh_by_haproxy_and_by_direct() -> None:
    figs: dict[str, results.Figures] = {
        "direct": {"rps": 1000.0, "cpu_ms_per_1k": None},
        "mesh-l4": {"rps": 500.0, "cpu_ms_per_1k": 30.0, "bulk_mib_s": 400.0},
        "haproxy-tcp": {"rps": 800.0, "cpu_ms_per_1k": 10.0, "bulk_mib_s": 800.0},
    }
    r = results.ratios(figs)
    assert r["mesh-l4/haproxy-tcp"]["rps"] == pytest.approx(0.625)
    assert r["mesh-l4/haproxy-tcp"]["cpu_ms_per_1k"] == pytest.approx(3.0)
    assert r["mesh-l4/haproxy-tcp"]["bulk_mib_s"] == pytest.approx(0.5)
    assert r["mesh-l4/direct"]["rps"] == pytest.approx(0.5)
    assert r["mesh-l4/direct"]["cpu_ms_per_1k"] is None  # direct has no proxy CPU
    assert "mesh-l7/haproxy-http" not in r  # neither was run
    assert results.ratio(1.0, 0.0) is None


def test_targets_pass_fail_and_not_measured() -> None:
    figs: dict[str, results.Figures] = {
        setups.MESH_L7.name: {"cpu_ms_per_1k": 250.0, "added_p99_ms": 0.4, "rps": 4000.0},
        "haproxy-http": {"cpu_ms_per_1k": 50.0, "rps": 20000.0},
        "llhttp-bare": {"cpu_ms_per_1k": 125.0},
        "mesh-l4": {"cpu_ms_per_1k": 11.0, "bulk_mib_s": 900.0, "added_p99_ms": 1.5},
        "haproxy-tcp": {"cpu_ms_per_1k": 10.0, "bulk_mib_s": 1000.0},
    }
    verdicts = {t.name: (t.verdict, t.value) for t in results.targets(figs)}
    assert verdicts["L7 CPU/request ÷ HAProxy http"] == ("FAIL", 5.0)
    assert verdicts["L7 CPU/request ÷ bare llhttp forwarder"] == ("PASS", 2.0)
    assert verdicts["L7 req/s ÷ HAProxy http"] == ("FAIL", 0.2)
    assert verdicts["L7 CPU-ms per 1,000 requests"] == ("FAIL", 250.0)
    assert verdicts["L7 p99 added at 1,000 req/s (ms)"] == ("PASS", 0.4)
    assert verdicts["L4 p99 added at 1,000 req/s (ms)"] == ("FAIL", 1.5)
    assert verdicts["L4 CPU/request ÷ HAProxy tcp"][0] == "PASS"
    assert verdicts["L4 bulk ÷ HAProxy tcp bulk"] == ("PASS", 0.9)
    assert verdicts["--workers 2 CPU/request ÷ 1 worker"] == ("not measured", None)
    figs[setups.MESH_L7_W2.name] = {"cpu_ms_per_1k": 300.0}
    figs[setups.HAPROXY_HTTP_T2.name] = {"cpu_ms_per_1k": 59.0}
    workers = {t.name: t for t in results.targets(figs)}["--workers 2 CPU/request ÷ 1 worker"]
    assert (workers.verdict, workers.value) == ("FAIL", 1.2)
    assert workers.peer == pytest.approx(1.18)  # context: the verdict reads only the value
    line = report.target_lines([workers])
    assert "(target <= 1.1; HAProxy nbthread 2 ÷ 1, same core: 1.18)" in line
    pairs = results.ratios(figs)
    assert pairs[f"{setups.MESH_L7_W2.name}/{setups.MESH_L7.name}"]["cpu_ms_per_1k"] == 1.2
    assert pairs["haproxy-http-t2/haproxy-http"]["cpu_ms_per_1k"] == pytest.approx(1.18)
    assert Target("x", 0.79, 0.8, at_most=False).verdict == "FAIL"
    assert Target("x", 1.2, 1.2, at_most=True).verdict == "PASS"


def test_table_ratios_targets_and_json(tmp_path: Path) -> None:
    figs: dict[str, results.Figures] = {
        "direct": {"rps": 84825.0, "wrk_p99_ms": 0.28, "cpu_ms_per_1k": None},
        "mesh-l4": {"rps": 42244.4, "wrk_p99_ms": 13.02, "cpu_ms_per_1k": 19.64},
    }
    text = report.table(figs)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["config", "req/s", "p50"]
    assert lines[2].split()[:2] == ["direct", "84825"]
    assert "19.6" in lines[3] and "42244" in lines[3]
    assert lines[2].split()[6] == "-"  # direct has no proxy CPU
    ratio_text = report.ratio_lines({"mesh-l4/direct": {"rps": 0.498, "cpu_ms_per_1k": None}})
    assert "req/s 0.50x" in ratio_text and "CPU" not in ratio_text
    tline = report.target_lines([Target("L7 CPU-ms per 1,000 requests", 250.0, 200.0, True)])
    assert "FAIL" in tline and "250.00" in tline and "<= 200" in tline
    doc = report.document({"plan": "quick"}, [sample("direct", 1, rps=1.0)], figs, {}, [])
    path = report.write_json(tmp_path / "bench-results", "20260101T000000Z", doc)
    back = json.loads(path.read_text())
    assert back["medians"]["mesh-l4"]["rps"] == 42244.4
    assert back["samples"] == [{"setup": "direct", "rep": 1, "rps": 1.0}]


def test_select_keeps_direct_and_canonical_order_and_names_unknowns() -> None:
    names = [s.name for s in setups.select(["haproxy-tcp", "mesh-l4"])]
    assert names == ["direct", "mesh-l4", "haproxy-tcp"]
    with pytest.raises(ValueError, match="unknown configuration envoy"):
        setups.select(["envoy"])
    assert setups.QUICK.reps >= 3 and setups.FULL.reps >= 3


def test_l7_note_says_whether_every_open_loop_request_was_counted_at_l7() -> None:
    engaged = [sample("mesh-l7", 1, ol_l7_share=1.0), sample("mesh-l7-w2", 1, ol_l7_share=1.0)]
    assert results.l7_note(engaged) == results.L7_ENGAGED
    relayed = [*engaged, sample("mesh-l7", 2, ol_l7_share=0.25)]
    assert "only 25%" in str(results.l7_note(relayed))
    assert "only 0%" in str(results.l7_note([sample("mesh-l7", 1, ol_l7_share=None)]))
    assert results.l7_note([sample("direct", 1, rps=1.0)]) is None


def test_rest_memory_target_takes_the_largest_worker() -> None:
    from scripts.benchlib.procstat import parse_rss_kib

    assert parse_rss_kib("Name:\tpython\nVmHWM:\t 9000 kB\nVmRSS:\t 31744 kB\n") == 31744
    rest = {"rest_rss_mib_1w": 31.0, "rest_rss_mib_worker_max": 42.5, "rest_rss_mib_parent": 20.0}
    (target,) = [t for t in results.targets({}, rest) if t.name.startswith("RSS")]
    assert (target.value, target.verdict) == (42.5, "FAIL")
    (target,) = [
        t for t in results.targets({}, {"rest_rss_mib_1w": 30.0}) if t.name.startswith("RSS")
    ]
    assert target.verdict == "PASS"
    (target,) = [t for t in results.targets({}) if t.name.startswith("RSS")]
    assert target.verdict == "not measured"


def test_every_l7_codec_is_compared_with_haproxy_the_bare_forwarder_and_direct() -> None:
    names = ["direct", "mesh-l7-h11", "mesh-l7-llhttp", "llhttp-bare", "haproxy-http"]
    figs: dict[str, results.Figures] = {n: {"rps": 1000.0 * (i + 1)} for i, n in enumerate(names)}
    r = results.ratios(figs)
    for codec in ("h11", "llhttp"):
        for other in ("haproxy-http", "llhttp-bare", "direct"):
            assert f"mesh-l7-{codec}/{other}" in r
    assert r["mesh-l7-h11/llhttp-bare"]["rps"] == pytest.approx(0.5)
    assert r["llhttp-bare/haproxy-http"]["rps"] == pytest.approx(0.8)
    assert "mesh-l4/haproxy-tcp" not in r  # not run


def test_l7_stands_run_once_per_registered_codec_and_the_floor_is_selectable() -> None:
    from proxy.http.codec import CODECS

    l7 = [s for s in setups.ALL if s.name.startswith("mesh-l7-") and s.workers == 1]
    compiled = [s for s in l7 if not s.source]
    assert sorted(s.codec or "" for s in compiled) == sorted(CODECS)
    assert all(s.name == f"mesh-l7-{s.codec}" for s in compiled)
    # One more stand runs the shipped codec from its Python source, named so.
    assert [s.name for s in l7 if s.source] == [f"mesh-l7-{setups.DEFAULT_CODEC}-source"]
    assert setups.MESH_L7.codec == setups.MESH_L7_W2.codec == setups.DEFAULT_CODEC
    assert not setups.MESH_L7.source
    assert [s.name for s in setups.select(["llhttp-bare"])] == ["direct", "llhttp-bare"]


def test_floor_lines_name_each_codec_and_compare_with_haproxy() -> None:
    text = report.floor_lines({"h11": 60.0, "llhttp": 4.0}, 20.0)
    h11, llhttp = text.strip().splitlines()
    assert h11.startswith("h11 alone") and "60.0 CPU-ms per 1,000" in h11 and "3.00x" in h11
    assert llhttp.startswith("llhttp alone") and "4.0 CPU-ms" in llhttp and "0.20x" in llhttp
    assert "HAProxy" not in report.floor_lines({"llhttp": 4.0}, None)


def test_idle_cpu_target_reads_microseconds_per_second_as_ms() -> None:
    def idle(rest: dict[str, float] | None) -> tuple[float | None, str]:
        (target,) = [t for t in results.targets({}, rest) if t.name.startswith("idle")]
        return target.value, target.verdict

    assert idle({"idle_cpu_us_s": 150.0}) == (0.15, "PASS")
    assert idle({"idle_cpu_us_s": 500.0}) == (0.5, "FAIL")
    assert idle(None)[1] == "not measured"


def test_idle_cpu_is_summed_over_every_thread_of_the_tree(tmp_path: Path) -> None:
    from scripts.benchlib.procstat import cpu_ns

    def task(pid: int, ppid: int, threads: dict[int, int]) -> None:
        (tmp_path / str(pid)).mkdir()
        fields = ["S", str(ppid)] + ["0"] * 20
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (python) {' '.join(fields)}\n")
        for tid, ns in threads.items():
            (tmp_path / str(pid) / "task" / str(tid)).mkdir(parents=True)
            (tmp_path / str(pid) / "task" / str(tid) / "schedstat").write_text(f"{ns} 5 7\n")

    task(10, 1, {10: 1_000, 11: 250})  # the parent and a thread of it
    task(12, 10, {12: 4_000})  # a worker
    task(99, 1, {99: 10**9})  # someone else's
    assert cpu_ns(10, tmp_path) == 5_250
