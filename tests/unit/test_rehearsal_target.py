"""A rehearsal loads this machine's shop, or a host named on purpose; faults that reach into
the machine run against loopback only."""

from __future__ import annotations

import pytest

from colonnade.rehearsal.profile import Fault
from colonnade.rehearsal.target import TargetRefused, check_faults, check_target


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.0.0.2:8000",
        "http://localhost:8000/",
        "http://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_loopback_targets_need_no_permission(url: str) -> None:
    check_target(url, allowed_hosts=())


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com",
        "http://10.0.0.5:8000",
        "http://192.168.1.20",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
    ],
)
def test_any_other_target_is_refused_unless_named(url: str) -> None:
    with pytest.raises(TargetRefused, match="--allow-host"):
        check_target(url, allowed_hosts=())


def test_a_host_named_with_allow_host_is_rehearsed() -> None:
    assert check_target("https://Staging.Example.com/", ["staging.example.com"]) == (
        "staging.example.com"
    )
    with pytest.raises(TargetRefused):
        check_target("https://shop.example.com", ["staging.example.com"])


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8000", "http://"])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="not an http"):
        check_target(url, allowed_hosts=())


def test_provider_faults_go_through_the_shops_own_doors_anywhere() -> None:
    check_faults("https://staging.example.com", [Fault("slow-provider", 10, 10)], database_url=None)


def test_faults_reaching_into_the_machine_need_a_loopback_shop() -> None:
    with pytest.raises(TargetRefused, match="loopback only"):
        check_faults("https://staging.example.com", [Fault("kill-worker", 10)], None)
    check_faults("http://127.0.0.1:8000", [Fault("kill-worker", 10)], None)


def test_cutting_the_database_needs_a_loopback_postgresql() -> None:
    cut = [Fault("cut-database", 10)]
    with pytest.raises(TargetRefused, match="--database-url"):
        check_faults("http://127.0.0.1:8000", cut, None)
    with pytest.raises(TargetRefused, match="PostgreSQL"):
        check_faults("http://127.0.0.1:8000", cut, "sqlite+aiosqlite:///./colonnade.db")
    with pytest.raises(TargetRefused, match="loopback"):
        check_faults("http://127.0.0.1:8000", cut, "postgresql://postgres@db.example.com/shop")
    check_faults("http://127.0.0.1:8000", cut, "postgresql+asyncpg://postgres@127.0.0.1/shop")
