"""Writes the small TOML subset vipd's config uses (tomllib only reads): tables, arrays of
tables, strings, numbers, booleans, arrays and inline tables."""
from __future__ import annotations

import json
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key(k: str) -> str:
    return k if _BARE.fullmatch(k) else json.dumps(k)


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)      # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def table(lines: list[str], header: str, body: dict, comments: dict | None = None) -> None:
    """Append ``[header]`` (or ``[[header]]`` when header starts with "[") and its plain keys;
    sub-tables (dict values whose name is in body["_tables"]) follow as ``[header.name]``."""
    lines.append(f"[{header}]")
    subs = body.get("_tables", ())
    for k, v in body.items():
        if k == "_tables" or k in subs:
            continue
        note = (comments or {}).get(k)
        lines.append(f"{key(k)} = {value(v)}" + (f"    # {note}" if note else ""))
    for name in subs:
        if body.get(name):
            plain = header.strip("[]")
            lines.append(f"[{plain}.{key(name)}]")
            lines += [f"{key(k)} = {value(v)}" for k, v in body[name].items()]
    lines.append("")
