"""The leak check that fails a lab test (tests/conftest.py teardown_leaks) catches a leak, and
finds none after an ordinary teardown, even of a process the lab never knew about."""
import os
import signal

import lab as labmod
import labstate
import pytest
from lableaks import teardown_leaks
from labproc import namespace_keys, pids_in

pytestmark = pytest.mark.lab

STRAY = "setsid sleep 1000 </dev/null >/dev/null 2>&1 &"    # not spawned through the lab


def test_teardown_kills_a_stray_process_and_reports_no_leak():
    lab = labmod.Lab(hosts=1).up()
    keys = namespace_keys(lab.namespaces)
    try:
        lab.run(lab.hosts[0], STRAY)
        assert pids_in(keys)
        assert teardown_leaks(lab) == []
    finally:
        lab.down()
        for pid in pids_in(keys):
            os.kill(pid, signal.SIGKILL)


def test_a_process_left_running_is_a_leak(monkeypatch):
    lab = labmod.Lab(hosts=1).up()
    keys = namespace_keys(lab.namespaces)
    try:
        lab.run(lab.hosts[0], STRAY)
        # a teardown that forgets to kill what runs in the namespaces: the names are deleted,
        # the namespace lives on in the process, and the old teardown said nothing
        monkeypatch.setattr(labstate, "kill_in_namespaces", lambda names: [])
        leaks = teardown_leaks(lab, grace=0.3)
        assert len(leaks) == 1 and "still running in its namespace: sleep 1000" in leaks[0], leaks
    finally:
        lab.down()
        for pid in pids_in(keys):
            os.kill(pid, signal.SIGKILL)
