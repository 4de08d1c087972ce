"""Sans-I/O codec for the T/CEC 102-2016 (part 4) message envelope.

Nothing in this module performs network or disk I/O. It turns Python objects
into the JSON envelopes exchanged with a supervision platform and back, and
leaves transport, token handling, persistence and replay bookkeeping to the
caller.

Request envelope (``POST {base}/evcs/v{version}/{interface}``)::

    {"OperatorID": "...", "Data": "<base64>", "TimeStamp": "yyyyMMddHHmmss",
     "Seq": "0001", "Sig": "<32 upper-case hex digits>"}

Response envelope::

    {"Ret": 0, "Msg": "...", "Data": "<base64>", "Sig": "<32 hex>"}

* ``Data`` is the interface's JSON object, serialised compactly
  (``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8), encrypted with
  AES-128-CBC and PKCS#7 padding under ``DataSecret`` / ``DataSecretIV`` and
  Base64-encoded (standard alphabet, with padding).
* ``Sig`` is ``HEX_UPPER(HMAC-MD5(SigSecret, OperatorID + Data + TimeStamp +
  Seq))`` for requests and ``HEX_UPPER(HMAC-MD5(SigSecret, str(Ret) + Msg +
  Data))`` for responses, where ``Data`` is the Base64 text. Strings are
  encoded as UTF-8 before hashing.

Security notes (properties of the standard, not choices of this module): the
IV is static per counterpart, so equal plaintexts give equal ciphertexts; and
MD5-HMAC is the only integrity check. Because the signature covers the
ciphertext and is verified *before* decryption, a peer without ``SigSecret``
cannot use padding errors as an oracle. Replay protection (a window on
``TimeStamp`` and uniqueness of ``(OperatorID, TimeStamp, Seq)``) is stateful
and therefore the caller's job; :func:`open_request` returns both fields for
that purpose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from enum import IntEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CONTENT_TYPE",
    "SHANGHAI",
    "PlatformError",
    "Request",
    "Response",
    "Ret",
    "SeqExhaustedError",
    "SeqGenerator",
    "Secrets",
    "Stamp",
    "decode_request",
    "decode_response",
    "decrypt_data",
    "dumps_data",
    "dumps_envelope",
    "encode_request",
    "encode_response",
    "encrypt_data",
    "error_response",
    "loads_data",
    "open_request",
    "request_sig",
    "response_sig",
]

#: ``Content-Type`` header value for both requests and responses.
CONTENT_TYPE = "application/json;charset=utf-8"

#: Time zone of ``TimeStamp`` values (Beijing time).
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Ret(IntEnum):
    """``Ret`` codes of the response envelope (T/CEC 102.4)."""

    BUSY = -1
    """System busy; the request may be retried later."""
    OK = 0
    """Request succeeded."""
    SIG_ERROR = 4001
    """Signature error."""
    TOKEN_ERROR = 4002
    """Token error; the client fetches a new token with ``query_token``."""
    PARAM_ERROR = 4003
    """Missing or invalid POST (envelope) parameters."""
    BUSINESS_ERROR = 4004
    """Invalid business parameters (content of ``Data``)."""
    SYSTEM_ERROR = 500
    """System error."""


# Generic messages. The 4001 message is deliberately identical for an unknown
# OperatorID, a wrong Sig and Data that fails to decrypt, so a caller cannot
# learn which of the counterpart's secrets (or whether the OperatorID) is wrong.
_MSG_SIG = "invalid signature"


def _as_ret(code: int) -> int:
    """*code* as a :class:`Ret` member when known, else as a plain int."""
    try:
        return Ret(code)
    except ValueError:
        return int(code)


class PlatformError(Exception):
    """A failure to be reported to the peer as ``Ret``/``Msg``.

    :param ret: one of the :class:`Ret` codes.
    :param msg: human-readable message, safe to send to the peer (it never
        contains secret material).
    """

    def __init__(self, ret: int, msg: str) -> None:
        super().__init__(ret, msg)
        self.ret = int(ret)
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.ret} {self.msg}"


class SeqExhaustedError(RuntimeError):
    """More than 9999 requests were stamped within one second."""


@dataclass(frozen=True, repr=False)
class Secrets:
    """The four secrets agreed with one counterpart.

    :param operator_secret: ``OperatorSecret``, sent in ``query_token``.
    :param data_secret: ``DataSecret``, the AES-128 key; 16 bytes in UTF-8.
    :param data_secret_iv: ``DataSecretIV``, the CBC IV; 16 bytes in UTF-8.
    :param sig_secret: ``SigSecret``, the HMAC-MD5 key; non-empty.

    :raises ValueError: if a secret has the wrong type or length. The message
        names the field, never its value.

    ``repr()`` and ``str()`` never show the values.
    """

    operator_secret: str
    data_secret: str
    data_secret_iv: str
    sig_secret: str
    _key: bytes = field(init=False, compare=False)
    _iv: bytes = field(init=False, compare=False)
    _sig_key: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("operator_secret", "data_secret", "data_secret_iv", "sig_secret"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"Secrets.{name} must be a str")
        key = self.data_secret.encode("utf-8")
        iv = self.data_secret_iv.encode("utf-8")
        if len(key) != 16:
            raise ValueError("Secrets.data_secret must be 16 bytes (AES-128 key)")
        if len(iv) != 16:
            raise ValueError("Secrets.data_secret_iv must be 16 bytes (AES block)")
        if not self.sig_secret:
            raise ValueError("Secrets.sig_secret must not be empty")
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_iv", iv)
        object.__setattr__(self, "_sig_key", self.sig_secret.encode("utf-8"))

    def __repr__(self) -> str:
        return (
            "Secrets(operator_secret=<redacted>, data_secret=<redacted>, "
            "data_secret_iv=<redacted>, sig_secret=<redacted>)"
        )

    __str__ = __repr__


# ---------------------------------------------------------------------------
# TimeStamp / Seq


class Stamp(NamedTuple):
    """A ``(TimeStamp, Seq)`` pair, e.g. ``Stamp("20160729142400", "0001")``."""

    timestamp: str
    seq: str


_TIMESTAMP_RE = re.compile(r"[0-9]{14}")
_SEQ_RE = re.compile(r"[0-9]{4}")
_SIG_RE = re.compile(r"[0-9A-Fa-f]{32}")


def _valid_timestamp(value: str) -> bool:
    if not _TIMESTAMP_RE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


class SeqGenerator:
    """Produces ``(TimeStamp, Seq)`` pairs for outgoing requests.

    ``TimeStamp`` is the clock's time in *tz* formatted ``yyyyMMddHHmmss``.
    ``Seq`` is ``"0001"`` for the first request of a second and counts up by one
    for each further request within the same second.

    * If the clock steps backwards to a second earlier than the last one used,
      the generator keeps stamping with the last second and keeps counting, so
      ``(TimeStamp, Seq)`` pairs stay unique and non-decreasing.
    * A 10 000th request within one second raises :class:`SeqExhaustedError`
      instead of producing a five-digit or repeated ``Seq``; the caller should
      throttle.

    :param clock: returns the current time. An aware datetime is converted to
        *tz*; a naive one is taken as already being in *tz*. Defaults to the
        system clock.
    :param tz: time zone of ``TimeStamp`` (default ``Asia/Shanghai``).

    Instances are callable and thread-safe.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo = SHANGHAI,
    ) -> None:
        self._clock = clock if clock is not None else (lambda: datetime.now(tz))
        self._tz = tz
        self._lock = threading.Lock()
        self._second: str | None = None
        self._count = 0

    def __call__(self) -> Stamp:
        """Return the next :class:`Stamp`."""
        now = self._clock()
        if now.tzinfo is not None and now.utcoffset() is not None:
            now = now.astimezone(self._tz)
        second = now.strftime("%Y%m%d%H%M%S")
        with self._lock:
            if self._second is None or second > self._second:
                self._second = second
                self._count = 0
            if self._count >= 9999:
                raise SeqExhaustedError(
                    f"more than 9999 requests within second {self._second}"
                )
            self._count += 1
            return Stamp(self._second, f"{self._count:04d}")


