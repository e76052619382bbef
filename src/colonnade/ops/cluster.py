"""The distributed shape on one machine: `colonnade cluster up` starts web replicas, a relay,
a worker and nginx in front of the replicas as its children, watches them, and stops them in
order when asked to; `colonnade cluster down` asks it to, from another terminal.

What runs, and where, is kept in a state directory (`.colonnade-cluster/` in the working
directory, or COLONNADE_CLUSTER_DIR): the nginx configuration, every process's log, and
`state.json` naming the supervising process and its children.

With `--group` the replicas are split by module: each group's replicas serve only its
modules' routes, and nginx sends every route of the shop to the group that serves it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.routing import iter_route_contexts
from pydantic import SecretStr
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from colonnade.app import REMOTE_CALLERS, create_app
from colonnade.kernel.processes import running
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES

STATE_FILE = "state.json"
# A child that dies is started again, but no sooner than this after its last start, so one
# that cannot start costs a restart every few seconds rather than a busy loop.
RESTART_INTERVAL_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 90.0
# Stopping waits this long for a process beyond its own grace before it is killed.
STOP_MARGIN_SECONDS = 10.0


# The group of the modules no --group names, and of every route no module owns (health, /ops,
# /docs, /openapi.json, dead letters).
REST = "rest"
# Without --group: one group of replicas serving every module.
EVERYTHING = "web"
# Group names become nginx upstream names and process names.
_GROUP_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_PARAMETER = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class ModuleGroup:
    """Replicas serving the routes of these modules; none named: every module's."""

    name: str
    modules: tuple[str, ...]
    replicas: int


def module_groups(specs: Sequence[str], replicas: int) -> list[ModuleGroup]:
    """The groups `--group NAME=MODULE,MODULE[:REPLICAS]` asks for (`replicas` each unless
    said), then `rest` with the modules none names; without any, one group serving all.
    A ValueError says what is wrong with them."""
    if not specs:
        return [ModuleGroup(EVERYTHING, (), replicas)]
    groups: list[ModuleGroup] = []
    owner: dict[str, str] = {}
    for spec in specs:
        name, equals, listing = spec.partition("=")
        if not equals or not listing:
            raise ValueError(f"--group {spec}: expected NAME=MODULE,MODULE[:REPLICAS]")
        if not _GROUP_NAME.fullmatch(name):
            raise ValueError(f"--group {spec}: name groups with a-z, 0-9, - and _")
        if name == REST:
            raise ValueError(f"--group {spec}: {REST} is the group of the modules none names")
        if any(g.name == name for g in groups):
            raise ValueError(f"--group {spec}: two groups are named {name}")
        listed, colon, count = listing.partition(":")
        if colon and not (count.isdigit() and int(count) > 0):
            raise ValueError(f"--group {spec}: replicas must be a whole number from 1")
        modules = tuple(m.strip() for m in listed.split(",") if m.strip())
        if not modules:
            raise ValueError(f"--group {spec}: name its modules")
        unknown = [m for m in modules if m not in MODULES]
        if unknown:
            raise ValueError(f"--group {spec}: no such modules: {', '.join(unknown)}")
        for module in modules:
            if module in owner:
                raise ValueError(f"--group {spec}: {module} is in group {owner[module]} already")
            owner[module] = name
        groups.append(ModuleGroup(name, modules, int(count) if colon else replicas))
    remaining = tuple(m for m in MODULES if m not in owner)
    return [*groups, ModuleGroup(REST, remaining, replicas)]


@dataclass(frozen=True)
class EdgeRoute:
    """One route template of the shop at the edge: the anchored regex nginx matches paths
    with, and the group its requests go to."""

    pattern: str
    group: str
    # Methods of the same template another group serves: one path, two modules
    # (identity reads /store/customers/me, compliance erases it).
    elsewhere: tuple[tuple[str, str], ...] = ()


def edge_routes(
    routes: Iterable[tuple[str, Iterable[str], str | None]], groups: Sequence[ModuleGroup]
) -> list[EdgeRoute]:
    """Where each route goes: `routes` are (template, methods, owning module or None), in the
    order the shop matches them, and so the order nginx must check them in."""
    group_of = {module: g.name for g in groups for module in g.modules}
    by_template: dict[str, dict[str, str]] = {}
    for template, methods, module in routes:
        group = group_of.get(module, REST) if module is not None else REST
        served = by_template.setdefault(template, {})
        for method in methods:
            served.setdefault(method, group)
    edge = []
    for template, served in by_template.items():
        first = next(iter(served.values()), REST)
        elsewhere = tuple(sorted((m, g) for m, g in served.items() if g != first))
        edge.append(EdgeRoute(_anchored(template), first, elsewhere))
    return edge


