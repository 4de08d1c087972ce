"""Real deployment pieces for the tests: nginx with the shipped config, `csms serve` nodes, a small PKI."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CSMS = str(Path(sys.executable).parent / "csms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_tool(name: str, *fallbacks: str) -> str:
    """The program's path; skipped when missing, except in CI (``CI`` set), where it is a failure."""
    path = shutil.which(name) or next((f for f in fallbacks if os.access(f, os.X_OK)), None)
    if path:
        return path
    message = f"{name} is not installed (deploy/ci-prereqs.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# ----------------------------------------------------------------------------- PKI
@dataclass
class Pki:
    dir: Path
    ca: Path            # charger CA (nginx ssl_client_certificate) — also signs the server certificate here
    server_cert: Path
    server_key: Path
    charger_cert: Path  # CN=<cp id>, signed by the charger CA
    charger_key: Path
    rogue_cert: Path    # the same CN, signed by another CA
    rogue_key: Path

    def client_context(self, with_cert: bool | str = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert == "rogue":
            ctx.load_cert_chain(self.rogue_cert, self.rogue_key)
        elif with_cert:
            ctx.load_cert_chain(self.charger_cert, self.charger_key)
        return ctx


def make_pki(directory: Path, charger_cn: str) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str, org: str = "Test Operator") -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, public_key, issuer, issuer_key, ca: bool, san=None, client=False):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(path: Path, obj) -> Path:
        if hasattr(obj, "private_bytes"):
            data = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        else:
            data = obj.public_bytes(serialization.Encoding.PEM)
        path.write_bytes(data)
        path.chmod(0o644)
        return path

    ca_key, rogue_ca_key = key(), key()
    ca = cert(name("Test Charger CA"), ca_key.public_key(), name("Test Charger CA"), ca_key, True)
    rogue_ca = cert(name("Rogue CA", "Rogue"), rogue_ca_key.public_key(), name("Rogue CA", "Rogue"),
                    rogue_ca_key, True)
    server_key, charger_key, rogue_key = key(), key(), key()
    server = cert(name("localhost"), server_key.public_key(), ca.subject, ca_key, False,
                  san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    charger = cert(name(charger_cn), charger_key.public_key(), ca.subject, ca_key, False, client=True)
    rogue = cert(name(charger_cn, "Rogue"), rogue_key.public_key(), rogue_ca.subject, rogue_ca_key, False,
                 client=True)
    return Pki(directory, write(directory / "charger-ca.crt", ca), write(directory / "server.crt", server),
               write(directory / "server.key", server_key), write(directory / "charger.crt", charger),
               write(directory / "charger.key", charger_key), write(directory / "rogue.crt", rogue),
               write(directory / "rogue.key", rogue_key))


# ----------------------------------------------------------------------------- nginx
def _replace(text: str, old: str, new: str, what: str) -> str:
    assert old in text, f"deploy/nginx/{what} no longer contains {old!r}: update the test's rendering"
    return text.replace(old, new)


@dataclass
class Nginx:
    dir: Path
    http_port: int
    https_port: int
    bin: str
    process: asyncio.subprocess.Process | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ocpp"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ocpp"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        check = await asyncio.create_subprocess_exec(
            self.bin, "-t", "-q", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await check.communicate()
        assert check.returncode == 0, f"nginx -t failed: {err.decode()}"
        self.process = await asyncio.create_subprocess_exec(
            self.bin, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        for port in (self.http_port, self.https_port):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if self.process.returncode is not None or time.monotonic() > deadline:
                        raise AssertionError(f"nginx did not start:\n{self.error_log}") from None
                    await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def render_nginx(directory: Path, bin: str, pki: Pki, ocpp_upstreams: list[int], http_upstreams: list[int]) -> Nginx:
    """The shipped deploy/nginx files with test ports and paths, under a minimal main config."""
    directory.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    conf = (DEPLOY / "nginx" / "csms.conf").read_text()
    conf = _replace(conf, "listen 80;", f"listen 127.0.0.1:{http_port};", "csms.conf")
    conf = _replace(conf, "listen [::]:80;\n", "", "csms.conf")
    conf = _replace(conf, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", "csms.conf")
    conf = _replace(conf, "listen [::]:443 ssl;\n", "", "csms.conf")
    conf = _replace(conf, "/etc/csms/tls/", f"{pki.dir}/", "csms.conf")
    conf = _replace(conf, "/etc/nginx/csms/locations.conf", str(directory / "locations.conf"), "csms.conf")
    (directory / "csms.conf").write_text(conf)
    shutil.copy(DEPLOY / "nginx" / "locations.conf", directory / "locations.conf")

    ups = (DEPLOY / "nginx" / "upstreams.conf").read_text()
    for i, port in enumerate(ocpp_upstreams, start=1):
        ups = _replace(ups, f"server 127.0.0.1:900{i} ", f"server 127.0.0.1:{port} ", "upstreams.conf")
    for i, port in enumerate(http_upstreams, start=1):
        ups = _replace(ups, f"server 127.0.0.1:800{i} ", f"server 127.0.0.1:{port} ", "upstreams.conf")
    (directory / "upstreams.conf").write_text(ups)

    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(f"""{user}worker_processes 1;
daemon off;
master_process on;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/tmp/client_body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    include {directory}/csms.conf;
    include {directory}/upstreams.conf;
}}
""")
    return Nginx(directory, http_port, https_port, bin)


# ----------------------------------------------------------------------------- csms serve
@dataclass
class Node:
    """A ``csms serve`` process."""

    name: str
    db_url: str
    log_dir: Path
    ocpp_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> str:
        path = self.log_dir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
        env.update({
            "CSMS_DATABASE_URL": self.db_url, "CSMS_EMBEDDED_DB": "false", "CSMS_NODE_ID": self.name,
            "CSMS_OCPP_HOST": "127.0.0.1", "CSMS_OCPP_PORT": str(self.ocpp_port),
            "CSMS_API_HOST": "127.0.0.1", "CSMS_API_PORT": str(self.api_port),
            "CSMS_TRUSTED_PROXIES": "127.0.0.1", "CSMS_SHUTDOWN_TIMEOUT": "10", "CSMS_LEASE_SECONDS": "30",
            "CSMS_HEARTBEAT_INTERVAL": "60", "CSMS_MAINTENANCE_INTERVAL": "0", "CSMS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        try:
            self.process = await asyncio.create_subprocess_exec(CSMS, "serve", env=self.env(), stdout=out,
                                                                stderr=asyncio.subprocess.STDOUT)
        finally:
            out.close()

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{self.log}")
                try:
                    r = await client.get(f"http://127.0.0.1:{self.api_port}/readyz")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.log}")
                await asyncio.sleep(0.1)

    async def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        return code, time.monotonic() - started

    async def kill(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
