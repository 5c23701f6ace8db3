"""The resolution goals: met or missed, with what the data allows beside each figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bestand.cli import build_parser, main
from bestand.evaluation.goals import check_goals

MET = {
    "returning_guest_recall": 0.985,
    "returning_guest_ceiling": 0.99,
    "merges": 2000,
    "wrong_merges": 2,
    "merges_through_junk": 0,
    "true_customers": 1000,
    "resolved_customers": 1015,
    "ceiling_customers": 1010,
}


def test_all_goals_met() -> None:
    checks = check_goals(**MET)
    assert [c.met for c in checks] == [True, True, True]
    assert checks[0].measured == "98.50 %"
    assert checks[0].allows == "99.00 %"
    assert checks[1].measured == "0.10 % (2 of 2000), 0 through junk"
    assert checks[2].measured == "+1.50%"
    assert checks[2].allows == "+1.00%"


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        ({"returning_guest_recall": 0.9799}, 0),
        ({"wrong_merges": 3}, 1),
        ({"merges_through_junk": 1}, 1),
        ({"resolved_customers": 1021}, 2),
        ({"resolved_customers": 979}, 2),  # too few customers is as wrong as too many
    ],
)
def test_each_goal_can_be_missed(change: dict[str, int | float], missed: int) -> None:
    checks = check_goals(**(MET | change))  # type: ignore[arg-type]
    assert [not c.met for c in checks] == [i == missed for i in range(3)]


def test_a_miss_says_whether_the_data_or_the_resolver_is_short() -> None:
    by_data = check_goals(
        **(MET | {"returning_guest_recall": 0.93, "returning_guest_ceiling": 0.94})
    )
    assert by_data[0].short_by == "the data"
    by_resolver = check_goals(**(MET | {"returning_guest_recall": 0.97}))
    assert by_resolver[0].short_by == "the resolver"
    count = check_goals(**(MET | {"resolved_customers": 1030, "ceiling_customers": 1025}))
    assert count[2].short_by == "the data"
    count = check_goals(**(MET | {"resolved_customers": 1030}))
    assert count[2].short_by == "the resolver"
    assert [c.short_by for c in check_goals(**MET)] == [None, None, None]


def test_no_merges_and_no_customers_are_not_a_division_by_zero() -> None:
    checks = check_goals(**(MET | {"merges": 0, "wrong_merges": 0, "true_customers": 0}))
    assert checks[1].met
    assert checks[2].measured == "+0.00%"


def test_e_receipts_option_takes_a_share_only(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["evaluate", "--e-receipts", "0.8"])
    assert args.e_receipts == 0.8
    for bad in ("1.2", "-0.1", "most"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["simulate", "--out", "x", "--e-receipts", bad])
        assert exc.value.code == 2
    assert "must be between 0 and 1" in capsys.readouterr().err


def test_evaluate_names_a_directory_without_a_shop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--dir", str(tmp_path), "--no-stack"]) == 2
    err = capsys.readouterr().err
    assert "holds no simulated shop" in err
    assert "bestand simulate --out" in err


@pytest.mark.parametrize(
    ("right", "allowed", "met"),
    [(0.992, 0.994, True), (0.9919, 0.994, False), (0.995, 0.994, True)],
)
def test_the_cookie_goal_is_within_two_tenths_of_a_point_of_what_the_data_allows(
    right: float, allowed: float, met: bool
) -> None:
    checks = check_goals(**MET, cookies_right=right, cookies_allowed=allowed)
    assert len(checks) == 4
    assert checks[3].met is met
    assert checks[3].goal.startswith("cookies that can be tied")
    assert checks[3].short_by == (None if met else "the resolver")
    assert checks[3].allows == f"{100 * allowed:.2f} %"


def test_shared_cookies_are_a_goal_of_their_own() -> None:
    checks = check_goals(
        **MET, cookies_right=0.99, cookies_allowed=0.99, shared_right=0.8255, shared_allowed=0.92
    )
    assert [c.met for c in checks] == [True, True, True, True, False]
    assert checks[4].goal.startswith("cookies shared by several persons answered for their last")
    assert checks[4].short_by == "the resolver"
