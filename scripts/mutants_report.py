#!/usr/bin/env python3
"""Lists mutmut's surviving mutants of vipd/core as one changed line each (scripts/mutants calls
it after a run): `mutmut show NAME` gives the same diff, one slow call per mutant.

usage: scripts/mutants_report.py [STATUS ...]   (default: survived, "no tests", timeout)
Reads mutants/**/*.py.meta (exit code per mutant) and *.py.spans (where each mutant's function is
in the mutated file), and prints the score and, per file, "name: -old | +new".
"""
import difflib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "mutants"
STATUS = {0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


def changed(orig: list[str], mutant: list[str], names: tuple[str, str]) -> str:
    """The lines the mutant changed, as -old | +new (the function's own name left out)."""
    out = []
    mutant = [line.replace(names[1] + "(", names[0] + "(") for line in mutant]
    for line in difflib.unified_diff(orig, mutant, lineterm="", n=0):
        if line[:1] in "+-" and not line.startswith(("+++", "---")):
            out.append(line[0] + line[1:].strip())
    return " | ".join(out)


def main(wanted: set[str]) -> None:
    counts: dict[str, int] = {}
    rows = []
    for meta_path in sorted(ROOT.glob("vipd/**/*.py.meta")):
        src = meta_path.with_suffix("")            # x.py.meta -> x.py
        lines = src.read_text().splitlines()
        spans = json.loads(src.with_name(src.name + ".spans").read_text())["spans"]
        meta = json.loads(meta_path.read_text())
        for key, code in meta["exit_code_by_key"].items():
            status = STATUS.get(code, f"exit {code}")
            counts[status] = counts.get(status, 0) + 1
            if status not in wanted:
                continue
            func = key.rsplit(".", 1)[1]           # x_decode__mutmut_12 / xǁClassǁm__mutmut_3
            orig = func.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
            (a, b), (c, d) = spans[orig], spans[func]
            rows.append((key, status, changed(lines[a - 1:b], lines[c - 1:d], (orig, func))))
    total = sum(counts.values())
    killed = counts.get("killed", 0)
    print(f"{total} mutants: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    checked = total - counts.get("not checked", 0)
    if checked:
        print(f"score: {killed}/{checked} killed = {100 * killed / checked:.1f}%")
    for key, status, diff in rows:
        print(f"{key}  [{status}]  {diff}")


if __name__ == "__main__":
    main(set(sys.argv[1:]) or {"survived", "no tests", "timeout"})
