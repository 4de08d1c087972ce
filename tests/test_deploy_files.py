"""deploy/: compose file, systemd units, env files, Dockerfile, CI script, and the docs, checked as files.

No container engine runs here: `docker-compose config` (Debian's docker-compose 1.29) validates
deploy/compose.yaml against the Compose specification without one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from csms.config import Settings

from .deploy_helpers import DEPLOY, ROOT, require_tool

ENV_LINE = re.compile(r"^(CSMS_[A-Z0-9_]+)=(.*)$")


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = ENV_LINE.match(line)
        assert m, f"{path.name}: not a CSMS_NAME=value line: {line!r}"
        out[m.group(1)] = m.group(2)
    return out


def known(variable: str) -> bool:
    return variable.removeprefix("CSMS_").lower() in Settings.model_fields


def _yaml(text: str, python: str) -> dict:
    """YAML → data, with PyYAML from this environment or from docker-compose's own Python."""
    try:
        import yaml
    except ImportError:
        proc = subprocess.run([python, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
                              input=text, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def compose() -> dict:
    """`docker-compose config`: validated against the Compose specification, interpolated, merged."""
    tool = require_tool("docker-compose")
    proc = subprocess.run([tool, "-f", str(DEPLOY / "compose.yaml"), "config"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert proc.returncode == 0, proc.stderr
    shebang = Path(tool).read_text(errors="replace").splitlines()[0] if Path(tool).is_file() else ""
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "python3"
    return _yaml(proc.stdout, python)


def _mounts(service: dict) -> dict[str, Path]:
    out = {}
    for v in service["volumes"]:
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v["source"], v["target"]
        out[target] = Path(source)
    return out


def test_compose_validates_and_matches_the_systemd_setup(compose):
    services = compose["services"]
    assert {"postgres", "csms-1", "csms-2", "nginx"} <= set(services)
    shared = env_file(DEPLOY / "systemd" / "csms.env.example")
    node_ports = env_file(DEPLOY / "systemd" / "node-1.env.example")
    for name in ("csms-1", "csms-2"):
        node = services[name]
        env = node["environment"]
        # the systemd settings file is the nodes' settings file, with container-specific overrides
        for key, value in shared.items():
            assert key in env, f"{name} lacks {key} from csms.env.example"
        for key in env:
            assert known(key), f"{name}: {key} is not a setting"
        assert set(node_ports) <= set(env)
        assert env["CSMS_EMBEDDED_DB"] == "false"
        assert env["CSMS_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["CSMS_DATABASE_URL"]
        assert env["CSMS_NODE_ID"] == name
        # stop_grace_period beyond the shutdown deadline: SIGKILL never cuts a graceful stop short
        grace = node["stop_grace_period"]
        assert float(grace.rstrip("s")) > float(env.get("CSMS_SHUTDOWN_TIMEOUT", 30))
        assert node["build"]["dockerfile"] == "deploy/Dockerfile"
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
    # nginx's address is the one the nodes trust for client-certificate headers
    nginx_ip = services["nginx"]["networks"]["csms"]["ipv4_address"]
    assert all(services[n]["environment"]["CSMS_TRUSTED_PROXIES"] == nginx_ip for n in ("csms-1", "csms-2"))
    # the nginx config mounted is the shipped one, with upstreams naming the compose services
    mounts = _mounts(services["nginx"])
    assert mounts["/etc/nginx/conf.d/default.conf"].name == "csms.conf"
    assert mounts["/etc/nginx/csms/locations.conf"].name == "locations.conf"
    upstreams = mounts["/etc/nginx/conf.d/upstreams.conf"].read_text()
    for name in ("csms-1", "csms-2"):
        assert f"server {name}:{services[name]['environment']['CSMS_OCPP_PORT']} " in upstreams
        assert f"server {name}:{services[name]['environment']['CSMS_API_PORT']} " in upstreams


def test_upstream_files_have_the_same_structure():
    """upstreams.conf (systemd) and upstreams-compose.conf differ only in addresses."""
    def shape(path: Path) -> list[str]:
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        return [re.sub(r"server \S+ ", "server ADDR ", ln) for ln in lines if ln]

    assert shape(DEPLOY / "nginx" / "upstreams.conf") == shape(DEPLOY / "nginx" / "upstreams-compose.conf")
    systemd_ports = [env_file(DEPLOY / "systemd" / f"node-{i}.env.example") for i in (1, 2)]
    text = (DEPLOY / "nginx" / "upstreams.conf").read_text()
    for ports in systemd_ports:
        assert f"server 127.0.0.1:{ports['CSMS_OCPP_PORT']} " in text
        assert f"server 127.0.0.1:{ports['CSMS_API_PORT']} " in text


def test_nginx_location_settings():
    text = (DEPLOY / "nginx" / "locations.conf").read_text()
    ocpp = text[text.index("location /ocpp/"):text.index("}", text.index("location /ocpp/"))]
    for directive in ("proxy_set_header Upgrade $http_upgrade;", "proxy_http_version 1.1;",
                      "proxy_buffering off;", "proxy_set_header X-Client-Cert-Verify $ssl_client_verify;",
                      "proxy_set_header X-Client-Cert-Subject $ssl_client_s_dn;",
                      "proxy_set_header X-Forwarded-Proto $scheme;"):
        assert directive in ocpp
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", ocpp).group(1))
    assert read_timeout > 2 * Settings.model_fields["heartbeat_interval"].default
    headers = Settings.model_fields
    assert headers["client_cert_header"].default == "X-Client-Cert-Subject"
    assert headers["client_verify_header"].default == "X-Client-Cert-Verify"
    conf = (DEPLOY / "nginx" / "csms.conf").read_text()
    assert "ssl_verify_client optional;" in conf and "ssl_client_certificate" in conf


def test_systemd_units_verify(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    csms = Path(sys.executable).parent / "csms"
    for unit in ("csms@.service", "csms-backup.service", "csms-backup.timer"):
        text = (DEPLOY / "systemd" / unit).read_text().replace("/opt/csms/.venv/bin/csms", str(csms))
        (tmp_path / unit).write_text(text)
    proc = subprocess.run([analyze, "verify", str(tmp_path / "csms@1.service"), str(tmp_path / "csms-backup.service"),
                           str(tmp_path / "csms-backup.timer")], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert proc.returncode == 0 and not problems, problems


def test_systemd_unit_and_env_files():
    unit = (DEPLOY / "systemd" / "csms@.service").read_text()
    shared = env_file(DEPLOY / "systemd" / "csms.env.example")
    assert "EnvironmentFile=/etc/csms/csms.env" in unit and "EnvironmentFile=/etc/csms/node-%i.env" in unit
    assert "Environment=CSMS_NODE_ID=%H-%i" in unit
    assert re.search(r"^Restart=(always|on-failure)$", unit, re.M)
    assert "KillSignal=SIGTERM" in unit
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
    assert stop > float(shared["CSMS_SHUTDOWN_TIMEOUT"])
    # production: a real PostgreSQL, never the embedded one
    assert shared["CSMS_EMBEDDED_DB"] == "false" and shared["CSMS_DATABASE_URL"].startswith("postgresql://")
    for path in (DEPLOY / "systemd").glob("*.env.example"):
        for key in env_file(path):
            assert known(key), f"{path.name}: {key} is not a setting"
    # and the example is a valid configuration
    Settings(**{k.removeprefix("CSMS_").lower(): v for k, v in shared.items()},
             **{k.removeprefix("CSMS_").lower(): v for k, v in env_file(DEPLOY / "systemd" / "node-1.env.example").items()})


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"
    assert re.search(r"^ENTRYPOINT \[\"/opt/csms/\.venv/bin/csms\"\]$", text, re.M)
    assert 'CMD ["serve"]' in text and "STOPSIGNAL SIGTERM" in text and "CSMS_EMBEDDED_DB=false" in text
    assert "/readyz" in text
    # editable install: the migrations are read from the source tree (csms/db.py)
    assert "pip install --no-cache-dir --no-deps -e ." in text


def test_ci_prereqs_script_is_idempotent():
    script = DEPLOY / "ci-prereqs.sh"
    assert script.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        if shutil.which("docker-compose"):
            proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and "present" in proc.stdout


def test_every_setting_is_documented():
    """README's configuration table names every setting; deploy/README.md exists and is linked."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):]
    table = table[:table.index("\n## ", 3)]
    missing = [name for name in Settings.model_fields if f"CSMS_{name.upper()}" not in table]
    assert not missing, f"settings missing from README's configuration table: {missing}"
    rows = [ln for ln in table.splitlines() if ln.startswith("| `CSMS_")]
    named = [v for ln in rows for v in re.findall(r"`(CSMS_[A-Z0-9_]+)`", ln.split("|")[1])]
    assert len(named) == len(set(named)), f"settings documented twice: {sorted({v for v in named if named.count(v) > 1})}"
    assert "deploy/README.md" in readme
    production = (DEPLOY / "README.md").read_text()
    for needle in ("csms@.service", "nginx", "csms db backup", "csms db restore", "csms db maintain",
                   "csms config show", "CSMS_TRUSTED_PROXIES", "SIGTERM", "/readyz", "/metrics"):
        assert needle in production, f"deploy/README.md does not mention {needle}"
