"""Settings: environment variables with the ``CSMS_`` prefix, or an optional TOML/.env file.

Every setting is documented in the README's configuration table. A wrong value
fails at start with a message naming the setting.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "load_settings"]


def _default_data_dir() -> Path:
    """``~/.local/share/csms``; as root ``/var/lib/csms`` (the embedded PostgreSQL then runs as an
    unprivileged user, which cannot enter root's home)."""
    if "XDG_DATA_HOME" in os.environ:
        return Path(os.environ["XDG_DATA_HOME"]) / "csms"
    if os.geteuid() == 0:
        return Path("/var/lib/csms")
    return Path.home() / ".local" / "share" / "csms"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CSMS_", env_file=None, extra="ignore")

    database_url: str | None = Field(None, description="PostgreSQL URL; unset = embedded PostgreSQL")
    data_dir: Path = Field(default_factory=_default_data_dir, description="embedded database and state")
    embedded_db_port: int | None = Field(None, ge=1, le=65535, description="port of the embedded PostgreSQL")

    ocpp_host: str = Field("0.0.0.0", description="OCPP websocket listen address")
    ocpp_port: int = Field(9000, ge=0, le=65535, description="OCPP ws:// port")
    tls_port: int | None = Field(None, ge=0, le=65535,
                                 description="OCPP wss:// port (security profiles 2 and 3); unset = no TLS")
    tls_cert: Path | None = Field(None, description="PEM server certificate (chain) for wss://")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: Path | None = Field(None, description="PEM CA bundle that signs charger certificates "
                                                         "(security profile 3); unset = no client certificates")
    api_host: str = Field("0.0.0.0", description="HTTP API listen address")
    api_port: int = Field(8000, ge=0, le=65535, description="HTTP API port (0 = any free port)")
    api_enabled: bool = Field(True, description="serve the HTTP API")
    api_max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="largest HTTP request body accepted")
    command_timeout: float = Field(30.0, gt=0, le=3600, description="seconds a charger has to answer a command")
    event_queue_size: int = Field(1000, ge=1, le=1_000_000,
                                  description="live events buffered per SSE client before dropping")

    heartbeat_interval: int = Field(300, ge=10, le=86400, description="seconds, sent in BootNotification")
    max_frame_bytes: int = Field(256 * 1024, ge=1024, description="largest websocket frame accepted")
    node_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
                         description="this node's name in leases and logs")
    lease_seconds: int = Field(90, ge=2, description="a connection lease's lifetime; refreshed every third")
    db_pool_size: int = Field(10, ge=2, le=200, description="database connections per node")
    commit_writers: int = Field(2, ge=1, le=32, description="concurrent group-commit writers (each keeps one "
                                                            "of the db_pool_size connections)")
    commit_max_batch: int = Field(1000, ge=1, description="most messages per group commit")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="log level")

    # Operations (deploy/README.md): embedded default, shutdown, proxies, retention, backups.
    embedded_db: bool = Field(True, description="start the embedded PostgreSQL when CSMS_DATABASE_URL is "
                                                "unset; production sets false")
    shutdown_timeout: float = Field(30.0, gt=0, le=3600,
                                    description="seconds a SIGTERM shutdown may take before the process exits")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated addresses/CIDRs of reverse proxies whose "
                                          "client-certificate headers are believed")
    client_cert_header: str = Field("X-Client-Cert-Subject", pattern=r"^[A-Za-z0-9-]+$",
                                    description="header carrying the proxy-verified client certificate subject")
    client_verify_header: str = Field("X-Client-Cert-Verify", pattern=r"^[A-Za-z0-9-]+$",
                                      description="header carrying the proxy's verification result (SUCCESS)")
    retention_years: int = Field(5, ge=1, le=100, description="years of operating data kept (city rule: >= 5)")
    retention_override: bool = Field(False, description="allow retention_years below 5")
    partitions_ahead_months: int = Field(12, ge=1, le=120, description="monthly partitions kept created ahead")
    maintenance_interval: float = Field(21600, ge=0, description="seconds between automatic maintenance runs "
                                                                 "(one node at a time); 0 = off")
    pg_bin_dir: Path | None = Field(None, description="directory holding pg_dump/pg_restore; unset = found "
                                                      "automatically for the server's major version")

    # T/CEC 102 supervision-platform link and tariffs (csms/tcec102, csms/pricing.py).
    secret_key: SecretStr | None = Field(None, description="passphrase that encrypts platform secrets at rest; "
                                                           "unset = a key generated in data_dir/secret.key")
    tcec_enabled: bool = Field(True, description="run the T/CEC 102 outbox sender and scheduler on this node")
    tcec_token_ttl: int = Field(86400, ge=60, le=7 * 86400,
                                description="lifetime (s) of tokens issued by our query_token, at most 7 days")
    tcec_charge_status_interval: float = Field(300, gt=0, description="seconds between "
                                               "notification_equip_charge_status pushes of a running session")
    tcec_retry_base: float = Field(1.0, gt=0, description="first retry delay (s) of an undelivered notification")
    tcec_retry_cap: float = Field(300.0, gt=0, description="longest retry delay (s); backoff doubles up to it")
    tcec_reconcile_interval: float = Field(5.0, gt=0, description="seconds between checks for offline "
                                           "chargers, registry changes and due charge-status pushes")
    tcec_request_timeout: float = Field(10.0, gt=0, description="HTTP timeout (s) of one call to a platform")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {item!r}") from None
        return out

    @model_validator(mode="after")
    def _operations_consistent(self) -> "Settings":
        if self.retention_years < 5 and not self.retention_override:
            raise ValueError(f"retention_years: {self.retention_years} is below the 5-year city rule; set "
                             "CSMS_RETENTION_OVERRIDE=true to allow it")
        if not self.embedded_db and not self.database_url:
            raise ValueError("database_url: required when CSMS_EMBEDDED_DB=false")
        if self.commit_writers >= self.db_pool_size:
            raise ValueError(f"commit_writers: {self.commit_writers} must be below db_pool_size "
                             f"({self.db_pool_size}); each writer keeps a connection, the rest need some too")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """Explicit values, then ``CSMS_*`` variables, then the file named by ``CSMS_CONFIG_FILE``."""
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        path = os.environ.get("CSMS_CONFIG_FILE")
        if path:
            sources.append(_config_file_source(settings_cls, Path(path)))
        return tuple(sources)


    @model_validator(mode="after")
    def _tls_complete(self) -> "Settings":
        if self.tls_port is not None and (self.tls_cert is None or self.tls_key is None):
            raise ValueError("tls_port needs tls_cert and tls_key (CSMS_TLS_CERT, CSMS_TLS_KEY)")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            if self.tls_port is not None and path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        return self


def _config_file_source(settings_cls, path: Path):
    """The optional settings file: TOML (``*.toml``, keys are setting names) or a ``CSMS_*=value`` env file."""
    from pydantic_settings import DotEnvSettingsSource, TomlConfigSettingsSource

    if not path.is_file():
        raise ValueError(f"CSMS_CONFIG_FILE: no such file: {path}")
    if path.suffix == ".toml":
        import tomllib

        try:
            keys = set(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"CSMS_CONFIG_FILE: {path}: {exc}") from None
        unknown = sorted(keys - set(settings_cls.model_fields))
        if unknown:
            raise ValueError(f"CSMS_CONFIG_FILE: {path}: unknown setting(s): {', '.join(unknown)}")
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    return DotEnvSettingsSource(settings_cls, env_file=path, env_prefix="CSMS_")


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit *overrides* taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
