"""OCPP-J framing: the RPC layer shared by OCPP 1.6, 2.0.1 and 2.1, free of I/O.

An OCPP-J message is a JSON array sent as one websocket text frame:

* ``[2, "<uniqueId>", "<Action>", {payload}]``  — CALL
* ``[3, "<uniqueId>", {payload}]``              — CALLRESULT
* ``[4, "<uniqueId>", "<errorCode>", "<errorDescription>", {errorDetails}]`` — CALLERROR
* ``[5, ...]`` CALLRESULTERROR and ``[6, ...]`` SEND exist in OCPP 2.1 only.

:func:`parse` turns a frame into one of the message dataclasses or raises
:class:`FrameError` carrying the error code the receiving side must answer
with. Error code *names* differ between versions (1.6 says
``FormationViolation`` where 2.x says ``FormatViolation``, and 2.x adds
``RpcFrameworkError`` and ``MessageTypeNotSupported``), so codes here are
version-neutral :class:`ErrorKind` values; :func:`error_code` names them for a
version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "Call",
    "CallResult",
    "CallError",
    "Send",
    "Message",
    "ErrorKind",
    "FrameError",
    "parse",
    "encode",
    "error_code",
]

CALL = 2
CALLRESULT = 3
CALLERROR = 4
CALLRESULTERROR = 5  # OCPP 2.1
SEND = 6  # OCPP 2.1

MAX_UNIQUE_ID_LENGTH = 36


class ErrorKind(enum.Enum):
    """Version-neutral CALLERROR codes; see :func:`error_code` for the wire names."""

    FORMAT_VIOLATION = "format"
    GENERIC = "generic"
    INTERNAL = "internal"
    MESSAGE_TYPE_NOT_SUPPORTED = "message_type"
    NOT_IMPLEMENTED = "not_implemented"
    NOT_SUPPORTED = "not_supported"
    OCCURRENCE_CONSTRAINT = "occurrence"
    PROPERTY_CONSTRAINT = "property"
    PROTOCOL_ERROR = "protocol"
    RPC_FRAMEWORK = "rpc_framework"
    SECURITY = "security"
    TYPE_CONSTRAINT = "type"


_CODES_16 = {
    ErrorKind.FORMAT_VIOLATION: "FormationViolation",
    ErrorKind.GENERIC: "GenericError",
    ErrorKind.INTERNAL: "InternalError",
    # OCPP 1.6 has neither RpcFrameworkError nor MessageTypeNotSupported.
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "ProtocolError",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.OCCURRENCE_CONSTRAINT: "OccurenceConstraintViolation",  # sic, 1.6 spelling
    ErrorKind.PROPERTY_CONSTRAINT: "PropertyConstraintViolation",
    ErrorKind.PROTOCOL_ERROR: "ProtocolError",
    ErrorKind.RPC_FRAMEWORK: "FormationViolation",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.TYPE_CONSTRAINT: "TypeConstraintViolation",
}

_CODES_2X = {
    ErrorKind.FORMAT_VIOLATION: "FormatViolation",
    ErrorKind.GENERIC: "GenericError",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "MessageTypeNotSupported",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.OCCURRENCE_CONSTRAINT: "OccurrenceConstraintViolation",
    ErrorKind.PROPERTY_CONSTRAINT: "PropertyConstraintViolation",
    ErrorKind.PROTOCOL_ERROR: "ProtocolError",
    ErrorKind.RPC_FRAMEWORK: "RpcFrameworkError",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.TYPE_CONSTRAINT: "TypeConstraintViolation",
}


def error_code(kind: ErrorKind, version: str) -> str:
    """Return the CALLERROR code string for *kind* in OCPP *version* ("1.6", "2.0.1", "2.1")."""
    return (_CODES_16 if version == "1.6" else _CODES_2X)[kind]


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Send:
    """OCPP 2.1 SEND: an unconfirmed message; the receiver never answers it."""

    unique_id: str
    action: str
    payload: dict[str, Any]


Message = Call | CallResult | CallError | Send


class FrameError(Exception):
    """A frame that cannot be processed.

    ``unique_id`` is the message id to answer with (``"-1"`` when it could not
    be read, as OCPP 2.0.1 part 4 prescribes), or ``None`` when the frame must
    not be answered at all (a malformed CALLRESULT or CALLERROR: answering a
    response with an error is not allowed).
    """

    def __init__(self, kind: ErrorKind, description: str, unique_id: str | None = "-1",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.unique_id = unique_id
        self.details = details or {}


def _unique_id(frame: list[Any]) -> str | None:
    if len(frame) > 1 and isinstance(frame[1], str) and 0 < len(frame[1]) <= MAX_UNIQUE_ID_LENGTH:
        return frame[1]
    return None


def parse(data: str | bytes, version: str) -> Message:
    """Parse one websocket frame into a message.

    Raises :class:`FrameError` for anything that is not a well-formed OCPP-J
    message of *version*. The payload itself is not validated against the
    action's schema here; see :mod:`csms.validation`.
    """
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FrameError(ErrorKind.RPC_FRAMEWORK if version != "1.6" else ErrorKind.FORMAT_VIOLATION,
                         f"invalid JSON: {exc}") from None
    if not isinstance(frame, list) or not frame:
        raise FrameError(ErrorKind.RPC_FRAMEWORK if version != "1.6" else ErrorKind.FORMAT_VIOLATION,
                         "an OCPP-J message must be a non-empty JSON array")
    uid = _unique_id(frame)
    mtype = frame[0]
    if not isinstance(mtype, int) or isinstance(mtype, bool):
        raise FrameError(ErrorKind.RPC_FRAMEWORK if version != "1.6" else ErrorKind.PROTOCOL_ERROR,
                         "message type id must be an integer", uid or "-1")
    allowed = (CALL, CALLRESULT, CALLERROR) if version in ("1.6", "2.0.1") else (
        CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND)
    if mtype not in allowed:
        raise FrameError(ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED, f"message type id {mtype} is not supported",
                         uid or "-1")
    if uid is None:
        if mtype in (CALL, SEND):
            raise FrameError(ErrorKind.RPC_FRAMEWORK if version != "1.6" else ErrorKind.PROTOCOL_ERROR,
                             "message id must be a string of 1 to 36 characters", "-1")
        raise FrameError(ErrorKind.PROTOCOL_ERROR, "response with an unreadable message id", None)
    if mtype in (CALL, SEND):
        if len(frame) != 4 or not isinstance(frame[2], str):
            raise FrameError(ErrorKind.PROTOCOL_ERROR if version == "1.6" else ErrorKind.RPC_FRAMEWORK,
                             "CALL must be [2, id, action, payload]", uid)
        if not isinstance(frame[3], dict):
            raise FrameError(ErrorKind.FORMAT_VIOLATION, "CALL payload must be a JSON object", uid)
        return (Call if mtype == CALL else Send)(uid, frame[2], frame[3])
    if mtype == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise FrameError(ErrorKind.FORMAT_VIOLATION, "CALLRESULT must be [3, id, payload]", None)
        return CallResult(uid, frame[2])
    # CALLERROR / CALLRESULTERROR
    if len(frame) < 3 or not isinstance(frame[2], str):
        raise FrameError(ErrorKind.FORMAT_VIOLATION, "CALLERROR must be [4, id, code, description, details]",
                         None)
    description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
    details = frame[4] if len(frame) > 4 and isinstance(frame[4], dict) else {}
    return CallError(uid, frame[2], description, details)


def encode(message: Message) -> str:
    """Serialise a message to the text of one websocket frame."""
    if isinstance(message, CallResult):
        frame: list[Any] = [CALLRESULT, message.unique_id, message.payload]
    elif isinstance(message, Call):
        frame = [CALL, message.unique_id, message.action, message.payload]
    elif isinstance(message, CallError):
        frame = [CALLERROR, message.unique_id, message.code, message.description, message.details]
    else:
        frame = [SEND, message.unique_id, message.action, message.payload]
    return orjson.dumps(frame).decode()
