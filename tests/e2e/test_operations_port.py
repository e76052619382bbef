"""A started `colonnade serve`: whoever reaches the shop's port no longer reads its metrics
(revenue per currency, order counts); its metrics port on loopback serves them, and with a
metrics token set the public port serves them to the token's bearer only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningShop, shop_environment, start_shop, stop

TOKEN = "end-to-end-metrics-token-" + "m" * 24


@pytest.fixture(scope="module", params=["sqlite"])
def guarded_shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("guarded")
    env = shop_environment(request, workdir, metrics_token=TOKEN)
    process, base_url = start_shop(env, workdir)
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)


def test_the_public_port_shows_no_metrics_and_the_metrics_port_does(shop: RunningShop) -> None:
    httpx.get(shop.base_url + "/store/products", params={"market": "US"})

    assert httpx.get(shop.base_url + "/metrics").status_code == 404
    assert httpx.get(shop.base_url + "/health/details").status_code == 404
    assert httpx.get(shop.base_url + "/health/ready").json() == {"status": "ready"}
    scraped = httpx.get(shop.metrics_url + "/metrics")
    assert shop.metrics_url.startswith("http://127.0.0.1:")
    assert scraped.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(scraped.text)}
    assert {"colonnade_http_requests", "colonnade_orders_placed"} <= names
    assert 'route="/store/products"' in scraped.text
    assert httpx.get(shop.metrics_url + "/health/live").json() == {"status": "live"}


def test_with_a_metrics_token_the_public_metrics_answer_its_bearer_only(
    guarded_shop: RunningShop,
) -> None:
    metrics = guarded_shop.base_url + "/metrics"

    anonymous = httpx.get(metrics)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert httpx.get(metrics, headers={"Authorization": "Bearer not-the-token"}).status_code == 401
    granted = httpx.get(metrics, headers={"Authorization": f"Bearer {TOKEN}"})
    assert granted.status_code == 200
    assert "colonnade_http_requests_total" in granted.text
    # The metrics port serves them too, where it is reached at all.
    assert "colonnade_http_requests_total" in httpx.get(guarded_shop.metrics_url + "/metrics").text
