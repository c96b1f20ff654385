"""Stops whatever is left of a platform once its launcher is gone, however it went.

    python -m bazaar_devtools.watchdog <tag>     (stdin: a pipe whose other end the launcher holds)

The launcher starts it first, in a session of its own, and keeps the write end of its stdin. When
the launcher exits — Ctrl-C, ``make down``, a crash or SIGKILL — the kernel closes that end, the
read here returns, and every process still carrying the platform's tag (``BAZAAR_PLATFORM=<var
dir>`` in its environment: instances, workers, their own children, the embedded Redis) is killed.
The launcher's direct children already die with it (``PR_SET_PDEATHSIG``); this catches their
children, which the kernel would otherwise leave running.

Standard library only, and no Django: it sits idle beside the platform for its whole life.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

TAG_VARIABLE = "BAZAAR_PLATFORM"


def tagged_pids(tag: str) -> list[int]:
    """Every process (readable by this user) whose environment carries ``BAZAAR_PLATFORM=tag``."""
    marker = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if marker in environ.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or another user's
            continue
    return found


def kill_tagged(tag: str, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every tagged process and to its process group; returns the pids."""
    pids = tagged_pids(tag)
    for pid in pids:
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != os.getpgrp():
                os.killpg(group, sig)
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return pids


def main(argv: list[str]) -> int:
    (tag,) = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the launcher, which stops in order
    while sys.stdin.buffer.read(4096):  # returns b"" once the launcher is gone
        pass
    time.sleep(0.2)  # what the launcher stopped in order has gone by now
    for _ in range(3):  # a process that was forking meanwhile may have left a new child
        if not kill_tagged(tag):
            break
        time.sleep(0.3)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
