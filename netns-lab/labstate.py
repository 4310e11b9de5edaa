"""The lab's state files in /run/vipd-lab: a prefix is claimed with a file recording, before
anything exists, what will exist; teardown (of this run's lab or of a dead run's) removes what a
file records and then the file."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
from collections.abc import Callable

from labproc import NETNS_DIR, LabError, kill_in_namespaces, run_ip, start_time

FAMILY = "vl"                       # every lab prefix starts with this; --all-stale only looks here
STATE_DIR = pathlib.Path("/run/vipd-lab")
LAB_PY = pathlib.Path(__file__).with_name("lab.py")    # the command that removes labs


def claim(prefix: str | None, new_prefix: Callable[[], str],
          plan: Callable[[str], list[str]]) -> tuple[str, pathlib.Path, list[str]]:
    """Picks prefix (or, if None, a free one from new_prefix) whose planned namespaces do not
    exist, and creates its state file exclusively. Returns the prefix, the file and the plan."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        chosen = prefix or new_prefix()
        path = STATE_DIR / f"{chosen}.json"
        names = plan(chosen)
        if any((NETNS_DIR / n).exists() for n in names):
            if prefix:
                raise LabError(f"namespaces with prefix {chosen} exist already")
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if prefix:
                raise LabError(f"prefix {chosen} is taken ({path}); if its run died: "
                               f"python {LAB_PY} down --all-stale") from None
            continue
        os.close(fd)
        return chosen, path, names
    raise LabError("no free lab prefix found")


def save(state: dict, path: pathlib.Path) -> None:
    """Replaces the state file at once, so a reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(path)


def states() -> list[tuple[pathlib.Path, dict]]:
    """Every readable state file and what it records."""
    out = []
    for path in sorted(STATE_DIR.glob("*.json")):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            pass    # removed meanwhile, or being written by a crashed run: not a lab to list
    return out


def owner_alive(state: dict) -> bool:
    return bool(state.get("pid")) and start_time(state["pid"]) == state.get("start")


def stale(state: dict) -> bool:
    """Left by a run that died (a detached lab, made by `lab.py up`, is kept until named)."""
    return state["prefix"].startswith(FAMILY) and bool(state.get("pid")) and not owner_alive(state)


def destroy(state: dict, state_path: pathlib.Path) -> list[str]:
    """Removes what a state file records: processes, namespaces, work directory, the file."""
    problems = []
    names = [n for n in state.get("namespaces", []) if n.startswith(state["prefix"])]
    try:
        problems += kill_in_namespaces(names)
        present = [n for n in names if (NETNS_DIR / n).exists()]
        if present:
            run_ip(["-force"], [f"netns del {n}" for n in present])
    except Exception as e:   # teardown goes on: the next steps may still succeed
        problems.append(f"deleting namespaces: {e}")
    left = [n for n in names if (NETNS_DIR / n).exists()]
    if left:
        problems.append(f"namespaces left: {left}")
    workdir = state.get("workdir")
    if workdir and os.path.isdir(workdir) and state.get("remove_workdir"):
        shutil.rmtree(workdir, onerror=lambda f, p, e: problems.append(f"removing {p}: {e[1]}"))
    if not left:
        state_path.unlink(missing_ok=True)
    return problems
