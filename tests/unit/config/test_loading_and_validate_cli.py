"""Loading files (YAML, JSON, syntax errors, unreadable files) and ``mesh-proxy validate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError, load_config, loads_config, validate_main

DATA = Path(__file__).resolve().parents[2] / "data" / "configs"


def _load_errors(path: Path | str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.errors


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert _load_errors(missing) == [f"{missing}: cannot read: No such file or directory"]
    assert _load_errors(tmp_path) == [f"{tmp_path}: cannot read: Is a directory"]


def test_binary_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"mesh: \xff\xfe\n")
    (line,) = _load_errors(path)
    assert line.startswith(f"{path}: not UTF-8 text:")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("mesh:\n  outbound_policy: allow_any\nservices: [\n  {name: a\n")
    (line,) = _load_errors(path)
    assert line.startswith(f"{path}:5:1: YAML syntax error:"), line


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n\t"mesh": {},\n\t"services": [,]\n}\n')
    assert _load_errors(path) == [f"{path}:3:15: JSON syntax error: Expecting value"]


def test_duplicate_keys_are_errors_not_silently_dropped() -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config("mesh: {}\nservices: []\nmesh: {access_log: false}\n", "c.yaml")
    assert caught.value.errors == ["c.yaml:3: duplicate key 'mesh'"]
    with pytest.raises(ConfigError) as caught:
        loads_config('{"mesh": {"access_log": true, "access_log": false}}', "c.json")
    assert caught.value.errors == ["c.json: duplicate key 'access_log'"]


def test_duplicate_keys_are_reported_with_validation_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config("services: []\nservices: []\nmesh: {access_log: 3}\n", "c.yaml")
    assert caught.value.errors == [
        "c.yaml:2: duplicate key 'services'",
        "c.yaml:3: mesh.access_log: expected a boolean (true/false, on/off), got integer 3",
    ]


def test_errors_point_at_the_line_of_their_field() -> None:
    text = """\
services:
  - name: a
    port: 80
    endpoints:
      - address: 10.0.0.1
        labels:
          "odd key": 1
    routes:
      - match:
          headers: {x-a: {exact: b}}
"""
    with pytest.raises(ConfigError) as caught:
        loads_config(text, "c.yaml")
    assert caught.value.errors == [
        'c.yaml:7: services[0].endpoints[0].labels["odd key"]: '
        "expected a string, got integer 1 (quote it in YAML)",
        # a missing key has no line of its own: the enclosing route's is used
        "c.yaml:9: services[0].routes[0].destinations: required",
    ]


def test_json_errors_name_the_source_without_lines() -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config('{"services": [{"name": "a", "port": 0, "endpoints": []}]}', "c.json")
    assert caught.value.errors == ["c.json: services[0].port: must be >= 1, got 0"]
    # A YAML flow mapping also opens with "{" and is accepted.
    assert loads_config("{services: [{name: a, port: 1, endpoints: []}]}").services[0].port == 1


def test_two_documents_in_one_file_are_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        loads_config("services: []\n---\nservices: []\n", "c.yaml")
    (line,) = caught.value.errors
    assert line.startswith("c.yaml:") and "expected a single document" in line


def test_validate_valid_file_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "design.yaml"
    assert validate_main([str(path)]) == 0
    out, err = capsys.readouterr()
    version = load_config(path).version
    assert out == f"{path}: ok (1 services, version {version[:12]})\n"
    assert err == ""


def test_validate_prints_every_error_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "bad.yaml"
    assert validate_main([str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:3: defaults.timeout: bad duration string '15 seconds': "
        "use a number and ms, s or m (e.g. 15s)",
        f"{path}:10: services[0].routes[0].destinations[0].subset: unknown subset 'v2' (known: v1)",
        f"{path}:11: services[1].name: duplicate service name 'reviews' (also services[0])",
        f"{path}: invalid (3 errors)",
    ]


def test_validate_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert validate_main([str(missing)]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{missing}: cannot read: No such file or directory",
        f"{missing}: invalid (1 error)",
    ]


def test_validate_bad_syntax_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("services:\n  - name: a\n    port: 80\n   endpoints: []\n")
    assert validate_main([str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}:4:4: YAML syntax error:"), err


def test_validate_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main([]) == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err
    assert validate_main(["a.yaml", "b.yaml"]) == 2
    assert "unrecognized arguments: b.yaml" in capsys.readouterr().err
