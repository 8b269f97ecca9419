"""data/workers.py: results in call order from spawned processes, early stop."""

from __future__ import annotations

import operator

from tml_cloudremoval.data.workers import ordered_in_processes


def test_results_come_in_call_order_as_a_plain_loop_gives_them():
    calls = [(i, 7 - i) for i in range(9)]
    got = list(ordered_in_processes(operator.pow, calls, workers=2, in_flight=3))
    assert got == [a**b for a, b in calls]


def test_closing_early_submits_no_more_than_in_flight_calls():
    seen: list[int] = []

    def calls():
        for i in range(1000):
            seen.append(i)
            yield (i, 2)

    results = ordered_in_processes(operator.mul, calls(), workers=2, in_flight=4)
    assert [next(results), next(results)] == [0, 2]
    results.close()
    assert len(seen) == 5  # 4 in flight before the first result, one more before the second
