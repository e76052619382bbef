"""The capacity plan's arithmetic: workers from the rate a process holds within the SLOs,
pods of a core per worker, database cores from its CPU per purchase, and the first component
to saturate."""

from __future__ import annotations

import dataclasses

import pytest

from colonnade.rehearsal.capacity import plan
from colonnade.rehearsal.findings import Figures

MEASURED = Figures(
    processes=2,
    purchases=12_000,
    server_cpu_per_purchase=0.020,
    database_cpu_per_purchase=0.004,
    events_per_purchase=4.0,
    highest_held=80.0,
    server_limit_reached=True,
    outbox_events_per_second=2_000.0,
    outbox_limit_reached=True,
    pool_per_process=10.0,
)


def test_workers_pods_and_database_for_ten_thousand_orders_a_minute() -> None:
    planned = plan(MEASURED, 10_000)

    # 166.7 purchases/s x 1.5 = 250/s; a process held 40/s within the SLOs.
    assert planned.peak_per_second == pytest.approx(166.67, abs=0.01)
    assert planned.workers == 7
    assert planned.pods == 4  # two workers to a 2-core pod
    # 250/s x 4 ms = 1.0 core: the smallest size.
    assert planned.database_cores == 2
    assert planned.connections == 70
    web = planned.components[0]
    assert (web.capacity, web.headroom) == (280, pytest.approx(1.68))


def test_the_first_to_saturate_is_the_component_with_the_least_room_over_the_peak() -> None:
    planned = plan(MEASURED, 10_000)

    # One relay publishes 2,000 events/s, 4 a purchase: 500 purchases/s whatever the plan.
    headroom = {c.name: c.headroom for c in planned.components}
    assert headroom == {
        "web workers": pytest.approx(1.68),
        "database CPU": pytest.approx(3.0),
        "database connections": pytest.approx(100 / 70),
        "outbox relay": pytest.approx(3.0),
    }
    first = planned.first_to_saturate
    assert first is not None
    assert first.name == "database connections"


def test_more_headroom_and_bigger_pods_change_the_plan() -> None:
    planned = plan(MEASURED, 10_000, headroom=2.0, pod_cores=4, max_connections=500)

    assert (planned.workers, planned.pods) == (9, 3)
    first = planned.first_to_saturate
    assert first is not None
    assert first.name == "web workers"


def test_below_the_servers_limit_a_process_is_estimated_from_its_cpu_per_purchase() -> None:
    figures = dataclasses.replace(MEASURED, server_limit_reached=False, highest_held=20.0)

    web = plan(figures, 10_000).components[0]

    # One core over 20 ms: 50 purchases/s a process, not the 10/s the rehearsal offered.
    assert plan(figures, 10_000).workers == 5
    assert "did not reach the server's limit" in web.basis


def test_an_outbox_that_never_lagged_is_only_a_floor() -> None:
    figures = dataclasses.replace(MEASURED, outbox_limit_reached=False)

    relay = plan(figures, 10_000).components[-1]

    assert (relay.name, relay.floor) == ("outbox relay", True)


def test_a_floor_below_the_peak_is_unproven_not_the_first_to_saturate() -> None:
    # The relay published 400 events/s without lagging: at least 100 purchases/s.
    figures = dataclasses.replace(
        MEASURED, outbox_limit_reached=False, outbox_events_per_second=400.0
    )

    planned = plan(figures, 10_000)

    first = planned.first_to_saturate
    assert first is not None
    assert first.name == "database connections"
    assert [c.name for c in planned.unproven] == ["outbox relay"]


def test_a_database_the_rehearsal_could_not_see_is_not_sized() -> None:
    figures = dataclasses.replace(MEASURED, database_cpu_per_purchase=None, pool_per_process=None)

    planned = plan(figures, 10_000)

    assert planned.database_cores is None
    database = next(c for c in planned.components if c.name == "database CPU")
    assert (database.sized_as, database.headroom) == ("not measured", None)


def test_nothing_measured_is_no_plan() -> None:
    figures = dataclasses.replace(MEASURED, highest_held=0.0, server_cpu_per_purchase=None)

    with pytest.raises(ValueError, match="no rate within the SLOs"):
        plan(figures, 10_000)
