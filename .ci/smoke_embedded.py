"""CI smoke test of the embedded-database path, as a newcomer runs it.

With no CSMS_DATABASE_URL: register a charger, start ``csms serve`` (which
starts the embedded PostgreSQL), run a simulated charger through a complete
transaction, check ``csms sessions list`` shows it with the right energy, stop
the server with SIGTERM, and check the embedded PostgreSQL stopped too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def csms(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "csms"), *args], env=env, capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        sys.exit(f"csms {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port} after {timeout} s")


def postgres_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    return Path(f"/proc/{pid}").exists()


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="csms-smoke-", dir="/tmp"))
    data_dir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    ocpp_port, api_port = free_port(), free_port()
    env.update(CSMS_DATA_DIR=str(data_dir), CSMS_OCPP_PORT=str(ocpp_port), CSMS_API_PORT=str(api_port))
    server = None
    try:
        csms("chargers", "add", "SMOKE-0001", "--password", "smoke-secret", env=env)
        csms("idtags", "add", "SMOKETAG", env=env)
        assert not postgres_running(data_dir), "a CLI command left the embedded server running"
        server = subprocess.Popen([str(BIN / "csms"), "serve"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        wait_port(ocpp_port)
        sim = csms("simulate", "--url", f"ws://127.0.0.1:{ocpp_port}/ocpp", "--chargers", "1",
                   "--prefix", "SMOKE", "--password", "smoke-secret", "--id-tag", "SMOKETAG",
                   "--samples", "3", "--meter-interval", "0.2", "--fault-rate", "0", env=env)
        report = json.loads(sim.stdout.strip().splitlines()[-1])
        measured = report["sessions"][0]["energy_wh"]
        listed = [json.loads(line) for line in csms("sessions", "list", "--json", env=env).stdout.splitlines()]
        assert len(listed) == 1, listed
        assert listed[0]["energy_wh"] == measured and measured > 0, (listed, measured)
        assert listed[0]["charge_point_id"] == "SMOKE-0001" and listed[0]["stopped_at"]
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        output = server.stdout.read()
        assert code == 0, f"csms serve exited {code}:\n{output}"
        assert not postgres_running(data_dir), "embedded PostgreSQL still running after SIGTERM"
        print(f"embedded smoke test ok: session energy {measured} Wh, embedded PostgreSQL stopped")
    finally:
        if server and server.poll() is None:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
