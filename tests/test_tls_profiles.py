"""Security profiles 1-3 with real certificates over real sockets.

Every test makes its own throwaway CA and certificates with the ``cryptography``
package; no certificate or key is committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from csms.app import CsmsApp
from csms.config import Settings
from csms.simulator import connect
from csms.simulator_v2x import charger_class

from .conftest import free_port, make_settings, wait_for

VERSIONS = ["1.6", "2.0.1", "2.1"]
NOW = dt.datetime.now(dt.timezone.utc)


# ----------------------------------------------------------------------------- throwaway PKI
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "csms test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> "CA":
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        path = directory / f"{name}.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, path)

    def issue(self, directory: Path, cn: str, server: bool = False, expired: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (NOW - dt.timedelta(days=60), NOW - dt.timedelta(days=30)) if expired else (
            NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30))
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        name = f"{cn}-{'expired' if expired else 'valid'}-{self.cert.subject.rfc4514_string()[-8:]}"
        return _write(directory / name.replace("=", "_").replace(",", "_"), cert, key)


@dataclass
class PKI:
    ca: CA
    rogue: CA
    server: tuple[Path, Path]
    directory: Path

    def client(self, cn: str, expired: bool = False, rogue: bool = False) -> ssl.SSLContext:
        """A charger's TLS context trusting our CA, presenting a certificate for *cn*."""
        ctx = self.trusting()
        ctx.load_cert_chain(*(self.rogue if rogue else self.ca).issue(self.directory, cn, expired=expired))
        return ctx

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.path))


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    ca = CA.create(tmp_path, "csms-test-ca")
    rogue = CA.create(tmp_path, "rogue-ca")
    return PKI(ca, rogue, ca.issue(tmp_path, "localhost", server=True), tmp_path)


@dataclass
class TlsCsms:
    app: CsmsApp
    pki: PKI

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.app.gateway.ports[0]}/ocpp"

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.app.gateway.tls_ports[0]}/ocpp"

    async def register(self, cp_id: str, profile: int, password: str | None = None) -> None:
        from csms.passwords import hash_password

        await self.app.pool.execute(
            "INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1,$2,$3)",
            cp_id, hash_password(password) if password else None, profile)

    async def connections(self, cp_id: str) -> int:
        return await self.app.pool.fetchval("SELECT count(*) FROM charger_connections WHERE charge_point_id=$1", cp_id)


@pytest.fixture
async def tls_csms(db_url: str, pki: PKI):
    settings = make_settings(tls_port=0, tls_cert=pki.server[0], tls_key=pki.server[1], tls_client_ca=pki.ca.path)
    app = CsmsApp(settings, db_url)
    await app.start()
    try:
        yield TlsCsms(app, pki)
    finally:
        await app.stop()


