"""``--workers`` beyond the CPUs the proxy may use: the affinity and the cgroup quota
(a Kubernetes CPU limit) decide how many are usable, and the warning names the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.process import cpus


@pytest.mark.parametrize(
    ("text", "limit"),
    [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5)],
)
def test_cgroup_v2_cpu_max(text: str, limit: float | None) -> None:
    assert cpus.parse_cpu_max(text) == limit


@pytest.mark.parametrize(
    ("text", "named"),
    [("max", "'max'"), ("abc 100000", "'abc'"), ("0 100000", "0/100000"), ("", "''")],
)
def test_a_malformed_cpu_max_is_an_error_naming_it(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        cpus.parse_cpu_max(text)


def test_cgroup_v1_quota() -> None:
    assert cpus.parse_cfs("-1\n", "100000\n") is None
    assert cpus.parse_cfs("200000\n", "100000\n") == 2.0
    with pytest.raises(ValueError, match="'x'"):
        cpus.parse_cfs("x", "100000")


def test_the_limit_is_read_from_v2_then_v1_and_unreadable_means_none(tmp_path: Path) -> None:
    assert cpus.cgroup_limit(tmp_path) is None  # no cgroup files at all
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_limit(tmp_path) == 2.5
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cpus.cgroup_limit(tmp_path) == 1.0  # v2 first
    (tmp_path / "cpu.max").write_text("garbage\n")
    assert cpus.cgroup_limit(tmp_path) is None  # a warning's input: never fatal


@pytest.mark.parametrize(
    ("affinity", "limit", "usable"),
    [(4, None, 4), (4, 1.5, 2), (4, 0.25, 1), (1, 8.0, 1), (2, 2.0, 2)],
)
def test_usable_cpus_are_the_smaller_bound_rounded_up(
    affinity: int, limit: float | None, usable: int
) -> None:
    assert cpus.Cpus(affinity, limit).usable == usable


def test_more_workers_than_usable_cpus_warns_with_the_numbers() -> None:
    one_core = cpus.Cpus(affinity=1, limit=None)
    text = cpus.oversubscribed(2, one_core)
    assert text is not None
    assert text.startswith("--workers 2 with CPUs 1 usable (affinity 1, cgroup CPU limit none)")
    assert "use --workers 1" in text
    limited = cpus.oversubscribed(3, cpus.Cpus(affinity=8, limit=1.5))
    assert limited is not None and "2 usable" in limited and "limit 1.5" in limited
    assert cpus.oversubscribed(2, cpus.Cpus(affinity=2, limit=None)) is None
    assert cpus.oversubscribed(1, one_core) is None
