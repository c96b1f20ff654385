"""``make down``: stop the platform ``make up`` runs from this checkout, from any shell.

The launcher is asked to stop (SIGTERM: every process drains and stops, as with Ctrl-C); then
anything still carrying this platform's tag (an earlier run's leftovers, ``make instance``
processes) is stopped too.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bazaar_devtools.platform import PlatformConfig, describe_pid, launcher_alive, read_state
from bazaar_devtools.watchdog import kill_tagged, tagged_pids

LAUNCHER_STOP_SECONDS = 40


def main() -> int:
    var_dir = PlatformConfig.from_env().var_dir
    tag = str(var_dir.resolve())
    state = read_state(var_dir)
    stopped_anything = False
    if launcher_alive(state):
        assert state is not None
        pid = int(state["launcher_pid"])  # type: ignore[call-overload]
        print(f"Stopping the platform (launcher pid {pid}, gateway {state.get('gateway_url')})…", flush=True)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + LAUNCHER_STOP_SECONDS
        while launcher_alive(state) and time.monotonic() < deadline:
            time.sleep(0.2)
        if launcher_alive(state):
            print(f"The launcher did not stop within {LAUNCHER_STOP_SECONDS}s; killing it.", flush=True)
            os.kill(pid, signal.SIGKILL)
        stopped_anything = True
    leftovers = tagged_pids(tag)
    if leftovers:
        print(f"Stopping {len(leftovers)} leftover process(es):", flush=True)
        for pid in leftovers:
            print(f"  {describe_pid(pid)}", flush=True)
        kill_tagged(tag, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while tagged_pids(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        kill_tagged(tag, signal.SIGKILL)
        stopped_anything = True
    print("Stopped." if stopped_anything else f"No platform is running from {var_dir}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
