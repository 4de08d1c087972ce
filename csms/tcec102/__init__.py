"""T/CEC 102-2016 supervision-platform link, sans-I/O.

* :mod:`csms.tcec102.codec` -- envelope encoding/decoding: AES-128-CBC ``Data``,
  HMAC-MD5 ``Sig``, ``TimeStamp``/``Seq`` generation, ``Ret`` codes.
* :mod:`csms.tcec102.objects` -- builders for the standard's JSON objects
  (StationInfo, ConnectorStatusInfo, ChargeOrder, PolicyInfos ...) and the
  OCPP → T/CEC status and stop-reason mappings.

Neither module performs I/O; transport, tokens and persistence live elsewhere.
"""

from .codec import (
    CONTENT_TYPE,
    SHANGHAI,
    PlatformError,
    Request,
    Response,
    Ret,
    SeqExhaustedError,
    SeqGenerator,
    Secrets,
    Stamp,
    decode_request,
    decode_response,
    decrypt_data,
    dumps_data,
    dumps_envelope,
    encode_request,
    encode_response,
    encrypt_data,
    error_response,
    loads_data,
    open_request,
    request_sig,
    response_sig,
)

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
