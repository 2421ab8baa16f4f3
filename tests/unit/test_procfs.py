"""The one ``/proc`` reader, on real processes this test starts (and ends, by PID)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ghostpanel_kernel import _procfs

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux only")

# Above the largest pid_max Linux allows (2**22): no process has it.
NO_SUCH_PID = 2**22 + 1


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    """A shell that runs two sleeps (its $0 has a space and parentheses)."""
    shell = subprocess.Popen(
        ["sh", "-c", "sleep 30 & sleep 30 & wait", "odd (name) here"],
        stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while len(_procfs.descendants(shell.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield shell
    finally:
        for entry in _procfs.descendants(shell.pid):
            os.kill(entry.pid, signal.SIGKILL)
        shell.kill()
        shell.wait()


def test_descendants_are_the_tree_below_a_process(tree: subprocess.Popen[bytes]) -> None:
    below = _procfs.descendants(tree.pid)
    assert len(below) == 2
    assert {entry.parent for entry in below} == {tree.pid}
    for entry in below:
        assert _procfs.command_line(entry.pid) == ["sleep", "30"]
        assert entry.started.isdigit() and entry.state in "RS"
        assert _procfs.read_process(entry.pid) == entry  # the same process, read again
    mine = _procfs.descendants(os.getpid())
    assert {entry.pid for entry in below} <= {entry.pid for entry in mine}
    assert tree.pid in {entry.pid for entry in mine}


def test_a_process_is_read_whatever_its_name_and_arguments(
        tree: subprocess.Popen[bytes]) -> None:
    entry = _procfs.read_process(tree.pid)
    assert entry is not None and entry.parent == os.getpid()
    assert _procfs.command_line(tree.pid) == [
        "sh", "-c", "sleep 30 & sleep 30 & wait", "odd (name) here"]
    assert tree.pid in set(_procfs.process_ids())
    assert _procfs.process_table()[tree.pid] == entry


def test_a_command_name_with_parentheses_and_spaces_does_not_shift_the_fields() -> None:
    # /proc/PID/stat writes the name in parentheses, unescaped: "(x) 1 2 (y)".
    code = ("import sys, time; open('/proc/self/comm', 'w').write('x) 1 2 (y'); "
            "print(flush=True); time.sleep(30)")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"\n"
            entry = _procfs.read_process(child.pid)
            assert entry is not None and entry.parent == os.getpid() and entry.state in "RS"
        finally:
            child.kill()


def test_a_zombie_and_a_gone_process_do_not_run() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _procfs.is_running(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    zombie = _procfs.read_process(child.pid)  # ended, not reaped yet
    assert zombie is not None and zombie.state == "Z"
    assert not _procfs.is_running(child.pid)
    assert _procfs.command_line(child.pid) == []
    child.wait()
    assert _procfs.read_process(NO_SUCH_PID) is None
    assert _procfs.command_line(NO_SUCH_PID) is None
    assert not _procfs.is_running(NO_SUCH_PID)
    assert _procfs.descendants(NO_SUCH_PID) == []
    assert _procfs.is_running(os.getpid())
