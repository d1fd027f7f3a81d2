"""Shared by the comparison benches (benches/compare_*.sh): time one child process."""

import os
import subprocess
import sys
import time


def timed(cmd, stdout):
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    with open(stdout, "w") as f:
        child = subprocess.Popen(cmd, stdout=f)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed; see {stdout}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def load():
    """The 1-minute load average, to say how busy the machine was."""
    return os.getloadavg()[0]
