"""`colonnade cluster up`: the distributed shape on one machine, behind nginx. A flash sale
through the edge sells exactly the stock, spread over both replicas; the replicas see each
client by its own address, whatever it claims; a process that dies is started again;
`colonnade cluster down` ends every process. With `--group` each group's replicas take the
requests of their modules' routes only, and the rest take health and everything else; the
two checkout replicas sell one flash sale exactly with inventory in the browse group's process,
holding and selling its stock a call per batch.

Locally the tests skip when nginx is missing; in CI (CI=true) they fail instead.
scripts/test.sh installs nginx where it can."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from colonnade.ops.cluster import nginx_binary
from tests.conftest import OwnNats, PostgresServer, free_port, sqlalchemy_url
from tests.e2e.buyers import flash_sale
from tests.e2e.conftest import (
    RunningShop,
    checkouts_by_outcome,
    process_tree,
    stop,
    wait_until_ready,
)
from tests.e2e.staff import Staff


@dataclass
class ClusterUp:
    process: subprocess.Popen[bytes]
    shop: RunningShop
    log: Path

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(
            (self.shop.workdir / ".colonnade-cluster" / "state.json").read_text()
        )
        return state

    def replicas(self, group: str = "web") -> list[dict[str, Any]]:
        return [child for child in self.state()["children"] if child["group"] == group]


@pytest.fixture(scope="module")
def nginx() -> None:
    if nginx_binary() is None:
        message = "nginx is missing (apt-get install nginx-light)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)


@contextmanager
def _cluster_up(
    postgres: PostgresServer, workdir: Path, database: str, *options: str
) -> Iterator[ClusterUp]:
    broker = OwnNats(workdir / "jetstream")
    broker.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
    env.update(
        COLONNADE_DATABASE_URL=sqlalchemy_url(postgres.create_database(database)),
        COLONNADE_BUS_URL=broker.url,
        COLONNADE_SECRET_KEY="end-to-end-tests-only-" + "k" * 32,
        COLONNADE_OUTBOX_POLL_SECONDS="0.2",
    )
    port = free_port()
    up = ["cluster", "up", "--port", str(port), "--demo-data", *options]
    log = workdir / "cluster-up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "colonnade", *up],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    edge = f"http://127.0.0.1:{port}"
    try:
        # Migrations, the demo shop and the replicas first: slower than one `serve`.
        wait_until_ready(edge, process, log, seconds=180)
        yield ClusterUp(process, RunningShop(edge, env, workdir), log)
    finally:
        if process.poll() is None:
            stop(process)
        broker.stop()


@pytest.fixture(scope="module")
def cluster(
    nginx: None,
    postgres: PostgresServer,
    nats_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterUp]:
    workdir = tmp_path_factory.mktemp("cluster-up")
    with _cluster_up(postgres, workdir, "colonnade_cluster_up", "--replicas", "2") as up:
        yield up


@pytest.fixture(scope="module")
def grouped_cluster(
    nginx: None,
    postgres: PostgresServer,
    nats_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterUp]:
    workdir = tmp_path_factory.mktemp("cluster-groups")
    groups = ["--group", "browse=catalog,pricing,inventory"]
    groups += ["--group", "buy=cart,checkout,payments,orders:2"]
    with _cluster_up(
        postgres, workdir, "colonnade_cluster_groups", "--replicas", "1", *groups
    ) as up:
        yield up


def test_a_flash_sale_through_the_edge_sells_exactly_the_stock_on_both_replicas(
    cluster: ClusterUp,
) -> None:
    staff = Staff.sign_in(cluster.shop)
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)
    before = [checkouts_by_outcome(_metrics(r)) for r in cluster.replicas()]

    tally = asyncio.run(flash_sale(cluster.shop.base_url, sku, buyers))

    assert tally.statuses == {201: stock, 409: buyers - stock}, tally.codes
    level = staff.stock(sku)
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    paid = sorted(o["id"] for o in staff.orders_for(sku) if o["status"] == "paid")
    assert paid == sorted(p.body["id"] for p in tally.purchases if p.status == 201)
    # nginx spread the buyers: each replica took a share of the checkouts.
    after = [checkouts_by_outcome(_metrics(r)) for r in cluster.replicas()]
    served = [sum(a.values()) - sum(b.values()) for a, b in zip(after, before, strict=True)]
    assert all(share > 0 for share in served), served
    assert sum(served) == buyers


def _metrics(replica: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{replica['metrics_port']}"


def _counted(replica: dict[str, Any], counter: str, **labels: str) -> float:
    """A counter of the replica's, summed over the samples with these labels, from its
    metrics port."""
    scraped = httpx.get(_metrics(replica) + "/metrics", timeout=10)
    scraped.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped.text)
        if family.name == counter
        for sample in family.samples
        if sample.name == f"{counter}_total"
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _requests(replica: dict[str, Any], method: str, route: str) -> float:
    """How many requests for `route` the replica answered."""
    return _counted(replica, "colonnade_http_requests", method=method, route=route)


def _remote_calls(replica: dict[str, Any], side: str, module: str) -> float:
    """Calls to `module` the replica made or answered (`side`) and had answered."""
    return _counted(replica, "colonnade_remote_calls", side=side, module=module, outcome="ok")


def test_module_groups_take_only_their_modules_requests_and_call_each_other(
    grouped_cluster: ClusterUp,
) -> None:
    edge = grouped_cluster.shop.base_url
    staff = Staff.sign_in(grouped_cluster.shop)
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)
    groups = {g: grouped_cluster.replicas(g) for g in ("browse", "buy", "rest")}
    assert [len(groups[g]) for g in ("browse", "buy", "rest")] == [1, 2, 1]
    listing = ("GET", "/store/products")
    readiness = ("GET", "/health/ready")
    before = {
        g: [
            (checkouts_by_outcome(_metrics(r)), _requests(r, *listing), _requests(r, *readiness))
            for r in replicas
        ]
        for g, replicas in groups.items()
    }

    listed = httpx.get(edge + "/store/products", params={"market": "US"}, timeout=10)
    assert listed.status_code == 200, listed.text
    tally = asyncio.run(flash_sale(edge, sku, buyers))
    assert httpx.get(edge + "/health/ready", timeout=10).status_code == 200

    assert tally.statuses == {201: stock, 409: buyers - stock}, tally.codes
    level = staff.stock(sku)
    assert (level["reserved"], level["sold"], level["available"]) == (0, stock, 0)
    taken = {
        g: [
            (
                sum(checkouts_by_outcome(_metrics(r)).values()) - sum(b[0].values()),
                _requests(r, *listing) - b[1],
                _requests(r, *readiness) - b[2],
            )
            for r, b in zip(replicas, before[g], strict=True)
        ]
        for g, replicas in groups.items()
    }
    # (checkouts, listings, readiness checks) each replica answered: browse lists, buy sells
    # (both of its replicas a share), rest answers readiness.
    assert taken["browse"] == [(0, 1, 0)], taken
    assert taken["rest"] == [(0, 0, 1)], taken
    assert all(listed == ready == 0 and sold > 0 for sold, listed, ready in taken["buy"]), taken
    assert sum(sold for sold, _, _ in taken["buy"]) == buyers, taken
    # The buy replicas priced their carts by calling pricing in the browse group's process,
    # and held the stock there a call per batch of checkouts (fewer calls than checkouts),
    # and sold it a call per batch that sold any.
    (browse,) = groups["browse"]
    made = sum(_remote_calls(r, "made", "pricing") for r in groups["buy"])
    assert made >= buyers
    assert _remote_calls(browse, "answered", "pricing") == made
    holds, settles = (
        [
            _counted(r, "colonnade_remote_calls", side="made", module="inventory", method=method)
            for r in groups["buy"]
        ]
        for method in ("hold", "settle")
    )
    checkouts = [checked_out for checked_out, _, _ in taken["buy"]]
    assert all(0 < h < c for h, c in zip(holds, checkouts, strict=True)), (holds, checkouts)
    assert 0 < sum(settles) <= stock, settles
    stock_calls = sum(_remote_calls(r, "made", "inventory") for r in groups["buy"])
    assert _remote_calls(browse, "answered", "inventory") == stock_calls


async def _logins(edge: str, address: str, attempts: int) -> list[int]:
    """Failed logins for different accounts from `address`, each claiming yet another
    address in X-Forwarded-For."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    edge + "/auth/token",
                    data={"username": f"nobody{n}@example.com", "password": "not the password"},
                    headers={"X-Forwarded-For": f"203.0.113.{n % 250}"},
                )
                for n in range(attempts)
            )
        )
    return [answer.status_code for answer in answers]


