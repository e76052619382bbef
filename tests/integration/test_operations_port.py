"""The shop's metrics and health details are for its operators: the public port shows neither,
unless a metrics token is set, and then only to its bearer. The metrics port serves them to
whoever reaches it (loopback only, unless told otherwise)."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from colonnade.kernel.settings import Settings
from colonnade.ops.metrics_port import serve_metrics
from tests.conftest import free_port
from tests.integration.storefront import SECRET, client, started

TOKEN = "metrics-token-of-the-tests-" + "t" * 20
# A loaded test machine may take longer than a production probe's 1 s to open a first
# connection; these tests prove what the port shows, not how fast the database answers.
PROBE_TIMEOUT = 10.0


async def test_the_public_port_shows_no_metrics_and_no_health_details(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, secret_key=SECRET, readiness_timeout_seconds=PROBE_TIMEOUT
    )
    async with started(settings) as app, client(app) as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/health/details")).status_code == 404
        bearer = {"Authorization": "Bearer anything"}
        assert (await http.get("/metrics", headers=bearer)).status_code == 404
        # Probes still learn whether to send traffic, and nothing more.
        assert (await http.get("/health/ready")).json() == {"status": "ready"}
        assert (await http.get("/health/live")).json() == {"status": "live"}


async def test_with_a_metrics_token_the_public_port_refuses_anyone_without_it(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, metrics_token=TOKEN)
    async with started(settings) as app, client(app) as http:
        for authorization in (
            None,
            "Bearer",
            "Bearer wrong",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            f"Basic {TOKEN}",
            TOKEN,
        ):
            headers = {"Authorization": authorization} if authorization is not None else {}
            for path in ("/metrics", "/health/details"):
                refused = await http.get(path, headers=headers)

                assert refused.status_code == 401, (path, authorization)
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.headers["www-authenticate"] == "Bearer"
                assert refused.json()["code"] == "unauthorized"
                assert "colonnade_" not in refused.text


async def test_with_a_metrics_token_its_bearer_reads_metrics_and_details_on_the_public_port(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, metrics_token=TOKEN)
    async with started(settings) as app, client(app) as http:
        await http.get("/health/ready")
        for scheme in ("Bearer", "bearer"):
            metrics = await http.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})

            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            assert 'route="/health/ready"' in metrics.text
        details = await http.get("/health/details", headers={"Authorization": f"Bearer {TOKEN}"})
        assert details.json() == {
            "status": "ready",
            "checks": {"database": "ok", "bus": "ok", "outbox_relay": "ok"},
        }


async def test_the_metrics_port_serves_metrics_liveness_and_details_while_the_shop_runs(
    database_url: str,
) -> None:
    port = free_port()
    settings = Settings(database_url=database_url, secret_key=SECRET, metrics_port=port)
    async with (
        started(settings, metrics_listener=True) as app,
        client(app) as http,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as operations,
    ):
        await http.get("/store/products", params={"market": "US"})

        scraped = await operations.get("/metrics")
        assert scraped.headers["content-type"].startswith("text/plain")
        families = {family.name for family in text_string_to_metric_families(scraped.text)}
        assert {"colonnade_http_requests", "colonnade_db_query_duration_seconds"} <= families
        assert 'route="/store/products"' in scraped.text
        assert (await operations.get("/health/live")).json() == {"status": "live"}
        details = await operations.get("/health/details")
        assert details.json()["checks"] == {"database": "ok", "bus": "ok", "outbox_relay": "ok"}
        assert (await operations.get("/docs")).status_code == 404
    # Stopped with the shop: the port is free again.
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_port_zero_turns_the_metrics_port_off() -> None:
    assert serve_metrics(Settings(metrics_port=0)) is None


def test_a_taken_metrics_port_stops_the_process_that_wanted_it_saying_which() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(OSError, match="in use") as refused:
            serve_metrics(Settings(metrics_port=port))

    assert f"127.0.0.1:{port}" in " ".join(refused.value.__notes__)
