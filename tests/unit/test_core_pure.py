"""vipd/core is sans-IO: it imports no module that does I/O or reads the clock, and nothing from
the rest of vipd. The daemon's import path carries no scapy."""
import ast
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[2] / "vipd" / "core"
FORBIDDEN = {"socket", "time", "asyncio", "subprocess", "pyroute2", "scapy", "select",
             "threading", "os", "selectors", "signal", "random"}


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""


def test_core_imports_no_io():
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 5
    for f in files:
        for mod in imported_modules(f):
            top = mod.split(".")[0]
            assert top not in FORBIDDEN, f"{f.name} imports {mod}"
            if top == "vipd":
                assert mod.startswith("vipd.core"), f"{f.name} imports {mod} from outside core"


def test_daemon_import_path_has_no_scapy():
    code = ("import sys, vipd.daemon, vipd.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scapy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
