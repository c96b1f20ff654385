"""``make instance SERVICE=catalog``: start one more instance into the running platform.

It registers itself in discovery; the gateway sends it traffic within a few seconds, with no
restart and no configuration change. When ``make up`` runs a Prometheus, the instance adds its
metrics port to Prometheus's targets (a file of its own in ``var/prometheus/targets/``, removed
when it stops). Ctrl-C stops it (it deregisters on the way out).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bazaar_devtools.platform import BY_NAME, Platform, PlatformConfig, launcher_alive, read_state
from bazaar_devtools.prometheus import Prometheus


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in BY_NAME:
        print(f"usage: python -m bazaar_devtools.instance <{'|'.join(BY_NAME)}>", file=sys.stderr)
        return 2
    config = PlatformConfig.from_env()
    state = read_state(config.var_dir)
    if not launcher_alive(state):
        print("The platform is not running (start it with `make up`).", file=sys.stderr)
        return 1
    assert state is not None
    config.redis_url = str(state["redis_url"])
    config.broker_url = str(state["broker_url"])
    config.database_url = str(state["database_url"]) if state["database_url"] else None
    if state.get("prometheus_url"):
        config.extra_env["PROMETHEUS_URL"] = str(state["prometheus_url"])  # as the launcher's processes have it
    platform = Platform(config)
    platform.redis_url, platform.broker_url = config.redis_url, config.broker_url or config.redis_url
    # Ports already taken by running instances are skipped.
    platform._next_replica[argv[0]] = 1
    proc = platform.start_instance(argv[0])
    targets = None
    if state.get("prometheus_url"):
        targets = Prometheus(config.var_dir / "prometheus").write_targets(f"instance-{proc.instance_id}", [proc])
    print(f"{proc.name} ({proc.instance_id}) is up at {proc.url}; logs: {proc.log_path}", flush=True)
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    try:
        while proc.alive:
            time.sleep(1)
    finally:
        if targets is not None:
            targets.unlink(missing_ok=True)
        platform.stop(proc)
        print(f"{proc.name} stopped (deregistered, in-flight requests finished)", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