def test_the_replicas_see_each_client_by_its_own_address(cluster: ClusterUp) -> None:
    # 70 logins overrun the 20 a minute per address that each of the two replicas grants.
    flood = asyncio.run(_logins(cluster.shop.base_url, "127.0.0.2", 70))
    assert 429 in flood, "a client escaped the limit by claiming other addresses"
    # Another client (loopback has many addresses) keeps its own allowance: the replicas see
    # the client, not nginx.
    assert asyncio.run(_logins(cluster.shop.base_url, "127.0.0.3", 1)) == [401]


def test_a_process_that_dies_is_started_again(cluster: ClusterUp) -> None:
    def worker_pid() -> int:
        return int(next(c["pid"] for c in cluster.state()["children"] if c["name"] == "worker"))

    killed = worker_pid()
    os.kill(killed, signal.SIGKILL)

    deadline = time.monotonic() + 30
    while worker_pid() == killed:
        assert time.monotonic() < deadline, cluster.log.read_text()
        time.sleep(0.2)
    assert Path(f"/proc/{worker_pid()}").exists()
    assert "worker exited with code -9" in cluster.log.read_text()


def test_cluster_down_stops_every_process_and_closes_the_edge(cluster: ClusterUp) -> None:
    processes = process_tree(cluster.process.pid)
    assert len(processes) >= 6  # the supervisor, nginx (and its worker), 2 web, relay, worker

    down = cluster.shop.cli("cluster", "down")

    assert down.returncode == 0, down.stdout + down.stderr
    assert cluster.process.wait(timeout=30) == 0, cluster.log.read_text()
    assert not [pid for pid in processes if Path(f"/proc/{pid}").exists()]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(cluster.shop.base_url.rsplit(":", 1)[1])))
    again = cluster.shop.cli("cluster", "down")
    assert "No cluster runs" in again.stdout
