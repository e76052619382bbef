"""`colonnade cluster up --group`: which modules each group of replicas serves, and which
group nginx sends each of the shop's routes to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel.settings import Settings
from colonnade.ops.cluster import (
    EdgeRoute,
    ModuleGroup,
    edge_routes,
    module_groups,
    nginx_binary,
    nginx_conf,
    shop_routes,
)

BROWSE_AND_BUY = [
    "browse=catalog,pricing",
    "buy=cart,checkout,inventory,payments,orders:2",
]


@pytest.fixture(scope="module")
def routes(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[tuple[str, frozenset[str], str | None]]:
    database = tmp_path_factory.mktemp("routes") / "colonnade.db"
    return shop_routes(Settings(database_url=f"sqlite+aiosqlite:///{database}"))


def group_answering(edge: list[EdgeRoute], path: str, method: str = "GET") -> str:
    """As nginx chooses: the first regex location matching, else `location /` (rest)."""
    for route in edge:
        if re.search(route.pattern, path):
            return dict(route.elsewhere).get(method, route.group)
    return "rest"


def test_groups_name_their_modules_and_the_rest_serve_the_others() -> None:
    groups = module_groups(BROWSE_AND_BUY, replicas=1)

    assert groups == [
        ModuleGroup("browse", ("catalog", "pricing"), 1),
        ModuleGroup("buy", ("cart", "checkout", "inventory", "payments", "orders"), 2),
        ModuleGroup(
            "rest", ("identity", "promotions", "compliance", "notifications", "analytics"), 1
        ),
    ]
    assert module_groups([], replicas=3) == [ModuleGroup("web", (), 3)]


@pytest.mark.parametrize(
    ("groups", "says"),
    [
        (["browse=catalog,shipping"], "no such modules: shipping"),
        (["browse=catalog", "buy=cart,catalog"], "catalog is in group browse already"),
        (["rest=catalog"], "rest is the group of the modules none names"),
        (["browse=catalog", "browse=cart"], "two groups are named browse"),
        (["browse"], "expected NAME=MODULE,MODULE[:REPLICAS]"),
        (["browse=catalog:0"], "replicas must be a whole number from 1"),
    ],
)
def test_cluster_up_refuses_groups_it_cannot_build(
    groups: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    arguments = [argument for group in groups for argument in ("--group", group)]

    result = CliRunner().invoke(cli, ["cluster", "up", *arguments])

    assert result.exit_code == 2
    assert says in result.output


def test_each_route_reaches_the_group_serving_its_module(
    routes: list[tuple[str, frozenset[str], str | None]],
) -> None:
    edge = edge_routes(routes, module_groups(BROWSE_AND_BUY, replicas=1))

    assert group_answering(edge, "/store/products") == "browse"
    assert group_answering(edge, "/store/products/0b7c9d2e") == "browse"
    assert group_answering(edge, "/store/markets/US") == "browse"
    assert group_answering(edge, "/store/carts", "POST") == "buy"
    assert group_answering(edge, "/store/carts/0b7c9d2e/lines/SKU-1", "DELETE") == "buy"
    assert group_answering(edge, "/store/carts/0b7c9d2e/checkout", "POST") == "buy"
    assert group_answering(edge, "/admin/orders/0b7c9d2e/refund", "POST") == "buy"
    assert group_answering(edge, "/auth/token", "POST") == "rest"
    assert group_answering(edge, "/health/ready") == "rest"
    assert group_answering(edge, "/openapi.json") == "rest"
    assert group_answering(edge, "/ops/static/ops.js") == "rest"
    # A parameter is one path segment, and the whole path must match.
    assert group_answering(edge, "/store/products/a/b") == "rest"
    assert group_answering(edge, "/store/productsx") == "rest"


def test_one_path_served_by_two_groups_is_told_apart_by_method(
    routes: list[tuple[str, frozenset[str], str | None]],
) -> None:
    # identity reads and changes /store/customers/me; compliance erases it.
    edge = edge_routes(routes, module_groups(["gdpr=compliance"], replicas=1))

    assert group_answering(edge, "/store/customers/me") == "rest"
    assert group_answering(edge, "/store/customers/me", "DELETE") == "gdpr"
    assert group_answering(edge, "/store/customers/me/export") == "gdpr"


def test_nginx_accepts_the_configuration(
    routes: list[tuple[str, frozenset[str], str | None]], tmp_path: Path
) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is missing")
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx-temp").mkdir()
    groups = module_groups([*BROWSE_AND_BUY, "gdpr=compliance"], replicas=1)
    upstreams = {group.name: [8001 + n] for n, group in enumerate(groups)}
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_conf(tmp_path, "127.0.0.1", 8000, upstreams, edge_routes(routes, groups), 65536)
    )

    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", str(tmp_path / "logs" / "e")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr


def test_cluster_up_refuses_inventory_on_a_database_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("COLONNADE_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/shop")
    monkeypatch.setenv("COLONNADE_BUS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv(
        "COLONNADE_INVENTORY_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/stock"
    )

    result = CliRunner().invoke(cli, ["cluster", "up"])

    assert result.exit_code == 2
    assert "the cluster runs the shop on one database" in result.output
