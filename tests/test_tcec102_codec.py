"""T/CEC 102 envelope codec: the standard's test vector, round trips, Ret codes, Seq."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from csms.tcec102.codec import (
    PlatformError,
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
    open_request,
    request_sig,
    response_sig,
)

# --- The standard's test vector (see /work/shared/reference/tcec102.md) -----

VECTOR_SECRETS = Secrets(
    operator_secret="1234567890abcdef",
    data_secret="1234567890abcdef",
    data_secret_iv="1234567890abcdef",
    sig_secret="1234567890abcdef",
)
VECTOR_OPERATOR_ID = "123456789"
VECTOR_TIMESTAMP = "20160729142400"
VECTOR_SEQ = "0001"
VECTOR_PLAINTEXT = (
    '{"total":1,"stationStatusInfo":{"operationID":"123456789","stationID":"111111111111111",'
    '"connectorStatusInfos":{"connectorID":1,"equipmentID":"10000000000000000000001","status":4,'
    '"currentA":0,"currentB":0,"currentC":0,"voltageA":0,"voltageB":0,"voltageC":0,"soc":10,}}}'
).encode("utf-8")
VECTOR_CIPHERTEXT = (
    "il7B0BSEjFdzpyKzfOFpvg/Se1CP802RItKYFPfSLRxJ3jf0bVl9hvYOEktPAYW2nd7S8MBcyHYyacHKbISq5iTmDzG+"
    "ivnR+SZJv3USNTYVMz9rCQVSxd0cLlqsJauko79NnwQJbzDTyLooYoIwz75qBOH2/xOMirpeEqRJrF/EQjWekJmGk9Rt"
    "boXePu2rka+Xm51syBPhiXJAq0GfbfaFu9tNqs/e2Vjja/ltE1M0lqvxfXQ6da6HrThsm5id4ClZFIi0acRfrsPLRixS"
    "/IQYtksxghvJwbqOsbIsITail9Ayy4tKcogeEZiOO+4Ed264NSKmk7l3wKwJLAFjCFogBx8GE3OBz4pqcAn/ydA="
)
VECTOR_SIG = "745166E8C43C84D37FFEC0F529C4136F"


def test_vector_decrypt():
    assert decrypt_data(VECTOR_CIPHERTEXT, VECTOR_SECRETS) == VECTOR_PLAINTEXT


def test_vector_encrypt():
    assert encrypt_data(VECTOR_PLAINTEXT, VECTOR_SECRETS) == VECTOR_CIPHERTEXT


def test_vector_sig():
    sig = request_sig(VECTOR_SECRETS, VECTOR_OPERATOR_ID, VECTOR_CIPHERTEXT, VECTOR_TIMESTAMP, VECTOR_SEQ)
    assert sig == VECTOR_SIG


def vector_envelope(**overrides):
    env = {
        "OperatorID": VECTOR_OPERATOR_ID,
        "Data": VECTOR_CIPHERTEXT,
        "TimeStamp": VECTOR_TIMESTAMP,
        "Seq": VECTOR_SEQ,
        "Sig": VECTOR_SIG,
    }
    env.update(overrides)
    return env


def test_vector_envelope_is_authentic_but_its_data_is_not_strict_json():
    # The standard's own plaintext has a trailing comma: the signature checks
    # out, and the Data is then refused as invalid business parameters.
    lookup = {VECTOR_OPERATOR_ID: VECTOR_SECRETS}.get
    with pytest.raises(PlatformError) as exc:
        decode_request(vector_envelope(), lookup)
    assert exc.value.ret == Ret.BUSINESS_ERROR == 4004


# --- Secrets ------------------------------------------------------------------

PLATFORM = Secrets(
    operator_secret="op-SECRET-value1",
    data_secret="DATAkey-0123456A",
    data_secret_iv="IVvalue-7654321B",
    sig_secret="SIGsecret-xyz-9876",
)
OPERATOR_ID = "MA0GYQ001"


def test_secrets_repr_never_shows_values():
    for text in (repr(PLATFORM), str(PLATFORM), f"{PLATFORM}", repr([PLATFORM])):
        for secret in (PLATFORM.operator_secret, PLATFORM.data_secret, PLATFORM.data_secret_iv, PLATFORM.sig_secret):
            assert secret not in text
        assert "redacted" in text


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"data_secret": "short"}, "data_secret"),
        ({"data_secret_iv": "x" * 17}, "data_secret_iv"),
        ({"data_secret": "é" * 16}, "data_secret"),  # 32 bytes in UTF-8
        ({"sig_secret": ""}, "sig_secret"),
        ({"operator_secret": None}, "operator_secret"),
    ],
)
def test_secrets_validation_names_field_not_value(kwargs, field):
    base = dict(operator_secret="o", data_secret="k" * 16, data_secret_iv="i" * 16, sig_secret="s")
    base.update(kwargs)
    with pytest.raises(ValueError) as exc:
        Secrets(**base)
    assert field in str(exc.value)
    value = kwargs[field]
    if value:
        assert value not in str(exc.value)


# --- Request round trips -----------------------------------------------------

FIXED = lambda: Stamp("20240301120000", "0007")  # noqa: E731


def lookup(operator_id):
    return {OPERATOR_ID: PLATFORM}.get(operator_id)


def test_request_round_trip_with_chinese_text():
    payload = {"StationID": "YQ0001", "StationName": "阳泉市城区充电站", "Power": 60.5, "Items": [1, 2]}
    env = encode_request(OPERATOR_ID, payload, PLATFORM, now=FIXED)
    assert set(env) == {"OperatorID", "Data", "TimeStamp", "Seq", "Sig"}
    assert env["OperatorID"] == OPERATOR_ID
    assert env["TimeStamp"] == "20240301120000" and env["Seq"] == "0007"
    assert env["Sig"] == request_sig(PLATFORM, OPERATOR_ID, env["Data"], "20240301120000", "0007")
    assert env["Sig"].isupper() and len(env["Sig"]) == 32

    plaintext = decrypt_data(env["Data"], PLATFORM)
    # Compact, UTF-8, no \\u escapes.
    assert plaintext == '{"StationID":"YQ0001","StationName":"阳泉市城区充电站","Power":60.5,"Items":[1,2]}'.encode()

    for body in (env, dumps_envelope(env), dumps_envelope(env).decode("utf-8"), bytearray(dumps_envelope(env))):
        assert decode_request(body, lookup) == (OPERATOR_ID, payload)

    req = open_request(env, lookup)
    assert (req.timestamp, req.seq) == ("20240301120000", "0007")


def test_dumps_data_decimal_and_nan():
    from decimal import Decimal

    assert dumps_data({"p": Decimal("0.6500"), "m": Decimal("12.30")}) == b'{"p":0.65,"m":12.3}'
    with pytest.raises(ValueError):
        dumps_data({"x": float("nan")})
    with pytest.raises(TypeError):
        dumps_data([1, 2])


def test_encode_request_uses_seq_generator():
    gen = SeqGenerator(clock=lambda: datetime(2024, 3, 1, 12, 0, 0))
    a = encode_request(OPERATOR_ID, {}, PLATFORM, now=gen)
    b = encode_request(OPERATOR_ID, {}, PLATFORM, now=gen)
    assert (a["TimeStamp"], a["Seq"]) == ("20240301120000", "0001")
    assert (b["TimeStamp"], b["Seq"]) == ("20240301120000", "0002")


def test_encode_request_rejects_bad_stamp():
    with pytest.raises(ValueError):
        encode_request(OPERATOR_ID, {}, PLATFORM, now=lambda: ("2024030112", "1"))


# --- Request errors ------------------------------------------------------------


def valid_env(**overrides):
    env = encode_request(OPERATOR_ID, {"StationIDs": ["YQ0001"]}, PLATFORM, now=FIXED)
    env.update(overrides)
    return env


def ret_of(body, lookup_fn=lookup):
    with pytest.raises(PlatformError) as exc:
        decode_request(body, lookup_fn)
    return exc.value


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"OperatorID"',
        b"",
        b"NaN",
    ],
)
def test_4003_malformed_body(body):
    assert ret_of(body).ret == Ret.PARAM_ERROR == 4003


@pytest.mark.parametrize("field", ["OperatorID", "Data", "TimeStamp", "Seq", "Sig"])
def test_4003_missing_field(field):
    env = valid_env()
    del env[field]
    err = ret_of(env)
    assert err.ret == 4003 and field in err.msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"OperatorID": 123456789},
        {"OperatorID": ""},
        {"Data": 5},
        {"Data": "not base64!"},
        {"Data": base64.b64encode(b"x" * 15).decode()},  # not whole AES blocks
        {"Data": ""},
        {"TimeStamp": 20240301120000},
        {"TimeStamp": "2024030112000"},
        {"TimeStamp": "20241301120000"},  # month 13
        {"TimeStamp": "2024-03-01 12:0"},
        {"Seq": 1},
        {"Seq": "1"},
        {"Seq": "00001"},
        {"Seq": "00a1"},
        {"Sig": None},
        {"Sig": "ABC"},
        {"Sig": "Z" * 32},
    ],
)
def test_4003_invalid_field(overrides):
    assert ret_of(valid_env(**overrides)).ret == 4003


def test_4001_bad_signature():
    env = valid_env()
    env["Sig"] = ("0" if env["Sig"][0] != "0" else "1") + env["Sig"][1:]
    assert ret_of(env).ret == Ret.SIG_ERROR == 4001


def test_4001_tampered_fields():
    env = valid_env()
    for tampered in ({"Seq": "0008"}, {"TimeStamp": "20240301120001"}):
        assert ret_of({**env, **tampered}).ret == 4001


def test_lower_case_sig_accepted():
    env = valid_env()
    env["Sig"] = env["Sig"].lower()
    assert decode_request(env, lookup)[0] == OPERATOR_ID


def test_4001_unknown_operator_and_wrong_secrets_are_indistinguishable():
    env = valid_env()
    unknown = ret_of({**env, "OperatorID": "XXXXXXXXX"})
    bad_sig = ret_of({**env, "Sig": "0" * 32})
    # Right SigSecret, wrong DataSecret: the signature verifies, padding fails.
    wrong_key = Secrets(
        operator_secret=PLATFORM.operator_secret,
        data_secret="another-key-1234",
        data_secret_iv=PLATFORM.data_secret_iv,
        sig_secret=PLATFORM.sig_secret,
    )
    env_wrong_key = encode_request(OPERATOR_ID, {"a": 1}, wrong_key, now=FIXED)
    wrong_data = ret_of(env_wrong_key)
    assert unknown.ret == bad_sig.ret == wrong_data.ret == 4001
    assert unknown.msg == bad_sig.msg == wrong_data.msg
    for err in (unknown, bad_sig, wrong_data):
        for secret in (PLATFORM.data_secret, PLATFORM.sig_secret, PLATFORM.data_secret_iv):
            assert secret not in str(err)


def test_lookup_exception_propagates():
    def broken(_):
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        decode_request(valid_env(), broken)


def _signed_env_with_plaintext(plaintext: bytes) -> dict:
    data = encrypt_data(plaintext, PLATFORM)
    ts, seq = FIXED()
    return {
        "OperatorID": OPERATOR_ID,
        "Data": data,
        "TimeStamp": ts,
        "Seq": seq,
        "Sig": request_sig(PLATFORM, OPERATOR_ID, data, ts, seq),
    }


@pytest.mark.parametrize(
    "plaintext",
    [b"{not json", b"[1,2,3]", b'"str"', b"\xff\xfe{}", b'{"a":NaN}', b'{"a":1,}', b""],
)
def test_4004_data_not_a_json_object(plaintext):
    assert ret_of(_signed_env_with_plaintext(plaintext)).ret == Ret.BUSINESS_ERROR == 4004


def test_platform_error_str():
    err = PlatformError(Ret.BUSINESS_ERROR, "StationIDs too long")
    assert str(err) == "4004 StationIDs too long"
    assert err.ret == 4004 and type(err.ret) is int


# --- Responses -------------------------------------------------------------------


def test_ret_constants():
    assert [int(r) for r in Ret] == [-1, 0, 4001, 4002, 4003, 4004, 500]


def test_response_round_trip():
    payload = {"Status": 0, "备注": "已接收"}
    env = encode_response(Ret.OK, "请求成功", payload, PLATFORM)
    assert set(env) == {"Ret", "Msg", "Data", "Sig"}
    assert env["Ret"] == 0 and type(env["Ret"]) is int
    assert env["Sig"] == response_sig(PLATFORM, 0, "请求成功", env["Data"])
    body = dumps_envelope(env)
    assert b"\\u" not in body
    resp = decode_response(body, PLATFORM)
    assert resp.ok and resp.signed and resp.ret == 0 and resp.msg == "请求成功" and resp.payload == payload
    resp.raise_for_ret()


def test_response_sig_covers_ret_msg_data():
    env = encode_response(Ret.OK, "ok", {"a": 1}, PLATFORM)
    expected = response_sig(PLATFORM, 0, "ok", env["Data"])
    import hashlib
    import hmac

    manual = hmac.new(PLATFORM.sig_secret.encode(), ("0" + "ok" + env["Data"]).encode(), hashlib.md5).hexdigest().upper()
    assert expected == manual == env["Sig"]
    for tampered in ({"Ret": 4004}, {"Msg": "OK"}, {"Sig": "0" * 32}):
        with pytest.raises(PlatformError) as exc:
            decode_response({**env, **tampered}, PLATFORM)
        assert exc.value.ret == 4001


def test_signed_error_response_without_data():
    env = encode_response(Ret.TOKEN_ERROR, "token expired", None, PLATFORM)
    assert env["Data"] == "" and env["Sig"]
    resp = decode_response(env, PLATFORM)
    assert resp.ret == Ret.TOKEN_ERROR and resp.payload is None and resp.signed
    with pytest.raises(PlatformError) as exc:
        resp.raise_for_ret()
    assert exc.value.ret == 4002


def test_unsigned_error_response():
    env = error_response(PlatformError(Ret.SIG_ERROR, "invalid signature"))
    assert env == {"Ret": 4001, "Msg": "invalid signature", "Data": "", "Sig": ""}
    resp = decode_response(env, PLATFORM)
    assert resp.ret == 4001 and not resp.signed and not resp.ok


def test_unsigned_ok_response_rejected():
    with pytest.raises(PlatformError) as exc:
        decode_response({"Ret": 0, "Msg": "", "Data": "", "Sig": ""}, PLATFORM)
    assert exc.value.ret == 4003


def test_payload_requires_secrets():
    with pytest.raises(ValueError):
        encode_response(Ret.OK, "", {"a": 1}, None)


@pytest.mark.parametrize(
    "env",
    [
        {"Ret": "0", "Msg": "", "Data": "", "Sig": ""},
        {"Ret": True, "Msg": "", "Data": "", "Sig": ""},
        {"Msg": "", "Data": "", "Sig": ""},
        {"Ret": 0, "Data": "", "Sig": ""},
        {"Ret": 0, "Msg": "", "Data": "!!", "Sig": "0" * 32},
    ],
)
def test_response_4003(env):
    with pytest.raises(PlatformError) as exc:
        decode_response(env, PLATFORM)
    assert exc.value.ret == 4003


def test_response_with_non_object_data_4004():
    data = encrypt_data(b"[1]", PLATFORM)
    env = {"Ret": 0, "Msg": "", "Data": data, "Sig": response_sig(PLATFORM, 0, "", data)}
    with pytest.raises(PlatformError) as exc:
        decode_response(env, PLATFORM)
    assert exc.value.ret == 4004


# --- Seq generation --------------------------------------------------------------


class FakeClock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def test_seq_counts_within_second_and_restarts():
    clock = FakeClock(datetime(2016, 7, 29, 14, 24, 0, 100))
    gen = SeqGenerator(clock=clock)
    assert gen() == Stamp("20160729142400", "0001")
    clock.now += timedelta(milliseconds=500)
    assert gen() == Stamp("20160729142400", "0002")
    assert gen() == Stamp("20160729142400", "0003")
    clock.now += timedelta(milliseconds=500)  # next second
    assert gen() == Stamp("20160729142401", "0001")
    clock.now += timedelta(seconds=5)
    assert gen() == Stamp("20160729142406", "0001")


def test_seq_rollover_at_9999():
    clock = FakeClock(datetime(2024, 1, 1, 0, 0, 0))
    gen = SeqGenerator(clock=clock)
    stamps = [gen() for _ in range(9999)]
    assert stamps[0].seq == "0001" and stamps[-1].seq == "9999"
    assert len({s.seq for s in stamps}) == 9999
    with pytest.raises(SeqExhaustedError):
        gen()
    clock.now += timedelta(seconds=1)
    assert gen() == Stamp("20240101000001", "0001")


def test_seq_clock_backwards_stays_unique():
    clock = FakeClock(datetime(2024, 1, 1, 0, 0, 5))
    gen = SeqGenerator(clock=clock)
    assert gen() == Stamp("20240101000005", "0001")
    clock.now -= timedelta(seconds=2)
    assert gen() == Stamp("20240101000005", "0002")
    clock.now += timedelta(seconds=3)
    assert gen() == Stamp("20240101000006", "0001")


def test_seq_aware_clock_converted_to_beijing_time():
    utc = datetime(2024, 1, 1, 16, 30, 0, tzinfo=timezone.utc)
    gen = SeqGenerator(clock=lambda: utc)
    assert gen() == Stamp("20240102003000", "0001")


def test_default_generator_format():
    env = encode_request(OPERATOR_ID, {"x": 1}, PLATFORM)
    assert len(env["TimeStamp"]) == 14 and env["TimeStamp"].isdigit()
    assert len(env["Seq"]) == 4 and env["Seq"].isdigit()
    assert json.loads(dumps_envelope(env)) == env
