"""Client certificates verified by a TLS-terminating reverse proxy (security profile 3 behind nginx).

When nginx terminates TLS it verifies the charger's client certificate and
passes the result to the node in two headers (names configurable)::

    X-Client-Cert-Verify:  SUCCESS                       ($ssl_client_verify)
    X-Client-Cert-Subject: CN=CP-0001,O=Operator,C=CN    ($ssl_client_s_dn, RFC 2253)

Anyone can send those headers, so they are believed **only** when the TCP
peer is one of ``CSMS_TRUSTED_PROXIES``; from any other address they are
ignored (and logged). :func:`verified_client_cert` is the whole decision, free
of I/O::

    cert = verified_client_cert(peer_host, request.headers, settings)
    if profile == 3 and not (cert and cert.matches(cp_id)): refuse

nginx must *set* (not append) both headers so that a value sent by the
client never passes through: ``proxy_set_header`` does that.

:func:`proxied_transport` is what the OCPP handshake needs: whether the
charger's connection to the proxy was TLS (``X-Forwarded-Proto: https`` from a
trusted proxy — security profile 2 behind nginx) and the verified certificate
(profile 3)::

    tls, cn = ssl_object is not None, cn_of(ssl_object)
    if not tls and (proxied := proxied_transport(peer_host(ws.remote_address), request.headers, settings)):
        tls, cn = proxied.tls, proxied.common_name
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["ClientCertificate", "ProxiedTransport", "proxied_transport", "verified_client_cert", "is_trusted_proxy",
           "parse_dn", "peer_host"]

log = logging.getLogger("csms.proxy_auth")


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    subject: str                 # the subject DN as the proxy sent it
    attributes: tuple[tuple[str, str], ...]
    proxy: str                   # the proxy's address

    @property
    def common_name(self) -> str | None:
        return next((v for k, v in reversed(self.attributes) if k.upper() == "CN"), None)

    def matches(self, charge_point_id: str) -> bool:
        """The certificate's CN is the charger's identity (OCPP security profile 3)."""
        return self.common_name == charge_point_id


@lru_cache(maxsize=64)
def _networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def is_trusted_proxy(peer: str | None, proxies: Iterable[str]) -> bool:
    """Is *peer* (an IP address, IPv4-mapped IPv6 allowed) inside one of *proxies* (addresses/CIDRs)?"""
    if not peer:
        return False
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in _networks(tuple(proxies)) if net.version == addr.version)


def peer_host(remote_address: Any) -> str | None:
    """The host part of a socket's remote address (``("1.2.3.4", 5678)`` or an IPv6 4-tuple)."""
    try:
        return str(remote_address[0])
    except (TypeError, IndexError):
        return None


def parse_dn(dn: str) -> tuple[tuple[str, str], ...]:
    """Split an RFC 2253/4514 distinguished name into ``(type, value)`` pairs, unescaping values.

    Also accepts the legacy OpenSSL one-line form ``/C=CN/O=Op/CN=CP-1``.
    """
    dn = dn.strip()
    if dn.startswith("/"):
        parts = [p for p in dn.split("/") if p]
        return tuple((k.strip(), v) for k, _, v in (p.partition("=") for p in parts))
    out: list[tuple[str, str]] = []
    key, value, in_value, i = "", [], False, 0
    while i < len(dn):
        ch = dn[i]
        if ch == "\\" and i + 1 < len(dn):
            nxt = dn[i + 1:i + 3]
            if len(nxt) == 2 and all(c in "0123456789abcdefABCDEF" for c in nxt):
                value.append(chr(int(nxt, 16)))
                i += 3
                continue
            value.append(dn[i + 1])
            i += 2
            continue
        if not in_value and ch == "=":
            in_value = True
        elif not in_value:
            key += ch
        elif ch in ",+;":
            out.append((key.strip(), "".join(value).strip()))
            key, value, in_value = "", [], False
        else:
            value.append(ch)
        i += 1
    if key.strip():
        out.append((key.strip(), "".join(value).strip()))
    return tuple(out)


def _values(headers: Any, name: str) -> list[str]:
    if hasattr(headers, "get_all"):  # websockets.datastructures.Headers
        return list(headers.get_all(name))
    if hasattr(headers, "getlist"):  # starlette Headers
        return list(headers.getlist(name))
    if isinstance(headers, Mapping):  # {name: value} or {name: [values]}
        lowered = name.lower()
        out: list[str] = []
        for k, v in headers.items():
            if k.lower() == lowered:
                out.extend(v if isinstance(v, (list, tuple)) else [v])
        return out
    return []


def verified_client_cert(peer: str | None, headers: Any, settings: Any) -> ClientCertificate | None:
    """The client certificate a trusted proxy verified for this request, or None.

    *peer* is the TCP peer's IP address, *headers* the request headers
    (websockets, starlette or a plain mapping), *settings* anything with
    ``trusted_proxies``, ``client_cert_header`` and ``client_verify_header``.
    None when the peer is not a trusted proxy, the proxy did not report
    ``SUCCESS``, the subject is missing/empty, or a header appears more than once.
    """
    subjects = _values(headers, settings.client_cert_header)
    verdicts = _values(headers, settings.client_verify_header)
    if not subjects and not verdicts:
        return None
    if not is_trusted_proxy(peer, settings.trusted_proxies):
        log.warning("client-certificate headers from an untrusted peer ignored", extra={"peer": peer})
        return None
    if len(subjects) != 1 or len(verdicts) != 1:
        return None
    if verdicts[0].strip().upper() != "SUCCESS" or not subjects[0].strip():
        return None
    attributes = parse_dn(subjects[0])
    if not attributes:
        return None
    return ClientCertificate(subjects[0].strip(), attributes, peer or "")


FORWARDED_PROTO = "X-Forwarded-Proto"


@dataclass(frozen=True, slots=True)
class ProxiedTransport:
    """What a trusted TLS-terminating proxy says about the charger's own connection."""

    tls: bool
    certificate: ClientCertificate | None

    @property
    def common_name(self) -> str | None:
        return self.certificate.common_name if self.certificate else None


def proxied_transport(peer: str | None, headers: Any, settings: Any) -> ProxiedTransport | None:
    """None unless *peer* is a trusted proxy; else whether the charger used TLS, and its verified certificate.

    TLS is believed when the proxy sent exactly one ``X-Forwarded-Proto`` and it is ``https``.
    """
    if not is_trusted_proxy(peer, settings.trusted_proxies):
        return None
    protos = _values(headers, FORWARDED_PROTO)
    tls = len(protos) == 1 and protos[0].strip().lower() == "https"
    return ProxiedTransport(tls, verified_client_cert(peer, headers, settings) if tls else None)
