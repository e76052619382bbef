"""A real `colonnade serve` process per database kind, driven over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PostgresServer, free_port, sqlalchemy_url


@dataclass
class RunningShop:
    base_url: str
    env: dict[str, str]
    workdir: Path

    @property
    def metrics_url(self) -> str:
        """Where its operations listener answers: /metrics, /health/live, /health/details."""
        return f"http://127.0.0.1:{self.env['COLONNADE_METRICS_PORT']}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "colonnade", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 90
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the shop exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the shop did not become ready:\n{log.read_text()}")


def shop_environment(
    request: pytest.FixtureRequest, workdir: Path, **settings: str
) -> dict[str, str]:
    """The environment of a shop process on the database kind the test is parametrized with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        env["COLONNADE_DATABASE_URL"] = sqlalchemy_url(server.create_database("colonnade_e2e"))
    else:
        env["COLONNADE_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'colonnade.db'}"
    # A fixed key keeps staff tokens valid across a restart of the shop.
    env["COLONNADE_SECRET_KEY"] = "end-to-end-tests-only-" + "k" * 32
    # A port of its own: shops of tests running side by side would fight over the default one.
    env["COLONNADE_METRICS_PORT"] = str(free_port())
    # Production's 1 s probe deadline is too short for a loaded test machine's first connection.
    env["COLONNADE_READINESS_TIMEOUT_SECONDS"] = "10"
    env.update({f"COLONNADE_{name.upper()}": value for name, value in settings.items()})
    return env


def start_shop(
    env: dict[str, str], workdir: Path, *args: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `colonnade serve` and wait until it is ready; returns the process and its URL."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "colonnade", "serve", "--port", str(port), *args],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    wait_until_ready(base_url, process, log)
    return process, base_url


def counted_by(metrics_url: str, sample: str, label: str) -> dict[str, float]:
    """A process's counter `sample`, by one of its labels, from its metrics port."""
    scraped = httpx.get(metrics_url + "/metrics", timeout=10)
    scraped.raise_for_status()
    return {
        found.labels[label]: found.value
        for family in text_string_to_metric_families(scraped.text)
        for found in family.samples
        if found.name == sample
    }


def checkouts_by_outcome(metrics_url: str) -> dict[str, float]:
    """A process's `colonnade_checkouts_total`, by outcome, from its metrics port."""
    return counted_by(metrics_url, "colonnade_checkouts_total", "outcome")


def process_tree(pid: int) -> set[int]:
    """`pid` and every process descending from it now (Linux: read from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        parents[int(stat.parent.name)] = int(fields[1])
    tree = {pid}
    while True:
        grown = tree | {child for child, parent in parents.items() if parent in tree}
        if grown == tree:
            return tree
        tree = grown


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningShop]:
    workdir = tmp_path_factory.mktemp("shop")
    env = shop_environment(request, workdir)
    process, base_url = start_shop(env, workdir, "--demo-data")
    try:
        yield RunningShop(base_url, env, workdir)
    finally:
        stop(process)
