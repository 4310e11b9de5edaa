"""Runners with real processes: timeouts kill the whole group, hooks run in order one at a time,
rise/fall hysteresis, effective priority."""
import asyncio
import os
import sys
import time

import psutil

from vipd.core.tracking import RiseFall, effective_priority
from vipd.hooks import HookQueue, run_program


def test_first_failure_still_needs_fall_in_a_row():
    h = RiseFall(rise=2, fall=2)
    assert not h.update(False) and h.ok is None      # one slow first run: no verdict yet
    assert h.update(False) and h.ok is False
    h = RiseFall(rise=2, fall=2)
    assert not h.update(False) and h.update(True) and h.ok is True


def test_rise_fall_hysteresis():
    h = RiseFall(rise=2, fall=3)
    assert h.update(True) and h.ok is True           # first result decides at once
    assert not h.update(False) and not h.update(False) and h.ok is True
    assert h.update(False) and h.ok is False          # third failure in a row
    assert not h.update(True)
    assert not h.update(False)                        # a failure resets the rise streak
    assert not h.update(True) and h.update(True) and h.ok is True


def test_effective_priority_clamps_and_spares_owner():
    assert effective_priority(100, [-20, -30]) == 50
    assert effective_priority(100, [-200]) == 1
    assert effective_priority(250, [10]) == 254
    assert effective_priority(255, [-100]) == 255


def test_timeout_kills_the_whole_process_group(tmp_path):
    marker = f"vipd-test-{os.getpid()}-{time.monotonic_ns()}"
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/bash\n(exec -a {marker} sleep 300) &\nexec -a {marker} sleep 301\n")
    script.chmod(0o755)
    t0 = time.monotonic()
    res = asyncio.run(run_program([str(script)], timeout=0.5))
    took = time.monotonic() - t0
    assert res.returncode is None and "timed out" in res.output
    assert took < 3.0
    time.sleep(0.2)
    left = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert left == []
    # and no zombie children of ours
    assert [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE] == []


def test_failure_exit_and_first_line_reported():
    res = asyncio.run(run_program([sys.executable, "-c", "print('nginx down\\nmore'); exit(3)"], 5))
    assert res.returncode == 3 and res.output == "nginx down" and not res.ok


def test_missing_program_is_a_failure_not_a_crash(tmp_path):
    res = asyncio.run(run_program([str(tmp_path / "nope")], 1))
    assert res.returncode == 127 and "cannot run" in res.output


def test_hooks_run_in_order_one_at_a_time_last_state_wins(tmp_path):
    log = tmp_path / "log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "start $VIPD_STATE" >> {log}\nsleep 0.3\n'
                    f'echo "end $VIPD_STATE" >> {log}\n')
    hook.chmod(0o755)

    async def burst():
        q = HookQueue("web", timeout=5)
        for state in ("MASTER", "BACKUP", "FAULT", "BACKUP", "MASTER"):
            q.submit(state, (str(hook),), {"VIPD_STATE": state})
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await q.wait_idle(10)
        return q.runs

    runs = asyncio.run(burst())
    lines = log.read_text().split()
    # never two at once: start/end strictly alternate for the same state
    pairs = list(zip(lines[0::4], lines[1::4], lines[2::4], lines[3::4]))
    assert all(a == "start" and c == "end" and b == d for a, b, c, d in pairs)
    states = [s for s, _ in runs]
    assert states[0] == "MASTER" and states[-1] == "MASTER"   # the final state's hook ran last
    assert len(states) == 2                                   # the three in between were skipped
    assert all(rc == 0 for _, rc in runs)


def test_hook_timeout_does_not_block_the_next(tmp_path):
    hook = tmp_path / "slow.sh"
    hook.write_text("#!/bin/sh\n[ \"$VIPD_STATE\" = MASTER ] && sleep 30\nexit 0\n")
    hook.chmod(0o755)

    async def go():
        q = HookQueue("web", timeout=0.3)
        results = {}
        t0 = time.monotonic()
        q.submit("MASTER", (str(hook),), {"VIPD_STATE": "MASTER"},
                 on_done=lambda res: results.setdefault("MASTER", (res, time.monotonic() - t0)))
        await asyncio.sleep(0.05)
        q.submit("BACKUP", (str(hook),), {"VIPD_STATE": "BACKUP"},
                 on_done=lambda res: results.setdefault("BACKUP", (res, time.monotonic() - t0)))
        await asyncio.sleep(0.01)
        await q.wait_idle(10)
        return q.runs, results

    runs, results = asyncio.run(go())
    assert runs == [("MASTER", None), ("BACKUP", 0)]
    (master, master_done), (backup, backup_done) = results["MASTER"], results["BACKUP"]
    # killed at its 0.3 s timeout (reaping a killed sh takes milliseconds; 0.3 s of slack for a
    # loaded machine), and the next hook started right after it
    assert 0.3 <= master.duration < 0.6, master.duration
    assert master_done < 0.6 and backup_done - master_done < 0.5, (master_done, backup_done)


def test_runner_never_blocks_the_loop():
    """While a hanging check runs, is killed at its timeout and reaped, the loop keeps ticking at
    10 ms (adverts are never delayed). The ticks go on until the run has returned, so the kill
    and the reaping after it are inside the measured span, not only the wait before them."""
    async def go():
        ticks = []
        task = asyncio.create_task(run_program(["sleep", "5"], timeout=0.5))
        while not task.done():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
        ticks.append(time.monotonic())
        return task.result(), ticks

    res, ticks = asyncio.run(go())
    assert res.returncode is None and "timed out" in res.output       # the kill path ran
    assert 0.5 <= res.duration < 2.0, res.duration
    assert ticks[-1] - ticks[0] >= 0.5                                # ticked across the kill
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.1, max(gaps)
