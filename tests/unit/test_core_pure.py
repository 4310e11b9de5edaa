"""vipd/core is sans-IO: it imports no module that does I/O or reads the clock, and nothing from
the rest of vipd. The daemon's import path carries no scapy.

Two views, because each misses what the other sees: the source (every import statement, relative
ones resolved against their package, also those inside functions), and what Python really loads
when a fresh interpreter (-I -S: only io, time and sys preloaded) imports every core module, which
catches I/O pulled in through another module.
"""
import ast
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
CORE = REPO / "vipd" / "core"
FORBIDDEN = {"socket", "time", "asyncio", "subprocess", "pyroute2", "scapy", "select",
             "threading", "os", "selectors", "signal", "random", "logging", "datetime",
             "pathlib", "io", "shutil", "tempfile", "multiprocessing", "ctypes", "fcntl", "mmap",
             "sys", "psutil", "redis", "click", "prometheus_client", "concurrent", "ssl", "http",
             "urllib", "glob", "sched", "secrets", "uuid"}


def imported_modules(path, package="vipd.core"):
    """Absolute names of the modules `path` imports, relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                yield f"{base}.{node.module}" if node.module else base
            else:
                yield node.module


def problems(mods, where):
    out = []
    for mod in mods:
        top = mod.split(".")[0]
        if top in FORBIDDEN:
            out.append(f"{where} imports {mod}")
        if top == "vipd" and mod != "vipd" and not (mod == "vipd.core" or mod.startswith("vipd.core.")):
            out.append(f"{where} imports {mod} from outside core")
    return out


def test_core_imports_no_io():
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 5
    found = [p for f in files for p in problems(imported_modules(f), f.name)]
    assert found == []


def test_relative_and_hidden_imports_are_seen(tmp_path):
    """The check itself: the imports the first version of this test missed are caught."""
    text = (CORE / "policy.py").read_text()
    tmp = tmp_path / "policy.py"
    for bad in ("from ..net import rawsock", "import logging", "from datetime import datetime",
                "import pathlib", "import io", "def f():\n    import socket"):
        tmp.write_text(text + "\n" + bad + "\n")
        assert problems(imported_modules(tmp), "probe"), bad
    assert problems(imported_modules(CORE / "policy.py"), "policy.py") == []


LOADED = """
import json, pkgutil, sys
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
import vipd.core
for m in pkgutil.iter_modules(vipd.core.__path__):
    __import__("vipd.core." + m.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_core_loads_no_io_in_a_fresh_interpreter():
    # pkgutil and json are loaded by the probe itself, before and apart from core
    out = subprocess.run([sys.executable, "-I", "-S", "-c", "import json, pkgutil\n" + LOADED,
                          str(REPO)], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "vipd.core.instance" in loaded and "vipd.core.packet" in loaded
    assert problems(loaded, "importing vipd.core") == []


def test_daemon_import_path_has_no_scapy():
    code = ("import sys, vipd.daemon, vipd.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scapy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
