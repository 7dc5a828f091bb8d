"""Reading a service's ``routes``: match conditions, weighted destinations, policy.

A route's destinations name subsets of its own service, so routes are read with
the subsets already known; an unknown subset is reported where it is referenced.
Weights are all omitted (equal split) or all written, and at least one is > 0.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from proxy.config.errors import Issues, describe, index_path, key_path
from proxy.config.fault import read_fault
from proxy.config.fields import Reader, Section, boolean, integer, regex, string
from proxy.config.model import Destination, Route, RouteMatch, ValueMatch
from proxy.config.policy import Policy, PolicyOverride, merge_policy
from proxy.config.policy_parse import check_ordered, read_policy

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: methods, header names
PATH_KINDS = ("exact", "prefix", "regex")
HEADER_KINDS = ("exact", "prefix", "regex", "present", "absent")
QUERY_KINDS = ("exact", "regex", "present")


def _value_match(kinds: Collection[str], *, is_path: bool = False) -> Reader[ValueMatch]:
    def read(value: object, path: str, issues: Issues) -> ValueMatch | None:
        section = Section(value, path, issues, kinds)
        given = [k for k in kinds if section.has(k)]
        # An unknown key alone was already reported, with a suggestion; say no more.
        if section.ok and len(given) != 1 and not (section.unknown and not given):
            wanted = "set exactly one of" if given else "expected one of"
            issues.add(path, f"{wanted}: {', '.join(kinds)}")
        if not section.ok or len(given) != 1:
            return None
        kind, raw, at = given[0], section.data[given[0]], section.at(given[0])
        if kind == "regex":
            pattern = regex(raw, at, issues)
            return None if pattern is None else ValueMatch("regex", pattern.pattern, pattern)
        if kind in ("present", "absent"):
            flag = boolean(raw, at, issues)
            if flag is None:
                return None
            return ValueMatch("present" if flag == (kind == "present") else "absent")
        if not isinstance(raw, str):
            issues.add(at, f"expected a string, got {describe(raw)} (quote it in YAML)")
            return None
        if is_path and not raw.startswith("/"):
            issues.add(at, f"a path must start with '/', got {raw!r}")
            return None
        return ValueMatch("exact" if kind == "exact" else "prefix", raw)

    return read


def _named(kinds: Collection[str], *, header: bool) -> Reader[tuple[tuple[str, ValueMatch], ...]]:
    read_one = _value_match(kinds)

    def read(value: object, path: str, issues: Issues) -> tuple[tuple[str, ValueMatch], ...] | None:
        if not isinstance(value, dict):
            issues.add(path, f"expected a mapping of name to condition, got {describe(value)}")
            return None
        out: list[tuple[str, ValueMatch]] = []
        for name, cond in value.items():
            at = key_path(path, str(name))
            if not isinstance(name, str) or (header and not _TOKEN.fullmatch(name)):
                issues.add(at, f"not a valid {'header' if header else 'parameter'} name")
                continue
            match = read_one(cond, at, issues)
            if match is not None:
                out.append((name.lower() if header else name, match))
        return tuple(out)

    return read


def _methods(value: object, path: str, issues: Issues) -> frozenset[str] | None:
    items = value if isinstance(value, list) else [value]
    if not items:
        issues.add(path, "must not be empty (leave method out to match any)")
        return None
    methods: set[str] = set()
    for i, item in enumerate(items):
        at = index_path(path, i) if isinstance(value, list) else path
        if not isinstance(item, str) or not _TOKEN.fullmatch(item):
            issues.add(at, f"not an HTTP method: {describe(item)}")
            continue
        methods.add(item.upper())
    return frozenset(methods)


_read_path = _value_match(PATH_KINDS, is_path=True)
_read_headers = _named(HEADER_KINDS, header=True)
_read_query = _named(QUERY_KINDS, header=False)


def read_match(value: object, path: str, issues: Issues) -> RouteMatch | None:
    section = Section(value, path, issues, ("path", "method", "headers", "query"))
    return RouteMatch(
        path=section.optional("path", _read_path),
        methods=section.get("method", _methods, frozenset()),
        headers=section.get("headers", _read_headers, ()),
        query=section.get("query", _read_query, ()),
    )


def _destinations(
    value: object, path: str, issues: Issues, subsets: Collection[str] | None
) -> tuple[Destination, ...]:
    if not isinstance(value, list) or not value:
        issues.add(
            path, "must not be empty" if value == [] else f"expected a list, got {describe(value)}"
        )
        return ()
    sections = [
        Section(v, index_path(path, i), issues, ("subset", "weight")) for i, v in enumerate(value)
    ]
    weighted = any(s.has("weight") for s in sections)
    out: list[Destination] = []
    weights_ok = True
    for section in sections:
        subset = section.optional("subset", string)
        if subset is not None and subsets is not None and subset not in subsets:
            known = f"known: {', '.join(sorted(subsets))}" if subsets else "no subsets defined"
            issues.add(section.at("subset"), f"unknown subset {subset!r} ({known})")
        if weighted and not section.has("weight") and section.ok:
            issues.add(section.at("weight"), "required when another destination sets a weight")
        weight = section.optional("weight", integer(min=0)) if weighted else 1
        weights_ok = weights_ok and weight is not None
        out.append(Destination(subset, weight or 0))
    if weights_ok and not any(d.weight for d in out):
        issues.add(path, "at least one weight must be > 0")
    return tuple(out)


def read_routes(
    value: object,
    path: str,
    issues: Issues,
    subsets: Collection[str] | None,
    service_policy: Policy,
) -> tuple[Route, ...]:
    """The routes of one service, in order; ``subsets`` None skips reference checks."""
    if not isinstance(value, list):
        issues.add(path, f"expected a list, got {describe(value)}")
        return ()
    routes: list[Route] = []
    for i, raw in enumerate(value):
        at = index_path(path, i)
        allowed = ("name", "match", "destinations", "policy", "fault")
        section = Section(raw, at, issues, allowed)
        name = section.optional("name", string)
        match = section.get("match", read_match, RouteMatch())
        if section.has("destinations"):
            destinations = _destinations(
                section.data["destinations"], section.at("destinations"), issues, subsets
            )
        else:
            if section.ok:
                issues.add(section.at("destinations"), "required")
            destinations = ()
        override = section.get("policy", read_policy, PolicyOverride())
        resolved = merge_policy(service_policy, override)
        check_ordered(resolved, override, section.at("policy"), issues)
        fault = section.optional("fault", read_fault)
        if section.ok and destinations:
            routes.append(Route(destinations, match, name, override, resolved, fault=fault))
    return tuple(routes)
