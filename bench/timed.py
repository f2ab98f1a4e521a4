"""Runs a command and prints its wall seconds and peak RSS (KiB) on stdout; exits with its code.

A separate, small process because Linux carries a process's peak RSS over fork and exec: timed
straight from bench/run.py (which holds DuckDB and query results), every command would report
at least run.py's own peak.
"""

import os
import subprocess
import sys
import time

start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(f"{time.monotonic() - start} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
