"""Settings as an operator meets them, and the proxy client-certificate decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from csms.config import Settings
from csms.configtools import describe_error, effective_config, redact_url
from csms.proxy_auth import is_trusted_proxy, parse_dn, proxied_transport, verified_client_cert

from .test_cli import run


# ----------------------------------------------------------------------------- settings
def error_of(**kw) -> str:
    with pytest.raises((ValidationError, ValueError)) as info:
        Settings(**kw)
    return describe_error(info.value)


def test_wrong_settings_name_the_variable():
    assert error_of(ocpp_port=70000).startswith("CSMS_OCPP_PORT=70000:")
    assert "CSMS_TRUSTED_PROXIES" in error_of(trusted_proxies="10.0.0.0/8, nonsense")
    msg = error_of(retention_years=3)
    assert msg.startswith("CSMS_RETENTION_YEARS:") and "CSMS_RETENTION_OVERRIDE" in msg
    assert error_of(embedded_db=False).startswith("CSMS_DATABASE_URL:")
    assert "CSMS_SHUTDOWN_TIMEOUT" in error_of(shutdown_timeout=0)
    msg = error_of(commit_writers=10, db_pool_size=10)  # the writers would hold every connection
    assert msg.startswith("CSMS_COMMIT_WRITERS:") and "db_pool_size" in msg
    assert Settings(commit_writers=9, db_pool_size=10).commit_writers == 9
    # a bad database URL is reported without echoing it (it may hold a password)
    assert "secret" not in error_of(database_url=["postgresql://u:secret@h/db"])


def test_settings_values():
    s = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8 ,::1", retention_years=3, retention_override=True)
    assert s.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert Settings(trusted_proxies='["192.168.1.0/24"]').trusted_proxies == ["192.168.1.0/24"]
    defaults = Settings()
    assert (defaults.retention_years, defaults.shutdown_timeout, defaults.embedded_db) == (5, 30.0, True)


def test_config_file(tmp_path: Path, monkeypatch):
    toml = tmp_path / "csms.toml"
    toml.write_text('ocpp_port = 9100\nretention_years = 7\ntrusted_proxies = ["10.1.0.0/16"]\n')
    monkeypatch.setenv("CSMS_CONFIG_FILE", str(toml))
    monkeypatch.setenv("CSMS_RETENTION_YEARS", "8")  # the environment wins over the file
    s = Settings()
    assert (s.ocpp_port, s.retention_years, s.trusted_proxies) == (9100, 8, ["10.1.0.0/16"])
    toml.write_text("ocpp_prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting.*ocpp_prot"):
        Settings()
    envfile = tmp_path / "csms.env"
    envfile.write_text("CSMS_API_PORT=8111\n")
    monkeypatch.setenv("CSMS_CONFIG_FILE", str(envfile))
    assert Settings().api_port == 8111
    monkeypatch.setenv("CSMS_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="CSMS_CONFIG_FILE"):
        Settings()


def test_effective_config_redacts():
    rows = {r["setting"]: r for r in effective_config(Settings(database_url="postgresql://csms:hunter2@db:5432/csms",
                                                                retention_years=6))}
    assert rows["database_url"]["value"] == "postgresql://csms:***@db:5432/csms"
    assert rows["retention_years"] == {**rows["retention_years"], "value": 6, "default": 5, "source": "set"}
    assert rows["ocpp_port"]["source"] == "default"
    assert set(rows) == set(Settings.model_fields)
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_cli_config_show():
    env = {"CSMS_DATABASE_URL": "postgresql://csms:hunter2@db:5432/csms", "CSMS_EMBEDDED_DB": "false",
           "CSMS_TRUSTED_PROXIES": "127.0.0.1"}
    code, out, err = await run(None, "config", "show", env=env)
    assert code == 0, err
    assert "hunter2" not in out and "postgresql://csms:***@db:5432/csms" in out
    assert "CSMS_EMBEDDED_DB" in out and "false" in out and "CSMS_RETENTION_YEARS" in out
    code, out, err = await run(None, "config", "show", "--json", env=env)
    rows = {r["variable"]: r for r in map(json.loads, out.splitlines())}
    assert rows["CSMS_TRUSTED_PROXIES"]["value"] == ["127.0.0.1/32"] and "hunter2" not in out
    code, out, err = await run(None, "config", "show", env={"CSMS_SHUTDOWN_TIMEOUT": "-1"})
    assert code == 2 and "CSMS_SHUTDOWN_TIMEOUT=-1" in err
    code, out, err = await run(None, "serve", env={"CSMS_EMBEDDED_DB": "false"})
    assert code == 2 and "CSMS_DATABASE_URL" in err


# ----------------------------------------------------------------------------- proxy client certificates
TRUSTING = Settings(trusted_proxies="127.0.0.1,10.0.0.0/8")
GOOD = {"X-Client-Cert-Verify": "SUCCESS", "X-Client-Cert-Subject": "CN=CP-0001,O=Yangquan Charging,C=CN",
        "X-Forwarded-Proto": "https"}


def test_trusted_proxy_matching():
    assert is_trusted_proxy("127.0.0.1", ["127.0.0.1/32"])
    assert is_trusted_proxy("10.2.3.4", ["10.0.0.0/8"])
    assert is_trusted_proxy("::ffff:10.2.3.4", ["10.0.0.0/8"])  # IPv4-mapped
    assert not is_trusted_proxy("11.0.0.1", ["10.0.0.0/8"])
    assert not is_trusted_proxy("::1", ["127.0.0.1/32"])
    assert not is_trusted_proxy(None, ["127.0.0.1/32"]) and not is_trusted_proxy("junk", ["127.0.0.1/32"])
    assert not is_trusted_proxy("127.0.0.1", [])


def test_verified_client_cert():
    cert = verified_client_cert("10.1.1.1", GOOD, TRUSTING)
    assert cert is not None and cert.common_name == "CP-0001" and cert.matches("CP-0001")
    assert not cert.matches("CP-0002") and cert.proxy == "10.1.1.1"
    assert verified_client_cert("192.0.2.9", GOOD, TRUSTING) is None           # anyone else: ignored
    assert verified_client_cert("10.1.1.1", GOOD, Settings()) is None          # no proxy configured
    assert verified_client_cert("10.1.1.1", {**GOOD, "X-Client-Cert-Verify": "NONE"}, TRUSTING) is None
    assert verified_client_cert("10.1.1.1", {**GOOD, "X-Client-Cert-Verify": "FAILED:expired"}, TRUSTING) is None
    assert verified_client_cert("10.1.1.1", {**GOOD, "X-Client-Cert-Subject": ""}, TRUSTING) is None
    assert verified_client_cert("10.1.1.1", {"X-Client-Cert-Verify": "SUCCESS"}, TRUSTING) is None
    # a header sent twice (a client's and the proxy's) is never believed
    doubled = {"x-client-cert-verify": "SUCCESS", "x-client-cert-subject": ["CN=EVIL", "CN=CP-0001"]}
    assert verified_client_cert("10.1.1.1", doubled, TRUSTING) is None
    # the header names are settings
    custom = Settings(trusted_proxies="127.0.0.1", client_cert_header="X-SSL-Client-DN",
                      client_verify_header="X-SSL-Verify")
    assert verified_client_cert("127.0.0.1", {"X-SSL-Verify": "SUCCESS", "X-SSL-Client-DN": "CN=A"}, custom).common_name == "A"
    # websockets' own header type
    from websockets.datastructures import Headers

    assert verified_client_cert("127.0.0.1", Headers(GOOD), TRUSTING).common_name == "CP-0001"


def test_proxied_transport():
    assert proxied_transport("192.0.2.9", GOOD, TRUSTING) is None
    t = proxied_transport("127.0.0.1", GOOD, TRUSTING)
    assert t.tls and t.common_name == "CP-0001"
    t = proxied_transport("127.0.0.1", {**GOOD, "X-Forwarded-Proto": "http"}, TRUSTING)
    assert not t.tls and t.certificate is None  # a certificate claim without TLS means nothing
    t = proxied_transport("127.0.0.1", {"X-Forwarded-Proto": "https", "X-Client-Cert-Verify": "NONE"}, TRUSTING)
    assert t.tls and t.certificate is None      # profile 2 behind the proxy


def test_parse_dn():
    assert parse_dn("CN=CP-1,O=Op,C=CN") == (("CN", "CP-1"), ("O", "Op"), ("C", "CN"))
    assert parse_dn(r"CN=Smith\, John,O=A\2CB") == (("CN", "Smith, John"), ("O", "A,B"))
    assert parse_dn("/C=CN/O=Op/CN=CP-2") == (("C", "CN"), ("O", "Op"), ("CN", "CP-2"))
    assert parse_dn("CN=a+SERIALNUMBER=42") == (("CN", "a"), ("SERIALNUMBER", "42"))