def _anchored(template: str) -> str:
    pieces = _PARAMETER.split(template)
    return "^" + "[^/]+".join(re.escape(piece) for piece in pieces) + "$"


def shop_routes(settings: Settings) -> list[tuple[str, frozenset[str], str | None]]:
    """Every route of the shop with its methods and the module that owns it (None for the
    routes every process serves), in matching order. The app is built, not started."""
    # Every module's routes; a key of its own, or building the app warns it has none.
    key = settings.secret_key or SecretStr(secrets.token_urlsafe(48))
    app = create_app(
        settings.model_copy(update={"serve_modules": "", "secret_key": key}), migrate=False
    )
    routes = []
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None)
        if not methods or route.path_format is None:
            continue  # a mount (the /ops page's static files): `location /` reaches it
        # A module's routes live in colonnade.modules.<module>.api.
        parts = route.endpoint.__module__.split(".")
        module = parts[2] if parts[:2] == ["colonnade", "modules"] else None
        routes.append((route.path_format, frozenset[str](methods), module))
    return routes


def state_dir() -> Path:
    return Path(os.environ.get("COLONNADE_CLUSTER_DIR", ".colonnade-cluster")).absolute()


def refusal(settings: Settings) -> str | None:
    """Why this environment cannot run the distributed shape, or None when it can."""
    if not settings.database_url.startswith("postgresql"):
        return (
            "the cluster needs PostgreSQL in COLONNADE_DATABASE_URL (postgresql+asyncpg://…):"
            " its processes share one database"
        )
    if settings.bus_url is None or not settings.bus_url.startswith("nats://"):
        return (
            "the cluster needs NATS JetStream in COLONNADE_BUS_URL (nats://host:4222):"
            " its processes hand events to each other there"
        )
    if settings.inventory_elsewhere:
        # Its one relay and worker work on the shop's database; inventory's would have none.
        return (
            "the cluster runs the shop on one database: unset COLONNADE_INVENTORY_DATABASE_URL"
            " (inventory on its own database runs as `serve --modules inventory` beside it:"
            " README)"
        )
    if nginx_binary() is None:
        return "the cluster's edge is nginx, and none is installed (apt-get install nginx-light)"
    return None


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
        None,
    )


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# Ports this process has handed out: the kernel may give a probe's port again before the
# child it was meant for binds it, and two replicas on one port leave one restarting forever.
_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def nginx_conf(
    directory: Path,
    host: str,
    port: int,
    upstreams: dict[str, list[int]],
    routes: Sequence[EdgeRoute],
    max_body_bytes: int,
) -> str:
    """nginx in the foreground, everything it writes inside `directory`, balancing each
    group's replicas round robin; `routes` send each route to its group, and what none
    matches goes to the last group (the only one, or `rest`)."""
    blocks = []
    for group, replicas in upstreams.items():
        servers = "\n".join(
            f"        server 127.0.0.1:{replica} max_fails=1 fail_timeout=2s;"
            for replica in replicas
        )
        blocks.append(f"""    upstream colonnade_{group} {{
{servers}
        keepalive 64;
        # Below uvicorn's own 5 s: nginx must drop an idle connection before the replica
        # does, or a request could be sent down one the replica is just closing.
        keepalive_timeout 4s;
    }}
""")
    upstream_blocks = "\n".join(blocks)
    locations = "".join(_location(route) for route in routes)
    default = list(upstreams)[-1]
    return f"""# Written by `colonnade cluster up` on every start; changes here are overwritten.
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/logs/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log {directory}/logs/nginx-access.log;
    # The shop's own limit (COLONNADE_MAX_BODY_BYTES), so both refuse the same bodies; held
    # in memory, and answers are never spooled to disk, so nginx's workers need no write
    # access here, whichever user they run as.
    client_max_body_size {max_body_bytes};
    client_body_buffer_size {max_body_bytes};
    proxy_max_temp_file_size 0;
    client_body_temp_path {directory}/nginx-temp/client-body;
    proxy_temp_path {directory}/nginx-temp/proxy;
    fastcgi_temp_path {directory}/nginx-temp/fastcgi;
    uwsgi_temp_path {directory}/nginx-temp/uwsgi;
    scgi_temp_path {directory}/nginx-temp/scgi;

{upstream_blocks}
    server {{
        listen {host}:{port};

        # Every location below proxies with these.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        # nginx is the edge: nothing in front of it is trusted, so the client's own
        # X-Forwarded-For is replaced, not appended to, and a client cannot pose as
        # another address to escape its rate limits.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Another replica is tried only when one cannot be reached. Never for a POST
        # already sent (nginx's default, kept by leaving out non_idempotent): the first
        # replica may be charging the card; the client retries under its Idempotency-Key
        # and is answered from the first result. Not on a timeout either: a slow answer
        # is still being worked on.
        proxy_next_upstream error;
{locations}
        location / {{
            proxy_pass http://colonnade_{default};
        }}
    }}
}}
"""


