"""The one retry policy: the pauses each call site's limits give, written out by hand."""

from __future__ import annotations

from itertools import islice

import pytest

from pos_terminal.retry import Backoff


def test_pauses_double_from_the_first_up_to_the_cap_and_stay_there() -> None:
    pauses = Backoff(first_s=0.5, max_s=30.0).pauses()
    assert list(islice(pauses, 9)) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_bounded_run_has_one_pause_fewer_than_tries() -> None:
    assert list(Backoff(first_s=2.0, max_s=2.0, tries=3).pauses()) == [2.0, 2.0]
    assert list(Backoff(first_s=1.0, max_s=10.0, tries=1).pauses()) == []


def test_a_first_pause_above_the_cap_is_cut_to_the_cap() -> None:
    assert list(islice(Backoff(first_s=60.0, max_s=30.0).pauses(), 2)) == [30.0, 30.0]


def test_after_continues_a_schedule_kept_elsewhere() -> None:
    backoff = Backoff(first_s=60.0, max_s=3600.0)
    assert backoff.after(None) == 60.0
    assert backoff.after(1920.0) == 3600.0
    assert Backoff(first_s=1.0, max_s=100.0, factor=3.0).after(9.0) == 27.0


@pytest.mark.parametrize(
    "limits",
    [
        {"first_s": 0.0, "max_s": 1.0},
        {"first_s": 1.0, "max_s": -1.0},
        {"first_s": 1.0, "max_s": 2.0, "factor": 0.5},
        {"first_s": 1.0, "max_s": 2.0, "tries": 0},
    ],
)
def test_limits_that_make_no_schedule_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**limits)  # type: ignore[arg-type]
