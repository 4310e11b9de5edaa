"""Shared by every test: the netns lab on sys.path, and fixtures that build labs and remove them.

A test that uses a lab is marked `lab` (so `-m "not lab"` leaves them out); without root it fails
with a message saying why, rather than being skipped. A lab that leaks (a namespace, or a process
still running in one of its namespaces, after teardown) fails the test that made it.
"""
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "netns-lab"))

from lab import Lab  # noqa: E402
from lableaks import teardown_leaks  # noqa: E402


def pytest_collection_modifyitems(items):
    for item in items:
        if "lab_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)


def pytest_runtest_setup(item):
    if item.get_closest_marker("lab") and os.geteuid() != 0:
        pytest.fail("lab tests need root (they create network namespaces): run them as root, "
                    "or deselect them with -m 'not lab'", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.lab_call_failed = report.failed
    return report


@pytest.fixture
def lab_factory(request):
    """make(hosts=2, **Lab kwargs) -> a Lab that is up; every lab made is taken down afterwards.
    When the test failed, the end of each lab process's log is printed into the report;
    VIPD_LAB_KEEP=1 keeps each lab's work directory (configs, logs, captures) for a look."""
    labs = []

    def make(hosts: int = 2, **kw) -> Lab:
        kw.setdefault("keep", os.environ.get("VIPD_LAB_KEEP") == "1")
        lab = Lab(hosts=hosts, **kw)
        labs.append(lab)
        return lab.up()

    yield make
    leaks = []
    for lab in labs:
        if getattr(request.node, "lab_call_failed", False):
            print(f"\n===== logs of lab {lab.prefix} ({lab.workdir})\n{lab.logs()}")
        leaks += teardown_leaks(lab)
    if leaks:
        pytest.fail("lab teardown leaked: " + "; ".join(leaks), pytrace=False)


@pytest.fixture
def lab(lab_factory) -> Lab:
    """Two hosts and a client."""
    return lab_factory(hosts=2)
