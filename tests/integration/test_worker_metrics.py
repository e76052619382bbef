"""The shop's metrics across worker processes, in real processes writing prometheus_client's
multiprocess files: a worker that died no longer counts in what is in flight now, while what
it counted over its life still adds to the totals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from colonnade.kernel.metrics import workers_registry

# A worker: something in flight now (a live gauge) and something counted (a counter).
_WORKER = """
import sys
from prometheus_client import Counter, Gauge
Gauge("worker_test_in_flight", "", multiprocess_mode="livesum").set(int(sys.argv[1]))
Counter("worker_test_answered", "").inc(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""


def _worker(directory: Path, value: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(value)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _values(directory: Path) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in workers_registry(str(directory)).collect()
        for sample in family.samples
        if sample.name.startswith("worker_test_")
    }


def test_a_killed_worker_no_longer_counts_in_flight_but_its_totals_stay(tmp_path: Path) -> None:
    killed, living = _worker(tmp_path, 3), _worker(tmp_path, 2)
    try:
        assert _values(tmp_path) == {
            "worker_test_in_flight": 5.0,
            "worker_test_answered_total": 5.0,
        }
        killed.kill()
        killed.wait()

        assert _values(tmp_path) == {
            "worker_test_in_flight": 2.0,
            "worker_test_answered_total": 5.0,
        }
    finally:
        for process in (killed, living):
            if process.poll() is None:
                process.communicate("")
