"""Settings: environment variables with the ``CSMS_`` prefix, or an optional TOML/.env file.

Every setting is documented in the README's configuration table. A wrong value
fails at start with a message naming the setting.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    commit_writers: int = Field(2, ge=1, le=32, description="concurrent group-commit writers")
    commit_max_batch: int = Field(1000, ge=1, description="most messages per group commit")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="log level")


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit *overrides* taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