async def works(url: str, cp_id: str, version: str, **kw) -> None:
    """Connect as *cp_id*, boot, heartbeat, disconnect."""
    async with await connect(url, cp_id, version, **kw) as ws:
        if version == "1.6":
            from csms.simulator import Charger16

            cp = Charger16(cp_id, ws)
        else:
            cp = charger_class(version)(cp_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            assert (await cp.boot()).status == "Accepted"
        finally:
            task.cancel()


async def refused_with(url: str, cp_id: str, version: str, **kw) -> int:
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(url, cp_id, version, **kw)
    return info.value.response.status_code


async def tls_refused(url: str, cp_id: str, version: str, **kw) -> None:
    """The TLS handshake itself fails: no HTTP answer at all."""
    with pytest.raises(Exception) as info:  # noqa: PT011 - SSL alert, reset or EOF, depending on timing
        async with await connect(url, cp_id, version, **kw) as ws:
            await ws.recv()
    assert not isinstance(info.value, websockets.InvalidStatus), info.value


# ----------------------------------------------------------------------------- profiles
@pytest.mark.parametrize("version", VERSIONS)
async def test_profile_1_basic_auth_on_ws_and_wss(tls_csms, version):
    await tls_csms.register("CP1", 1, "pw-one-1234")
    assert await refused_with(tls_csms.ws_url, "CP1", version) == 401
    await works(tls_csms.ws_url, "CP1", version, password="pw-one-1234")
    await works(tls_csms.wss_url, "CP1", version, password="pw-one-1234", ssl=tls_csms.pki.trusting())


@pytest.mark.parametrize("version", VERSIONS)
async def test_profile_2_tls_with_basic_auth(tls_csms, version):
    pki = tls_csms.pki
    await tls_csms.register("CP2", 2, "pw-two-1234")
    # refused on plain ws, even with the right password
    assert await refused_with(tls_csms.ws_url, "CP2", version, password="pw-two-1234") == 403
    assert await refused_with(tls_csms.wss_url, "CP2", version, ssl=pki.trusting()) == 401
    assert await refused_with(tls_csms.wss_url, "CP2", version, password="wrong", ssl=pki.trusting()) == 401
    # a charger that does not trust our CA refuses the server's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(tls_csms.wss_url, "CP2", version, password="pw-two-1234", ssl=ssl.create_default_context())
    assert await tls_csms.connections("CP2") == 0
    await works(tls_csms.wss_url, "CP2", version, password="pw-two-1234", ssl=pki.trusting())
    row = await tls_csms.app.pool.fetchrow("SELECT ocpp_version, vendor FROM charge_points WHERE id='CP2'")
    assert (row["ocpp_version"], row["vendor"]) == (version, "CSMS-Sim")


@pytest.mark.parametrize("version", VERSIONS)
async def test_profile_3_mutual_tls(tls_csms, version):
    pki = tls_csms.pki
    await tls_csms.register("CP3", 3)
    await tls_csms.register("OTHER", 3)
    assert await refused_with(tls_csms.ws_url, "CP3", version) == 403
    assert await refused_with(tls_csms.wss_url, "CP3", version, ssl=pki.trusting()) == 403  # no certificate
    assert await refused_with(tls_csms.wss_url, "CP3", version, ssl=pki.client("OTHER")) == 403
    await tls_refused(tls_csms.wss_url, "CP3", version, ssl=pki.client("CP3", expired=True))
    await tls_refused(tls_csms.wss_url, "CP3", version, ssl=pki.client("CP3", rogue=True))
    assert await tls_csms.connections("CP3") == 0
    await works(tls_csms.wss_url, "CP3", version, ssl=pki.client("CP3"))
    assert await tls_csms.connections("CP3") == 1


async def test_certificate_for_another_charger_is_refused_whatever_the_profile(tls_csms):
    pki = tls_csms.pki
    await tls_csms.register("OPEN", 0)
    await tls_csms.register("BASIC", 1, "pw-basic-123")
    assert await refused_with(tls_csms.wss_url, "OPEN", "2.0.1", ssl=pki.client("SOMEONE")) == 403
    assert await refused_with(tls_csms.wss_url, "BASIC", "2.0.1", password="pw-basic-123",
                              ssl=pki.client("SOMEONE")) == 403
    await works(tls_csms.wss_url, "OPEN", "2.0.1", ssl=pki.client("OPEN"))
    await works(tls_csms.wss_url, "OPEN", "2.1", ssl=pki.trusting())


async def test_profile_2_without_registered_password_is_refused(tls_csms):
    await tls_csms.register("NOPW", 2)
    assert await refused_with(tls_csms.wss_url, "NOPW", "2.0.1", password="anything",
                              ssl=tls_csms.pki.trusting()) == 401


async def test_garbage_before_the_tls_handshake(tls_csms):
    pki = tls_csms.pki
    await tls_csms.register("CP3", 3)
    port = tls_csms.app.gateway.tls_ports[0]

    def garbage(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(data)
            s.settimeout(5)
            chunks = []
            try:
                while chunk := s.recv(4096):
                    chunks.append(chunk)
            except (ConnectionResetError, TimeoutError):
                pass
            return b"".join(chunks)

    for data in (os.urandom(2048), b"\x16\x03\x01\x00\x05hello", b"GET /ocpp/CP3 HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"\x16\x03\x03" + b"\xff" * 5000):
        reply = await asyncio.to_thread(garbage, data)
        assert b"HTTP/1.1 101" not in reply
    # a plain websocket on the TLS port gets nowhere either
    with pytest.raises(Exception):  # noqa: PT011
        await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{port}/ocpp/CP3", subprotocols=["ocpp2.0.1"],
                                                  open_timeout=5), 10)
    # ... and the server serves everyone as before
    await works(tls_csms.wss_url, "CP3", "2.0.1", ssl=pki.client("CP3"))
    await tls_csms.register("PLAIN", 0)
    await works(tls_csms.ws_url, "PLAIN", "1.6")


async def test_simulated_chargers_over_tls_from_the_cli(tls_csms):
    """`csms simulate` speaks wss://: profile 3 with a client certificate, profile 2 with a password."""
    from .test_cli import run

    pki = tls_csms.pki
    await tls_csms.register("T3-0001", 3)
    await tls_csms.register("T2-0001", 2, password="pw-of-t2-0001")
    await tls_csms.app.pool.execute("INSERT INTO id_tags (id_tag) VALUES ('SIMTAG')")
    cert, key = pki.ca.issue(pki.directory, "T3-0001")
    common = ["simulate", "--url", tls_csms.wss_url, "--ca-file", str(pki.ca.path), "--samples", "2",
              "--meter-interval", "0.02", "--fault-rate", "0"]
    code, out, err = await run(None, *common, "--ocpp", "2.0.1", "--prefix", "T3", "--cert-file", str(cert),
                               "--key-file", str(key))
    assert code == 0, err
    report = json.loads(out)
    assert report["failed_chargers"] == []
    energy = await tls_csms.app.pool.fetchval("SELECT energy_wh FROM sessions WHERE charge_point_id='T3-0001'")
    assert energy == report["sessions"][0]["energy_wh"] > 0
    code, out, err = await run(None, *common, "--ocpp", "1.6", "--prefix", "T2", "--password", "pw-of-t2-0001")
    assert code == 0 and json.loads(out)["failed_chargers"] == [], err
    assert await tls_csms.app.pool.fetchval("SELECT count(*) FROM sessions WHERE charge_point_id='T2-0001'") == 1
    # without the client certificate the profile 3 charger is refused, and the CLI says so
    code, out, err = await run(None, *common, "--ocpp", "2.1", "--prefix", "T3")
    assert code != 0 and "T3-0001" in out + err
    # TLS files on a ws:// URL, or a key without its certificate, are usage errors
    code, _, err = await run(None, "simulate", "--url", tls_csms.ws_url, "--ca-file", str(pki.ca.path))
    assert code == 2 and "wss://" in err
    code, _, err = await run(None, *common, "--key-file", str(key))
    assert code == 2 and "--cert-file" in err


def test_tls_settings_are_checked(tmp_path):
    with pytest.raises(ValidationError, match="tls_cert"):
        Settings(tls_port=9443)
    with pytest.raises(ValidationError, match="no such file"):
        Settings(tls_port=9443, tls_cert=tmp_path / "missing.crt", tls_key=tmp_path / "missing.key")
    assert Settings().tls_port is None


async def test_serve_listens_on_ws_and_wss(db_url, pki):
    ws_port, wss_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env.update(CSMS_DATABASE_URL=db_url, CSMS_OCPP_HOST="127.0.0.1", CSMS_API_ENABLED="false",
               CSMS_LOG_LEVEL="WARNING", CSMS_DATA_DIR=str(pki.directory / "data"))
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "csms"), "serve", "--ocpp-port", str(ws_port), "--tls-port", str(wss_port),
        "--tls-cert", str(pki.server[0]), "--tls-key", str(pki.server[1]), "--tls-client-ca", str(pki.ca.path),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        def listening(port: int) -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        await wait_for(lambda: listening(ws_port) and listening(wss_port), timeout=30, interval=0.1)
        import asyncpg

        conn = await asyncpg.connect(db_url)
        await conn.execute("INSERT INTO charge_points (id, security_profile) VALUES ('A', 0), ('B', 3)")
        await conn.close()
        await works(f"ws://127.0.0.1:{ws_port}/ocpp", "A", "2.0.1")
        await works(f"wss://127.0.0.1:{wss_port}/ocpp", "B", "2.1", ssl=pki.client("B"))
        assert await refused_with(f"ws://127.0.0.1:{ws_port}/ocpp", "B", "2.1") == 403
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode in (0, -15), err.decode()[-2000:]
