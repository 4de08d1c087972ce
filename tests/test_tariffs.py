"""Time-of-use pricing: hand-computed sessions, rounding, tariff history."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from csms.tariffs import (
    SHANGHAI,
    Tariff,
    TariffError,
    TariffPeriod,
    price_session,
    round_fen,
    tariff_for,
)

CST = timezone(timedelta(hours=8))

# 谷 00:00–08:00, 平 08:00–18:00, 峰 18:00–23:00, 谷 23:00–24:00.
TOU = Tariff(
    [
        ("00:00", "0.3100", "0.4000"),
        ("08:00", "0.6200", "0.6000"),
        ("18:00", "0.9300", "0.8000"),
        ("23:00", "0.3100", "0.4000"),
    ],
    valid_from=date(2024, 1, 1),
)


def at(y, mo, d, h, mi, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=CST)


def summary(cost):
    return [
        (
            d.start.strftime("%Y-%m-%d %H:%M:%S"),
            d.end.strftime("%Y-%m-%d %H:%M:%S"),
            d.power,
            d.elec_money,
            d.service_money,
        )
        for d in cost.details
    ]


def assert_totals_consistent(cost):
    assert cost.total_power == sum(d.power for d in cost.details)
    assert cost.total_elec_money == sum(d.elec_money for d in cost.details)
    assert cost.total_service_money == sum(d.service_money for d in cost.details)
    assert cost.total_money == cost.total_elec_money + cost.total_service_money
    for value in (cost.total_elec_money, cost.total_service_money, cost.total_money):
        assert value == value.quantize(D("0.01"))


def test_crossing_valley_to_flat_with_interpolation():
    # No reading at 08:00: the register there is interpolated between
    # 07:50 (13 000 Wh) and 08:20 (17 500 Wh): 13 000 + 4 500 × 10/30 = 14 500 Wh.
    samples = [
        (at(2024, 3, 1, 7, 30), 10_000),
        (at(2024, 3, 1, 7, 50), 13_000),
        (at(2024, 3, 1, 8, 20), 17_500),
        (at(2024, 3, 1, 8, 30), 20_000),
    ]
    cost = price_session(TOU, samples, at(2024, 3, 1, 7, 30), at(2024, 3, 1, 8, 30))
    assert summary(cost) == [
        # 4.5 kWh × 0.31 = 1.395 → 1.40 (half up); × 0.40 = 1.80
        ("2024-03-01 07:30:00", "2024-03-01 08:00:00", D("4.500"), D("1.40"), D("1.80")),
        # 5.5 kWh × 0.62 = 3.41; × 0.60 = 3.30
        ("2024-03-01 08:00:00", "2024-03-01 08:30:00", D("5.500"), D("3.41"), D("3.30")),
    ]
    assert [(d.elec_price, d.service_price) for d in cost.details] == [
        (D("0.3100"), D("0.4000")),
        (D("0.6200"), D("0.6000")),
    ]
    assert cost.total_power == D("10.000")
    assert cost.total_elec_money == D("4.81")
    assert cost.total_service_money == D("5.10")
    assert cost.total_money == D("9.91")
    assert_totals_consistent(cost)


def test_crossing_midnight():
    # 22:30 → 00:30 crosses 23:00 (峰→谷) and midnight (a new day's first
    # period): three details. A reading sits exactly at 23:00; midnight is
    # interpolated between 23:40 (8 000) and 00:20 (12 000): 10 000 Wh.
    samples = [
        (at(2024, 3, 1, 22, 30), 0),
        (at(2024, 3, 1, 23, 0), 3_500),
        (at(2024, 3, 1, 23, 40), 8_000),
        (at(2024, 3, 2, 0, 20), 12_000),
        (at(2024, 3, 2, 0, 30), 13_000),
    ]
    cost = price_session(TOU, samples, at(2024, 3, 1, 22, 30), at(2024, 3, 2, 0, 30))
    assert summary(cost) == [
        # 3.5 × 0.93 = 3.255 → 3.26; 3.5 × 0.80 = 2.80
        ("2024-03-01 22:30:00", "2024-03-01 23:00:00", D("3.500"), D("3.26"), D("2.80")),
        # 6.5 × 0.31 = 2.015 → 2.02; 6.5 × 0.40 = 2.60
        ("2024-03-01 23:00:00", "2024-03-02 00:00:00", D("6.500"), D("2.02"), D("2.60")),
        # 3.0 × 0.31 = 0.93; 3.0 × 0.40 = 1.20
        ("2024-03-02 00:00:00", "2024-03-02 00:30:00", D("3.000"), D("0.93"), D("1.20")),
    ]
    assert cost.total_power == D("13.000")
    # Per-detail rounding: 3.26 + 2.02 + 0.93 = 6.21, whereas rounding the
    # exact total once would give 3.255 + 2.015 + 0.93 = 6.20. The documented
    # rule is per detail, so the totals add up.
    assert cost.total_elec_money == D("6.21")
    assert cost.total_service_money == D("6.60")
    assert cost.total_money == D("12.81")
    assert_totals_consistent(cost)


def test_reading_exactly_at_boundary_is_used_not_interpolated():
    # Interpolating 07:00 → 09:00 would give 2 500 Wh at 08:00; the reading
    # taken exactly at 08:00 (1 000 Wh) wins.
    samples = [
        (at(2024, 3, 1, 7, 0), 0),
        (at(2024, 3, 1, 8, 0), 1_000),
        (at(2024, 3, 1, 9, 0), 5_000),
    ]
    cost = price_session(TOU, samples, at(2024, 3, 1, 7, 0), at(2024, 3, 1, 9, 0))
    assert [d.power for d in cost.details] == [D("1.000"), D("4.000")]
    assert cost.total_elec_money == D("0.31") + D("2.48")
    assert_totals_consistent(cost)


def test_session_starting_exactly_at_boundary_has_one_detail():
    samples = [(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 9, 0), 7_000)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0))
    assert summary(cost) == [
        ("2024-03-01 08:00:00", "2024-03-01 09:00:00", D("7.000"), D("4.34"), D("4.20")),
    ]


def test_zero_energy_session():
    samples = [(at(2024, 3, 1, 10, 0), 5_000), (at(2024, 3, 1, 10, 30), 5_000)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 10, 0), at(2024, 3, 1, 10, 30))
    assert summary(cost) == [
        ("2024-03-01 10:00:00", "2024-03-01 10:30:00", D("0.000"), D("0.00"), D("0.00")),
    ]
    assert (cost.total_power, cost.total_money) == (D("0.000"), D("0.00"))
    assert_totals_consistent(cost)


def test_zero_energy_session_crossing_a_boundary_lists_both_periods():
    samples = [(at(2024, 3, 1, 17, 50), 5_000), (at(2024, 3, 1, 18, 10), 5_000)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 17, 50), at(2024, 3, 1, 18, 10))
    assert len(cost.details) == 2 and cost.total_money == D("0.00")


def test_zero_length_session():
    t = at(2024, 3, 1, 10, 0)
    cost = price_session(TOU, [(t, 1234)], t, t)
    assert len(cost.details) == 1 and cost.details[0].power == D("0.000")


def test_rounding_half_up_to_the_fen():
    # 0.100 kWh × 1.2500 = 0.125 → 0.13 (ROUND_HALF_UP; banker's would give 0.12).
    # 0.100 kWh × 0.0450 = 0.0045 → 0.00.
    tariff = Tariff([("00:00", "1.2500", "0.0450")], valid_from=date(2024, 1, 1))
    samples = [(at(2024, 3, 1, 10, 0), 0), (at(2024, 3, 1, 10, 5), 100)]
    cost = price_session(tariff, samples, at(2024, 3, 1, 10, 0), at(2024, 3, 1, 10, 5))
    assert cost.details[0].elec_money == D("0.13")
    assert cost.details[0].service_money == D("0.00")
    assert cost.total_money == D("0.13")
    assert round_fen(D("0.125")) == D("0.13") and round_fen(D("-0.125")) == D("-0.13")


def test_energy_rounded_at_boundaries_so_details_add_up():
    # Register at 08:00 interpolates to 1 000.5 Wh → 1.0005 kWh → 1.001 (half up).
    # Details 0.001 + 0.000 = 0.001 = meter difference.
    samples = [(at(2024, 3, 1, 7, 59), 1_000), (at(2024, 3, 1, 8, 1), 1_001)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 7, 59), at(2024, 3, 1, 8, 1))
    assert [d.power for d in cost.details] == [D("0.001"), D("0.000")]
    assert cost.total_power == D("0.001")
    assert_totals_consistent(cost)


def test_energy_places_two():
    samples = [(at(2024, 3, 1, 7, 0), 0), (at(2024, 3, 1, 9, 0), 2_345)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 7, 0), at(2024, 3, 1, 9, 0), energy_places=2)
    # 08:00 register = 1 172.5 Wh → 1.17 kWh; stop 2.345 → 2.35 (half up).
    assert [d.power for d in cost.details] == [D("1.17"), D("1.18")]
    assert cost.total_power == D("2.35")


def test_samples_outside_session_used_for_interpolation():
    # Session starts at 07:45 with no reading there: interpolated from 07:30/08:30.
    samples = [(at(2024, 3, 1, 7, 30), 0), (at(2024, 3, 1, 8, 30), 6_000)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 7, 45), at(2024, 3, 1, 8, 15))
    assert [d.power for d in cost.details] == [D("1.500"), D("1.500")]


def test_timezones_of_inputs_do_not_matter():
    utc = timezone.utc
    samples = [
        (datetime(2024, 3, 1, 14, 30, tzinfo=utc), 0),  # 22:30 Beijing
        (datetime(2024, 3, 1, 15, 30, tzinfo=utc), 2_000),  # 23:30 Beijing
    ]
    cost = price_session(TOU, samples, samples[0][0], samples[1][0])
    assert summary(cost) == [
        ("2024-03-01 22:30:00", "2024-03-01 23:00:00", D("1.000"), D("0.93"), D("0.80")),
        ("2024-03-01 23:00:00", "2024-03-01 23:30:00", D("1.000"), D("0.31"), D("0.40")),
    ]
    assert cost.details[0].start.utcoffset() == timedelta(hours=8)


def test_multi_day_session_and_unsorted_samples():
    samples = [(at(2024, 3, 2, 12, 0), 48_000), (at(2024, 3, 1, 12, 0), 0)]
    cost = price_session(TOU, samples, at(2024, 3, 1, 12, 0), at(2024, 3, 2, 12, 0))
    # 12–18 flat, 18–23 peak, 23–24 valley, 00–08 valley, 08–12 flat.
    assert [d.elec_price for d in cost.details] == [D("0.62"), D("0.93"), D("0.31"), D("0.31"), D("0.62")]
    assert [d.power for d in cost.details] == [D("12.000"), D("10.000"), D("2.000"), D("16.000"), D("8.000")]
    assert_totals_consistent(cost)


def test_random_sessions_totals_equal_sum_of_details():
    rng = random.Random(20240301)
    for _ in range(200):
        start = at(2024, 3, 1, 0, 0) + timedelta(seconds=rng.randrange(0, 86_400))
        stop = start + timedelta(seconds=rng.randrange(1, 30 * 3600))
        n = rng.randrange(0, 8)
        times = sorted({start, stop, *(start + (stop - start) * rng.random() for _ in range(n))})
        register, samples = 0, []
        for t in times:
            register += rng.randrange(1, 20_000)
            samples.append((t, register + rng.choice([D(0), D("0.5"), D("0.25")])))
        cost = price_session(TOU, samples, start, stop)
        assert_totals_consistent(cost)
        assert cost.details[0].start == start and cost.details[-1].end == stop
        for a, b in zip(cost.details, cost.details[1:]):
            assert a.end == b.start
        assert all(d.power >= 0 for d in cost.details)


# --- Input validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "samples, start, stop, match",
    [
        ([(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 9, 0), 10)], at(2024, 3, 1, 7, 0), at(2024, 3, 1, 9, 0), "cover"),
        ([(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 9, 0), 10)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 30), "cover"),
        ([(at(2024, 3, 1, 8, 0), 10), (at(2024, 3, 1, 9, 0), 5)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0), "decreased"),
        ([(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 9, 0), 5)], at(2024, 3, 1, 9, 0), at(2024, 3, 1, 8, 0), "before"),
        ([(datetime(2024, 3, 1, 8), 0), (at(2024, 3, 1, 9, 0), 5)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0), "aware"),
        ([(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 9, 0), 5)], datetime(2024, 3, 1, 8), at(2024, 3, 1, 9, 0), "aware"),
        ([(at(2024, 3, 1, 8, 0), 0), (at(2024, 3, 1, 8, 0), 5)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 8, 0), "different"),
        ([(at(2024, 3, 1, 8, 0), -1), (at(2024, 3, 1, 9, 0), 5)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0), "negative"),
        ([(at(2024, 3, 1, 8, 0), True), (at(2024, 3, 1, 9, 0), 5)], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0), "number"),
        ([], at(2024, 3, 1, 8, 0), at(2024, 3, 1, 9, 0), "at least"),
    ],
)
def test_price_session_rejects(samples, start, stop, match):
    with pytest.raises(TariffError, match=match):
        price_session(TOU, samples, start, stop)


def test_float_and_str_readings_accepted():
    samples = [(at(2024, 3, 1, 10, 0), 1000.5), (at(2024, 3, 1, 11, 0), "2000.5")]
    cost = price_session(TOU, samples, at(2024, 3, 1, 10, 0), at(2024, 3, 1, 11, 0))
    # 1.0005 → 1.001, 2.0005 → 2.001: 1.000 kWh
    assert cost.total_power == D("1.000")


# --- Tariff definition -------------------------------------------------------------


def test_tariff_normalises_inputs():
    t = Tariff(
        [
            TariffPeriod(time(0, 0), D("0.31"), D("0.4")),
            (time(8, 0), 1, "0.60"),
            ("183000", D("0.9300"), "0.8"),
        ],
        valid_from=date(2024, 1, 1),
    )
    assert [p.start for p in t.periods] == [time(0), time(8), time(18, 30)]
    assert [str(p.elec_price) for p in t.periods] == ["0.3100", "1.0000", "0.9300"]
    assert t.period_at(time(18, 29, 59)).start == time(8)
    assert t.period_at(time(18, 30)).start == time(18, 30)
    assert t.period_at(time(23, 59, 59)).start == time(18, 30)


@pytest.mark.parametrize(
    "periods, match",
    [
        ([], "at least one"),
        ([("01:00", "0.3", "0.4")], "00:00"),
        ([("00:00", "0.3", "0.4"), ("08:00", "0.6", "0.6"), ("08:00", "0.9", "0.8")], "not after"),
        ([("00:00", "0.3", "0.4"), ("08:00", "0.6", "0.6"), ("07:00", "0.9", "0.8")], "not after"),
        ([("00:00", 0.31, "0.4")], "float"),
        ([("00:00", "0.31005", "0.4")], "4 decimal"),
        ([("00:00", "-0.01", "0.4")], "negative"),
        ([("00:00", "abc", "0.4")], "not a number"),
        ([("00:00", "NaN", "0.4")], "finite"),
        ([("25:00", "0.3", "0.4")], "HH:MM"),
        ([("00:00", "0.3")], "expected"),
        ([(time(0, 0, 0, 5), "0.3", "0.4")], "whole seconds"),
    ],
)
def test_tariff_validation(periods, match):
    with pytest.raises(TariffError, match=match):
        Tariff(periods, valid_from=date(2024, 1, 1))


def test_tariff_valid_from_must_be_date():
    with pytest.raises(TariffError):
        Tariff([("00:00", "1", "1")], valid_from=datetime(2024, 1, 1))


# --- Tariff history ------------------------------------------------------------------


def flat(price, valid_from):
    return Tariff([("00:00", price, "0.5000")], valid_from=valid_from)


def test_tariff_for_picks_latest_valid_from_by_local_date():
    t2024 = flat("0.5000", date(2024, 1, 1))
    t2024h2 = flat("0.6000", date(2024, 7, 1))
    t2025 = flat("0.7000", date(2025, 1, 1))
    history = [t2025, t2024, t2024h2]  # any order
    # 2024-06-30 16:30 UTC is 2024-07-01 00:30 in Beijing: the July tariff.
    assert tariff_for(history, datetime(2024, 6, 30, 16, 30, tzinfo=timezone.utc)) is t2024h2
    assert tariff_for(history, datetime(2024, 6, 30, 15, 59, tzinfo=timezone.utc)) is t2024
    assert tariff_for(history, at(2024, 7, 1, 0, 0)) is t2024h2
    assert tariff_for(history, at(2030, 1, 1, 0, 0)) is t2025
    assert tariff_for(history, at(2023, 12, 31, 23, 59)) is None
    assert tariff_for([], at(2024, 1, 1, 0, 0)) is None
    # Another zone for the local date:
    assert tariff_for(history, datetime(2024, 6, 30, 16, 30, tzinfo=timezone.utc), tz=ZoneInfo("UTC")) is t2024


def test_tariff_for_rejects_ambiguous_history_and_naive_time():
    with pytest.raises(TariffError, match="two tariffs"):
        tariff_for([flat("0.5", date(2024, 1, 1)), flat("0.6", date(2024, 1, 1))], at(2024, 2, 1, 0, 0))
    with pytest.raises(TariffError, match="aware"):
        tariff_for([flat("0.5", date(2024, 1, 1))], datetime(2024, 2, 1))


def test_default_zone_is_shanghai():
    assert str(SHANGHAI) == "Asia/Shanghai"
