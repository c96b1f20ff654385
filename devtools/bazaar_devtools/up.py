"""``make up``: migrate, seed and run the whole platform in the foreground; Ctrl-C stops it all."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time

import urllib3
from honcho.manager import Manager

from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from bazaar_devtools.platform import GATEWAY, SERVICES, Platform, PlatformConfig


def banner(platform: Platform) -> str:
    gateway = f"http://127.0.0.1:{platform.config.gateway_port}"
    lines = [
        "",
        "Bazaar is up.",
        f"  Gateway (the only public entry point): {gateway}",
        f"  API docs (offline):                    {gateway}/api/docs",
        f"  Gateway admin:                         {gateway}/admin/",
    ]
    for proc in platform.procs:
        if proc.kind == "web" and proc.service != GATEWAY.name:
            lines.append(f"  {proc.name:<10} admin: {proc.url}/admin/")
    lines += [
        f"  Redis: {platform.redis_url}" + ("  (embedded)" if platform.embedded_redis else ""),
        "  Databases: " + ("PostgreSQL" if platform.config.database_url else f"SQLite under {platform.var_dir}"),
        "",
        f"  Demo accounts (password: {DEMO_PASSWORD}):",
        *(f"    {account.email:<24} roles: {', '.join(account.roles)}" for account in DEMO_ACCOUNTS),
        "",
        "  One more instance of a service:  make instance SERVICE=catalog",
        "  Stop everything:                 Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def announce_when_ready(platform: Platform) -> None:
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=0.5, read=2))
    deadline = time.monotonic() + 120
    pending = [proc for proc in platform.procs if proc.kind == "web"]
    while pending and time.monotonic() < deadline:
        still = []
        for proc in pending:
            try:
                if http.request("GET", f"{proc.url}/readyz").status != 200:
                    still.append(proc)
            except urllib3.exceptions.HTTPError:
                still.append(proc)
        pending = still
        time.sleep(0.5)
    if pending:
        print(f"Not ready after 120s: {', '.join(p.name for p in pending)}", file=sys.stderr, flush=True)
    else:
        print(banner(platform), flush=True)


def write_state(platform: Platform) -> None:
    """What ``make instance`` needs to start one more instance into this running platform."""
    state = {
        "redis_url": platform.redis_url,
        "broker_url": platform.broker_url,
        "database_url": platform.config.database_url,
        "var_dir": str(platform.var_dir),
    }
    (platform.var_dir / "platform.json").write_text(json.dumps(state, indent=2))


def main() -> int:
    platform = Platform(PlatformConfig.from_env())
    platform.start_redis_if_needed()
    try:
        print("Migrating databases…", flush=True)
        platform.prepare_databases()
        seeded = platform.seed_demo_data()
        print(f"Demo data checked/seeded for: {', '.join(seeded) or 'none'}", flush=True)
        write_state(platform)
        manager = Manager()
        for proc in platform.initial_procs():
            platform.procs.append(proc)
            manager.add_process(proc.name, shlex.join(proc.command), env=proc.env, cwd=str(proc.cwd))
        threading.Thread(target=announce_when_ready, args=(platform,), daemon=True).start()
        manager.loop()
        return manager.returncode or 0
    finally:
        if platform.embedded_redis:
            platform.embedded_redis.stop()
        (platform.var_dir / "platform.json").unlink(missing_ok=True)


if __name__ == "__main__":
    assert SERVICES  # the launcher knows every service
    sys.exit(main())
