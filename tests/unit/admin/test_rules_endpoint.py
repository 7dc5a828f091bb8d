"""``GET /rules`` on the admin port, in-process: the real endpoints over an ``AdminView``,
and ``--rules-file`` / ``MESH_RULES_FILE`` parsing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Reply, Request
from proxy.cli import parse_run
from proxy.core.errors import UsageError


def get(path: str | None, method: str = "GET") -> Reply:
    view = AdminView({}, "asyncio", lambda: None, rules_file=path)
    return asyncio.run(admin_endpoints(view).dispatch(Request(method, "/rules", "", b"")))


def test_the_copy_is_served_as_written(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    body = json.dumps({"backend": "nft", "rules": {"ipv4": {"restore": "*nat\nCOMMIT\n"}}})
    path.write_text(body)
    reply = get(str(path))
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == body.encode()
    path.write_text('{"backend": "legacy"}')  # read per request: a rewrite shows at once
    assert json.loads(get(str(path)).body) == {"backend": "legacy"}


def test_without_a_path_404_says_why() -> None:
    reply = get(None)
    assert reply.status == 404
    assert b"started without --rules-file" in reply.body


def test_without_a_copy_404_names_the_path(tmp_path: Path) -> None:
    reply = get(str(tmp_path / "none.json"))
    assert reply.status == 404
    assert str(tmp_path / "none.json").encode() in reply.body
    assert b"left none" in reply.body


def test_an_unreadable_copy_is_503_not_a_crash(tmp_path: Path) -> None:
    reply = get(str(tmp_path))  # a directory: open() fails with EISDIR
    assert reply.status == 503 and str(tmp_path).encode() in reply.body


def test_only_get(tmp_path: Path) -> None:
    assert get(str(tmp_path / "r.json"), "PUT").status == 405


@pytest.mark.parametrize(
    ("argv", "env", "want"),
    [
        (["run"], {}, None),
        (["run", "--rules-file", "/var/run/mesh/rules.json"], {}, "/var/run/mesh/rules.json"),
        (["run"], {"MESH_RULES_FILE": "/r/rules.json"}, "/r/rules.json"),
        (["run", "--rules-file", "/a.json"], {"MESH_RULES_FILE": "/b.json"}, "/a.json"),
        (["run"], {"MESH_RULES_FILE": ""}, None),
    ],
)
def test_rules_file_option(argv: list[str], env: dict[str, str], want: str | None) -> None:
    assert parse_run(argv, env).rules_file == want


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["run", "--rules-file", "rules.json"], {}, "--rules-file: 'rules.json'"),
        (["run"], {"MESH_RULES_FILE": "./x"}, "MESH_RULES_FILE: './x'"),
    ],
)
def test_a_relative_path_is_refused(argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match="not an absolute file path") as e:
        parse_run(argv, env)
    assert needle in str(e.value)