def _location(route: EdgeRoute) -> str:
    """A regex location: nginx checks them in the order written, before `location /`."""
    if not route.elsewhere:
        return f"""
        location ~ "{route.pattern}" {{
            proxy_pass http://colonnade_{route.group};
        }}
"""
    # An upstream named in a variable is found among the upstream blocks, no resolver needed.
    choices = "".join(
        f"""
            if ($request_method = {method}) {{
                set $colonnade_group colonnade_{group};
            }}"""
        for method, group in route.elsewhere
    )
    return f"""
        location ~ "{route.pattern}" {{
            set $colonnade_group colonnade_{route.group};{choices}
            proxy_pass http://$colonnade_group;
        }}
"""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    url: str | None = None
    metrics_port: int | None = None
    # The module group a web replica serves.
    group: str | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        with self.log.open("ab") as out:
            # A session of its own: Ctrl+C in the terminal reaches only the supervisor, which
            # then stops the children in order.
            self.process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, number: signal.Signals) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(number)

    def wait(self, seconds: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Cluster:
    """The children of one `colonnade cluster up`, in the order they start."""

    directory: Path
    edge_url: str
    relay: Child
    worker: Child
    web: list[Child]
    edge: Child
    console: Console
    stop_grace_seconds: float
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def children(self) -> list[Child]:
        return [self.relay, self.worker, *self.web, self.edge]

    def run(self) -> int:
        """Start, supervise until asked to stop, stop; the exit code of `cluster up`."""
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: self.stopping.set())
        try:
            if not self._start():
                return 0 if self.stopping.is_set() else 1
            self.console.print(self._panel())
            self._supervise()
            return 0
        finally:
            self._stop()
            (self.directory / STATE_FILE).unlink(missing_ok=True)

    def _start(self) -> bool:
        for child in (self.relay, self.worker, *self.web):
            child.start()
            self._save_state()
        # The edge opens only once every replica takes requests, so it never answers 502.
        for child in self.web:
            assert child.url is not None
            if not self._await_ready(child, child.url):
                return False
        self.edge.start()
        self._save_state()
        return self._await_ready(self.edge, self.edge_url)

    def _await_ready(self, child: Child, url: str) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self.stopping.is_set():
            if not child.running():
                self.console.print(
                    f"[red]{child.name} exited while starting[/red]; its log: {child.log}"
                )
                return False
            if _ready(url):
                return True
            if time.monotonic() > deadline:
                self.console.print(f"[red]{child.name} is not ready[/red]; its log: {child.log}")
                return False
            time.sleep(0.2)
        return False

    def _supervise(self) -> None:
        while not self.stopping.wait(0.5):
            for child in self.children:
                if child.running():
                    continue
                if child.process is not None:
                    code = child.process.returncode
                    self.console.print(
                        f"[red]{child.name} exited with code {code}[/red]; restarting it."
                        f" Its log: {child.log}"
                    )
                    child.process = None
                if time.monotonic() - child.started_at >= RESTART_INTERVAL_SECONDS:
                    child.start()
                    self._save_state()

    def _stop(self) -> None:
        """The edge first, so no new requests arrive; then the replicas, which finish theirs;
        the worker; the relay last, so it publishes everything the others committed."""
        self.console.print("stopping: nginx, then web, worker and relay")
        self.edge.stop(signal.SIGQUIT)  # nginx's graceful stop: answers in flight complete
        self.edge.wait(self.stop_grace_seconds)
        for group in (self.web, [self.worker], [self.relay]):
            for child in group:
                child.stop(signal.SIGTERM)
            for child in group:
                child.wait(self.stop_grace_seconds)
        self.console.print("[green]every process of the cluster has stopped[/green]")

    def _save_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "edge": self.edge_url,
            "children": [
                {
                    "name": child.name,
                    "pid": child.pid,
                    "url": child.url,
                    "metrics_port": child.metrics_port,
                    "group": child.group,
                    "log": str(child.log),
                }
                for child in self.children
                if child.pid is not None
            ],
        }
        path = self.directory / STATE_FILE
        path.with_suffix(".tmp").write_text(json.dumps(state, indent=2))
        path.with_suffix(".tmp").replace(path)

    def _panel(self) -> Panel:
        # Narrow enough for 80 columns: a log shown in full in a pipe or a file is read there.
        table = Table(box=None, padding=(0, 2, 0, 0))
        for column in ("process", "pid", "listens on", "metrics port", "log"):
            table.add_column(column, no_wrap=True)
        for child in self.children:
            table.add_row(
                child.name,
                str(child.pid),
                child.url.removeprefix("http://") if child.url else "-",
                str(child.metrics_port or "-"),
                child.log.name,
            )
        return Panel.fit(
            Group(
                f"Edge     {self.edge_url}",
                f"Logs     {os.path.relpath(self.directory / 'logs')}/",
                "Stop it  colonnade cluster down",
                "",
                table,
            ),
            title="Colonnade cluster is up",
        )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health/ready", timeout=2) as answer:  # noqa: S310 - ours
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def plan(
    settings: Settings,
    console: Console,
    *,
    groups: Sequence[ModuleGroup],
    host: str,
    port: int,
) -> Cluster:
    """The cluster's children, with their ports, environments and logs, and nginx's
    configuration written to the state directory; nothing started yet."""
    directory = state_dir()
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    (directory / "nginx-temp").mkdir(exist_ok=True)
    base = dict(os.environ)
    if settings.secret_key is None:
        # Every replica must verify the tokens any other signed; they live as long as this run.
        base["COLONNADE_SECRET_KEY"] = secrets.token_urlsafe(48)
    colonnade = [sys.executable, "-m", "colonnade"]

    def child(name: str, *args: str, group: ModuleGroup | None = None) -> Child:
        metrics_port = _free_port()
        env = {**base, "COLONNADE_METRICS_PORT": str(metrics_port)}
        argv = [*colonnade, *args]
        url = None
        if group is not None:
            http_port = _free_port()
            # Requests only: the relay and the worker of the cluster move and consume events.
            argv += ["--host", "127.0.0.1", "--port", str(http_port)]
            argv += ["--no-relay", "--no-consumers"]
            # None named: every module's routes (a `rest` whose modules the other groups
            # all took serves them too, but the edge sends it none of their requests).
            if group.modules:
                argv += ["--modules", ",".join(group.modules)]
                # Modules another group serves are called there, where there is a port.
                elsewhere = [
                    module
                    for module, callers in sorted(REMOTE_CALLERS.items())
                    if set(callers) & set(group.modules) and module not in group.modules
                ]
                if elsewhere:
                    env["COLONNADE_REMOTE_MODULES"] = ",".join(elsewhere)
            url = f"http://127.0.0.1:{http_port}"
            # Only the edge in front of them may name the client.
            env["COLONNADE_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
        return Child(
            name,
            argv,
            env,
            directory / "logs" / f"{name}.log",
            url,
            metrics_port,
            None if group is None else group.name,
        )

    web = [
        child(f"{group.name}-{n}", "serve", group=group)
        for group in groups
        for n in range(1, group.replicas + 1)
    ]
    upstreams = {
        group.name: [int(c.url.rsplit(":", 1)[1]) for c in web if c.group == group.name and c.url]
        for group in groups
    }
    # One group serves every route; several need nginx to know which serves which.
    routes = edge_routes(shop_routes(settings), groups) if len(groups) > 1 else []
    conf = directory / "nginx.conf"
    conf.write_text(nginx_conf(directory, host, port, upstreams, routes, settings.max_body_bytes))
    nginx = nginx_binary()
    assert nginx is not None  # refusal() said so otherwise
    edge = Child(
        "nginx",
        [
            nginx,
            "-p",
            f"{directory}/",
            "-c",
            str(conf),
            "-e",
            str(directory / "logs" / "nginx-error.log"),
            "-g",
            "daemon off;",
        ],
        base,
        directory / "logs" / "nginx.log",
        f"http://{host}:{port}",
    )
    return Cluster(
        directory=directory,
        edge_url=f"http://{host}:{port}",
        relay=child("relay", "relay"),
        worker=child("worker", "worker"),
        web=web,
        edge=edge,
        console=console,
        stop_grace_seconds=stop_grace_seconds(settings),
    )


def stop_grace_seconds(settings: Settings) -> float:
    """How long one process may take to stop: its requests in flight, then its outbox."""
    return settings.shutdown_grace_seconds + settings.outbox_drain_seconds + STOP_MARGIN_SECONDS


def running_supervisor() -> int | None:
    """The pid of the `cluster up` the state directory names, if it still runs."""
    try:
        pid = int(json.loads((state_dir() / STATE_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None
    return pid if running(pid) else None


def bring_down(pid: int, seconds: float) -> bool:
    """Ask the `cluster up` at `pid` to stop, and wait until it has ended."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