_default_seq = SeqGenerator()


# ---------------------------------------------------------------------------
# Data: JSON, AES, signatures


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError("non-finite Decimal in payload")
        # float's repr is the shortest string that round-trips, so values with
        # at most 15 significant digits (all prices, kWh and money amounts)
        # appear on the wire exactly as their Decimal value (without trailing
        # zeros: Decimal("12.30") is written 12.3).
        return float(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def dumps_data(payload: Mapping[str, Any]) -> bytes:
    """Serialise *payload* as the plaintext of ``Data``.

    Compact separators, non-ASCII characters kept as UTF-8 (station names are
    Chinese), ``NaN``/``Infinity`` refused, :class:`~decimal.Decimal` written
    as a JSON number.

    :raises TypeError: if *payload* is not a mapping or holds values JSON
        cannot represent.
    :raises ValueError: for non-finite numbers.
    """
    if not isinstance(payload, Mapping):
        raise TypeError("payload must be a mapping (a JSON object)")
    text = json.dumps(
        dict(payload),
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )
    return text.encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def loads_data(plaintext: bytes) -> dict[str, Any]:
    """Parse decrypted ``Data`` into a dict.

    :raises PlatformError: ``4004`` if *plaintext* is not UTF-8, not strict
        JSON (``NaN``, trailing commas ... are refused) or not a JSON object.
    """
    try:
        value = json.loads(plaintext.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise PlatformError(Ret.BUSINESS_ERROR, "Data is not valid JSON") from None
    if not isinstance(value, dict):
        raise PlatformError(Ret.BUSINESS_ERROR, "Data must be a JSON object")
    return value


def encrypt_data(plaintext: bytes, secrets: Secrets) -> str:
    """AES-128-CBC encrypt *plaintext* with PKCS#7 padding; return Base64 text."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secrets._key), modes.CBC(secrets._iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(ciphertext).decode("ascii")


def _b64_ciphertext(data: str) -> bytes | None:
    """Strictly decode Base64 ``Data``; None unless it is whole AES blocks."""
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    if not raw or len(raw) % 16:
        return None
    return raw


def decrypt_data(data: str, secrets: Secrets) -> bytes:
    """Base64-decode and AES-128-CBC decrypt ``Data``; return the plaintext bytes.

    :raises PlatformError: ``4003`` if *data* is not Base64 of whole AES blocks;
        ``4001`` (with the same message as a bad signature) if the padding is
        wrong, which means the data key or IV does not match.
    """
    raw = _b64_ciphertext(data)
    if raw is None:
        raise PlatformError(Ret.PARAM_ERROR, "Data is not Base64 AES ciphertext")
    decryptor = Cipher(algorithms.AES(secrets._key), modes.CBC(secrets._iv)).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise PlatformError(Ret.SIG_ERROR, _MSG_SIG) from None


def _hmac_md5_upper(secrets: Secrets, message: str) -> str:
    return hmac.new(secrets._sig_key, message.encode("utf-8"), hashlib.md5).hexdigest().upper()


def request_sig(secrets: Secrets, operator_id: str, data: str, timestamp: str, seq: str) -> str:
    """``HEX_UPPER(HMAC-MD5(SigSecret, OperatorID + Data + TimeStamp + Seq))``."""
    return _hmac_md5_upper(secrets, operator_id + data + timestamp + seq)


def response_sig(secrets: Secrets, ret: int, msg: str, data: str) -> str:
    """``HEX_UPPER(HMAC-MD5(SigSecret, str(Ret) + Msg + Data))``."""
    return _hmac_md5_upper(secrets, str(int(ret)) + msg + data)


def _sig_matches(expected: str, received: str) -> bool:
    # Both are 32 ASCII hex characters at this point (format checked first);
    # accept lower-case hex from lenient peers.
    return hmac.compare_digest(expected.encode("ascii"), received.upper().encode("ascii"))


# ---------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Request:
    """A verified, decrypted request.

    :ivar operator_id: the sender's ``OperatorID``.
    :ivar payload: the decrypted ``Data`` object.
    :ivar timestamp: ``TimeStamp`` as sent (``yyyyMMddHHmmss``, validated).
    :ivar seq: ``Seq`` as sent (4 digits, validated).
    """

    operator_id: str
    payload: dict[str, Any]
    timestamp: str
    seq: str


def encode_request(
    operator_id: str,
    payload: Mapping[str, Any],
    secrets: Secrets,
    *,
    now: Callable[[], Stamp | tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Build a signed request envelope.

    :param operator_id: our ``OperatorID`` (9-character organisation code).
    :param payload: the interface's input object; see :func:`dumps_data`.
    :param secrets: the secrets agreed with the platform.
    :param now: source of ``(TimeStamp, Seq)``, normally a shared
        :class:`SeqGenerator`; defaults to a module-wide generator on the
        system clock. Tests pass ``lambda: ("20160729142400", "0001")``.
    :returns: ``{"OperatorID", "Data", "TimeStamp", "Seq", "Sig"}``, all str;
        serialise it with :func:`dumps_envelope`.
    :raises ValueError: for an empty *operator_id* or a malformed stamp.
    """
    if not isinstance(operator_id, str) or not operator_id:
        raise ValueError("operator_id must be a non-empty str")
    timestamp, seq = (now if now is not None else _default_seq)()
    if not (isinstance(timestamp, str) and isinstance(seq, str)) or not (
        _valid_timestamp(timestamp) and _SEQ_RE.fullmatch(seq)
    ):
        raise ValueError("stamp must be (yyyyMMddHHmmss, 4 digits)")
    data = encrypt_data(dumps_data(payload), secrets)
    return {
        "OperatorID": operator_id,
        "Data": data,
        "TimeStamp": timestamp,
        "Seq": seq,
        "Sig": request_sig(secrets, operator_id, data, timestamp, seq),
    }


def _parse_envelope(body: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise PlatformError(Ret.PARAM_ERROR, "body is not UTF-8") from None
    if not isinstance(body, str):
        raise PlatformError(Ret.PARAM_ERROR, "body must be a JSON object")
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except ValueError:
        raise PlatformError(Ret.PARAM_ERROR, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise PlatformError(Ret.PARAM_ERROR, "body must be a JSON object")
    return value


def _str_field(envelope: Mapping[str, Any], name: str) -> str:
    value = envelope.get(name)
    if value is None:
        raise PlatformError(Ret.PARAM_ERROR, f"missing {name}")
    if not isinstance(value, str):
        raise PlatformError(Ret.PARAM_ERROR, f"{name} must be a string")
    return value


def open_request(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    lookup_secrets: Callable[[str], Secrets | None],
) -> Request:
    """Validate, authenticate and decrypt a request envelope.

    Checks run in this order, and the first failure raises
    :class:`PlatformError`:

    1. ``4003`` -- *body* is not UTF-8 JSON, not an object, or a field is
       missing or malformed: ``OperatorID`` (non-empty string), ``Data``
       (string, strict Base64 of whole 16-byte blocks), ``TimeStamp``
       (14 digits forming a real date-time), ``Seq`` (4 digits), ``Sig``
       (32 hex digits). All of these are judged without any secret.
    2. ``4001`` -- ``lookup_secrets(OperatorID)`` returned None (unknown
       operator), or ``Sig`` does not match (constant-time comparison), or
       ``Data`` does not decrypt to correctly padded plaintext. The three cases
       share one message, so a caller learns neither whether the OperatorID
       exists nor which of its secrets is wrong. Unknown operators get 4001
       rather than 4003 for that reason: without a SigSecret the signature
       cannot be verified.
    3. ``4004`` -- the plaintext is not UTF-8 strict JSON or not an object.
       Validation of the object's business fields is left to the interface
       handler, which raises ``PlatformError(Ret.BUSINESS_ERROR, ...)`` itself.

    :param body: the raw HTTP body, or an already parsed JSON object.
    :param lookup_secrets: maps an OperatorID to its :class:`Secrets`, or None
        if unknown. Exceptions it raises propagate unchanged.
    :returns: the :class:`Request`. ``TimeStamp`` and ``Seq`` are checked for
        format only; replay checks are the caller's.
    """
    envelope = _parse_envelope(body)
    operator_id = _str_field(envelope, "OperatorID")
    data = _str_field(envelope, "Data")
    timestamp = _str_field(envelope, "TimeStamp")
    seq = _str_field(envelope, "Seq")
    sig = _str_field(envelope, "Sig")
    if not operator_id:
        raise PlatformError(Ret.PARAM_ERROR, "OperatorID must not be empty")
    if _b64_ciphertext(data) is None:
        raise PlatformError(Ret.PARAM_ERROR, "Data is not Base64 AES ciphertext")
    if not _valid_timestamp(timestamp):
        raise PlatformError(Ret.PARAM_ERROR, "TimeStamp must be yyyyMMddHHmmss")
    if not _SEQ_RE.fullmatch(seq):
        raise PlatformError(Ret.PARAM_ERROR, "Seq must be 4 digits")
    if not _SIG_RE.fullmatch(sig):
        raise PlatformError(Ret.PARAM_ERROR, "Sig must be 32 hex digits")

    secrets = lookup_secrets(operator_id)
    if secrets is None:
        raise PlatformError(Ret.SIG_ERROR, _MSG_SIG)
    if not _sig_matches(request_sig(secrets, operator_id, data, timestamp, seq), sig):
        raise PlatformError(Ret.SIG_ERROR, _MSG_SIG)
    payload = loads_data(decrypt_data(data, secrets))
    return Request(operator_id, payload, timestamp, seq)


def decode_request(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    lookup_secrets: Callable[[str], Secrets | None],
) -> tuple[str, dict[str, Any]]:
    """Return ``(operator_id, payload)`` of a request; see :func:`open_request`.

    :raises PlatformError: 4003, 4001 or 4004 as described in
        :func:`open_request`.
    """
    request = open_request(body, lookup_secrets)
    return request.operator_id, request.payload


# ---------------------------------------------------------------------------
# Responses


@dataclass(frozen=True)
class Response:
    """A verified, decrypted response.

    :ivar ret: ``Ret`` (a :class:`Ret` member when the code is known).
    :ivar msg: ``Msg``.
    :ivar payload: decrypted ``Data``, or None when ``Data`` was empty.
    :ivar signed: False only for an accepted unsigned error response.
    """

    ret: int
    msg: str
    payload: dict[str, Any] | None
    signed: bool = True

    @property
    def ok(self) -> bool:
        """True if ``Ret`` is 0."""
        return self.ret == Ret.OK

    def raise_for_ret(self) -> None:
        """Raise :class:`PlatformError` ``(ret, msg)`` unless ``Ret`` is 0."""
        if self.ret != Ret.OK:
            raise PlatformError(self.ret, self.msg)


def encode_response(
    ret: int,
    msg: str,
    payload: Mapping[str, Any] | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """Build a response envelope ``{"Ret", "Msg", "Data", "Sig"}``.

    :param ret: a :class:`Ret` code (written as a JSON integer).
    :param msg: ``Msg``; included verbatim in the signature.
    :param payload: the interface's output object, or None for ``Data: ""``.
    :param secrets: the requester's secrets. None produces an *unsigned*
        envelope (``Sig: ""``), which is only allowed without a payload; use it
        for errors where the requester is unknown or not authenticated
        (4001/4003), so that the reply does not reveal whether the OperatorID
        is known.
    :raises ValueError: for a payload without secrets.
    """
    if isinstance(ret, bool) or not isinstance(ret, int):
        raise TypeError("ret must be an int")
    if not isinstance(msg, str):
        raise TypeError("msg must be a str")
    ret = _as_ret(ret)
    if payload is None:
        data = ""
    elif secrets is None:
        raise ValueError("a payload needs secrets to be encrypted")
    else:
        data = encrypt_data(dumps_data(payload), secrets)
    sig = response_sig(secrets, ret, msg, data) if secrets is not None else ""
    return {"Ret": int(ret), "Msg": msg, "Data": data, "Sig": sig}


def error_response(error: PlatformError, secrets: Secrets | None = None) -> dict[str, Any]:
    """Response envelope for *error*, without ``Data``; unsigned by default."""
    return encode_response(error.ret, error.msg, None, secrets)


def decode_response(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    secrets: Secrets,
) -> Response:
    """Validate, authenticate and decrypt a response envelope.

    ``Sig`` must match, except for one case: a response with ``Ret != 0``,
    empty ``Data`` and empty ``Sig`` is accepted as an unsigned error
    (``Response.signed`` is False) because platforms may answer 4001/4002/4003
    before they know who is asking. Such a response carries no payload, so
    forging one achieves no more than dropping the request.

    A non-zero ``Ret`` is returned, not raised: the caller decides (retry on
    -1, refresh the token on 4002; see :meth:`Response.raise_for_ret`).

    :raises PlatformError: ``4003`` for a malformed envelope, ``4001`` for a
        bad signature or undecryptable ``Data``, ``4004`` for ``Data`` that is
        not a JSON object.
    """
    envelope = _parse_envelope(body)
    ret = envelope.get("Ret")
    if isinstance(ret, bool) or not isinstance(ret, int):
        raise PlatformError(Ret.PARAM_ERROR, "Ret must be an integer")
    msg = _str_field(envelope, "Msg")
    data = _str_field(envelope, "Data")
    sig = _str_field(envelope, "Sig")
    ret = _as_ret(ret)
    if ret != Ret.OK and data == "" and sig == "":
        return Response(ret, msg, None, signed=False)
    if data and _b64_ciphertext(data) is None:
        raise PlatformError(Ret.PARAM_ERROR, "Data is not Base64 AES ciphertext")
    if not _SIG_RE.fullmatch(sig):
        raise PlatformError(Ret.PARAM_ERROR, "Sig must be 32 hex digits")
    if not _sig_matches(response_sig(secrets, ret, msg, data), sig):
        raise PlatformError(Ret.SIG_ERROR, _MSG_SIG)
    payload = loads_data(decrypt_data(data, secrets)) if data else None
    return Response(ret, msg, payload)


def dumps_envelope(envelope: Mapping[str, Any]) -> bytes:
    """Serialise a request or response envelope as a UTF-8 HTTP body."""
    return json.dumps(dict(envelope), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
