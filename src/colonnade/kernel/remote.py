"""Calls between modules in processes of their own: a module's service answers over NATS
request-reply (the nats.micro services API), and its caller holds an adapter that is the same
port, so the code that calls it does not change with the shape.

Why NATS and not HTTP between services: the distributed shape runs NATS already for its
events; one queue group per module balances the calls over the module's replicas with no
ports, Services or Ingress rules of their own; and the micro API answers discovery and
per-endpoint statistics (`nats micro ls`, $SRV.PING, $SRV.INFO, $SRV.STATS) for free.

A call goes to `<namespace>-calls.<module>.<method>` (the bus's namespace, colonnade by default)
as a JSON object of its arguments by name, encoded and decoded by pydantic from the service
method's own annotations (a batch in, a result per request out, where the method is
batch-shaped). Its headers carry the caller's deadline (`Colonnade-Deadline`, epoch seconds),
its idempotency key and its trace context. The answer is the result's JSON, or a refusal: the
problem as JSON, raised again on the caller's side as the same typed error (found by its
code). A refusal inside a batch's results travels the same way, in its place. A call no
replica answers by its deadline raises ModuleUnavailable (503) on the caller's side; the
answering side drops a call whose deadline has passed before it runs.

A parameter annotated AsyncConnection (a method that reads on its caller's connection when
both share a database) is not sent: the answering side reads on a connection of its own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import orjson
import structlog
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.micro import add_service
from nats.micro.request import ERROR_CODE_HEADER, Request
from nats.micro.service import (
    EndpointConfig,
    Service,
    ServiceConfig,
    ServiceVerb,
    control_subject,
)
from pydantic import PlainSerializer, PlainValidator, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel import tracing
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.jetstream import connect
from colonnade.kernel.metrics import REMOTE_CALL_DURATION, REMOTE_CALLS

log = structlog.get_logger(__name__)

DEADLINE = "Colonnade-Deadline"
IDEMPOTENCY_KEY = "Idempotency-Key"
# How long a call waits for its answer when neither its caller (`within`) nor the process
# (COLONNADE_REMOTE_CALL_SECONDS) says otherwise.
CALL_SECONDS = 5.0
VERSION = "1.0.0"

_deadline: ContextVar[float | None] = ContextVar("colonnade_deadline", default=None)
_idempotency_key: ContextVar[str | None] = ContextVar("colonnade_idempotency_key", default=None)


class _CallFailed(ColonnadeError):
    """A call to another process's module that got no answer of the module's own; its
    detail names the module and the method."""

    said: ClassVar[str]

    def __init__(self, module: str, method: str) -> None:
        super().__init__(
            self.said.format(module=module, method=method), module=module, method=method
        )


class ModuleUnavailable(_CallFailed):
    status = 503
    title = "Service unavailable"
    code = "module_unavailable"
    # Whether the module did the work is not known: a step's compensation or recovery finds out.
    said = "the {module} module did not answer in time"


class DeadlineExceeded(_CallFailed):
    status = 504
    title = "Gateway timeout"
    code = "deadline_exceeded"
    said = "the call to {module}.{method} came after its caller's deadline"


class RemoteFailure(_CallFailed):
    status = 500
    title = "Internal error"
    code = "internal_error"
    said = "the {module} module failed while answering {method}"


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Calls made inside answer within `seconds` from now (or by the deadline already set,
    if that is sooner)."""
    asked = time.time() + seconds
    current = _deadline.get()
    token = _deadline.set(asked if current is None else min(current, asked))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def on_behalf_of(idempotency_key: str | None) -> Iterator[None]:
    """Calls made inside carry the idempotency key of the request they serve."""
    token = _idempotency_key.set(idempotency_key)
    try:
        yield
    finally:
        _idempotency_key.reset(token)


def idempotency_key() -> str | None:
    """The idempotency key of the request being served here, also when a caller in another
    process sent it."""
    return _idempotency_key.get()


def subject(namespace: str, module: str, method: str) -> str:
    # Apart from the events' subjects (<namespace>.<module>.<Event>): a module's stream takes
    # every subject under its name, and would answer a call with a publish acknowledgement.
    return f"{namespace}-calls.{module}.{method}"


# --- the wire form of a method's arguments and result ----------------------------------------


def _problem(error: ColonnadeError) -> dict[str, Any]:
    return error.problem()


def _refusal(value: Any) -> ColonnadeError:
    if isinstance(value, ColonnadeError):
        return value
    if not isinstance(value, Mapping) or "code" not in value or "detail" not in value:
        raise ValueError("not a problem")
    return restored(value, _answering_module.get())


# The module whose answer is being read: its own error types are preferred (codes repeat
# across modules, `unknown_sku` in the cart's and the catalog's).
_answering_module: ContextVar[str | None] = ContextVar("colonnade_answering", default=None)

# A refusal on the wire: its problem details.
Refusal = Annotated[ColonnadeError, PlainValidator(_refusal), PlainSerializer(_problem)]


def restored(problem: Mapping[str, Any], module: str | None = None) -> ColonnadeError:
    """The typed error a problem's code names, with the same detail and extensions: what
    the caller would have caught had `module` answered in its own process. Of the types with
    that code, `module`'s own come first, then the kernel's, then the other modules'."""
    extensions = {
        k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail", "code")
    }
    kind = _error_type(str(problem["code"]), module) or _unknown_error(
        str(problem["code"]), int(problem.get("status", 500)), str(problem.get("title", ""))
    )
    error = kind.__new__(kind)
    ColonnadeError.__init__(error, str(problem["detail"]), **extensions)
    return error


# Error types are all defined once their modules are imported: each refusal of a flash sale
# need not walk them again.
@functools.cache
def _error_type(code: str, module: str | None) -> type[ColonnadeError] | None:
    found: list[type[ColonnadeError]] = []
    waiting: list[type[ColonnadeError]] = [ColonnadeError]
    while waiting:
        kind = waiting.pop()
        if kind.code == code and kind.__module__.startswith("colonnade."):
            found.append(kind)
        waiting += kind.__subclasses__()
    own = f"colonnade.modules.{module}." if module else None

    def rank(kind: type[ColonnadeError]) -> tuple[int, str]:
        place = kind.__module__ + "." + kind.__qualname__
        if own is not None and place.startswith(own):
            return 0, place
        return (1 if place.startswith("colonnade.kernel.") else 2), place

    return min(found, key=rank, default=None)


@functools.cache
def _unknown_error(code: str, status: int, title: str) -> type[ColonnadeError]:
    """A type for a code this process knows no type of (a newer module's), made once."""
    return type(
        "RemoteProblem", (ColonnadeError,), {"status": status, "title": title, "code": code}
    )


def _wire(annotation: Any) -> Any:
    """The annotation with every error type in it carried as a Refusal."""
    if isinstance(annotation, type) and issubclass(annotation, ColonnadeError):
        return Refusal
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is None or not args or origin is typing.Literal or origin is Annotated:
        return annotation
    wired = tuple(_wire(arg) for arg in args)
    if origin in (types.UnionType, typing.Union):
        return typing.Union[wired]  # noqa: UP007 - built from a tuple of members
    return origin[wired[0] if len(wired) == 1 else wired]


@dataclass(frozen=True)
class _Method:
    name: str
    arguments: dict[str, TypeAdapter[Any]]
    connections: tuple[str, ...]
    result: TypeAdapter[Any]


def _method(service: type, name: str) -> _Method:
    function = getattr(service, name)
    hints = typing.get_type_hints(function)
    parameters = [p for p in inspect.signature(function).parameters if p != "self"]
    connections = tuple(p for p in parameters if hints.get(p) is AsyncConnection)
    return _Method(
        name=name,
        arguments={p: TypeAdapter(_wire(hints[p])) for p in parameters if p not in connections},
        connections=connections,
        result=TypeAdapter(_wire(hints.get("return", Any))),
    )


# --- answering --------------------------------------------------------------------------------


class Answering:
    """A module's service answering other processes' calls to `methods`, as the nats.micro
    service `<namespace>-<module>` in the queue group of that name (its replicas share them)."""

    def __init__(
        self,
        module: str,
        service: object,
        methods: Sequence[str],
        db: Database | None = None,
        *,
        namespace: str = "colonnade",
    ) -> None:
        self.module = module
        self.namespace = namespace
        self._service = service
        self._methods = [_method(type(service), name) for name in methods]
        self._db = db
        self._micro: Service | None = None

    async def start(self, client: Client) -> None:
        self._micro = await add_service(
            client,
            ServiceConfig(
                name=f"{self.namespace}-{self.module}",
                version=VERSION,
                description=f"Colonnade's {self.module} module",
                queue_group=f"{self.namespace}-{self.module}",
            ),
        )
        for method in self._methods:
            await self._micro.add_endpoint(
                EndpointConfig(
                    name=method.name,
                    subject=subject(self.namespace, self.module, method.name),
                    handler=self._handler(method),
                )
            )
        # Answering once the server knows the subscriptions, not when they are sent. A flush
        # does not prove it: nats-py writes its PING ahead of commands still buffered, so a
        # PONG can come back before the SUBs leave. A request on this connection queues
        # behind them, and its answer from this service's own PING does prove it.
        await client.request(
            control_subject(ServiceVerb.PING, name=self._micro.info().name, id=self._micro.id),
            timeout=CALL_SECONDS,
        )

    async def stop(self) -> None:
        if self._micro is not None:
            await self._micro.stop()
            self._micro = None

    def _handler(self, method: _Method) -> Callable[[Request], Any]:
        async def answer(request: Request) -> None:
            headers = dict(request.headers or {})
            outcome = await self._answer(method, request, headers)
            _count("answered", self.module, method.name, outcome)

        return answer

    async def _answer(self, method: _Method, request: Request, headers: dict[str, str]) -> str:
        """Answer one call; its outcome, as the metric counts it."""
        left = float(headers.get(DEADLINE, time.time() + CALL_SECONDS)) - time.time()
        if left <= 0:
            await _refuse(request, DeadlineExceeded(self.module, method.name))
            return "late"
        with (
            tracing.answering(f"{self.module}.{method.name}", headers),
            on_behalf_of(headers.get(IDEMPOTENCY_KEY)),
        ):
            try:
                async with asyncio.timeout(left), self._connections(method) as given:
                    result = await self._call(method, request.data, given)
            except ColonnadeError as refused:
                await _refuse(request, refused)
                return "refused"
            except TimeoutError:
                await _refuse(request, DeadlineExceeded(self.module, method.name))
                return "late"
            except Exception:
                # Answered at once, as the module's HTTP routes would, not left to time out.
                log.exception("remote.answer_failed", module=self.module, method=method.name)
                await _refuse(request, RemoteFailure(self.module, method.name))
                return "failed"
        await request.respond(method.result.dump_json(result))
        return "ok"

    @asynccontextmanager
    async def _connections(self, method: _Method) -> AsyncIterator[dict[str, AsyncConnection]]:
        if not method.connections:
            yield {}
            return
        if self._db is None:
            raise TypeError(f"{self.module}.{method.name} reads on a connection: give a db")
        async with self._db.reading() as conn:
            yield dict.fromkeys(method.connections, conn)

    async def _call(
        self, method: _Method, data: bytes, given: Mapping[str, AsyncConnection]
    ) -> Any:
        sent = orjson.loads(data) if data else {}
        arguments = {
            name: adapter.validate_python(sent[name]) for name, adapter in method.arguments.items()
        }
        return await getattr(self._service, method.name)(**given, **arguments)


def _count(side: str, module: str, method: str, outcome: str) -> None:
    REMOTE_CALLS.labels(side, module, method, outcome).inc()


async def _refuse(request: Request, error: ColonnadeError) -> None:
    await request.respond_error(str(error.status), error.detail, data=orjson.dumps(error.problem()))


# --- calling ----------------------------------------------------------------------------------


class Calling:
    """The caller's side of one module's methods: `call` sends the arguments and returns the
    result as the method in this process would."""

    def __init__(
        self,
        module: str,
        service: type,
        methods: Sequence[str],
        *,
        namespace: str = "colonnade",
        seconds: float = CALL_SECONDS,
    ) -> None:
        self.module = module
        self.namespace = namespace
        self._seconds = seconds
        self._methods = {name: _method(service, name) for name in methods}
        self._client: Client | None = None
        self._connecting: Callable[[], Awaitable[Client]] | None = None

    def connect(self, client: Client) -> None:
        self._client = client

    def connect_when_called(self, connecting: Callable[[], Awaitable[Client]]) -> None:
        """Connect by `connecting` on the first call, if not connected before (a command
        that calls another process's module now and then, rather than a server)."""
        self._connecting = connecting

    async def call(self, method_name: str, **arguments: Any) -> Any:
        if self._client is None:
            if self._connecting is None:
                raise RuntimeError(f"calls to the {self.module} module wait for the bus")
            self._client = await self._connecting()
        method = self._methods[method_name]
        sent = {
            name: adapter.dump_python(arguments[name], mode="json")
            for name, adapter in method.arguments.items()
        }
        deadline = _deadline.get() or time.time() + self._seconds
        headers = {DEADLINE: f"{deadline:.3f}"}
        key = _idempotency_key.get()
        if key is not None:
            headers[IDEMPOTENCY_KEY] = key
        began = time.perf_counter()
        with tracing.calling(f"{self.module}.{method_name}", headers):
            try:
                answer = await self._client.request(
                    subject(self.namespace, self.module, method_name),
                    orjson.dumps(sent),
                    timeout=max(deadline - time.time(), 0.001),
                    headers=headers,
                )
            except (NatsTimeout, NoRespondersError, TimeoutError):
                _count("made", self.module, method_name, "unavailable")
                raise ModuleUnavailable(self.module, method_name) from None
        REMOTE_CALL_DURATION.labels(self.module, method_name).observe(time.perf_counter() - began)
        if answer.headers and ERROR_CODE_HEADER in answer.headers:
            refusal = restored(orjson.loads(answer.data), self.module)
            if isinstance(refusal, DeadlineExceeded):
                # Over there the deadline ran out first: to this caller, as no answer in time.
                _count("made", self.module, method_name, "unavailable")
                raise ModuleUnavailable(self.module, method_name)
            _count("made", self.module, method_name, "refused")
            raise refusal
        _count("made", self.module, method_name, "ok")
        token = _answering_module.set(self.module)
        try:
            return method.result.validate_json(answer.data)
        finally:
            _answering_module.reset(token)


class ModuleLinks:
    """This process's end of the calls between module processes: one NATS connection for
    the modules it answers for and those it calls. Nothing to open when it does neither."""

    def __init__(
        self, url: str | None, answering: Sequence[Answering], calling: Sequence[Calling]
    ) -> None:
        self._url = url
        self._answering = list(answering)
        self._calling = list(calling)
        self._client: Client | None = None
        self._connected = asyncio.Lock()
        # Until `open` (a server's start), a call connects on its own.
        for port in self._calling:
            port.connect_when_called(self._connect)

    @property
    def answers_for(self) -> list[str]:
        return [a.module for a in self._answering]

    async def _connect(self) -> Client:
        async with self._connected:
            if self._client is None:
                if self._url is None:
                    raise RuntimeError("calls to modules in other processes need COLONNADE_BUS_URL")
                self._client = await connect(self._url, "colonnade-calls")
            return self._client

    async def open(self) -> None:
        """Connect, and answer for the modules served here."""
        if self._url is None or not (self._answering or self._calling):
            return
        client = await self._connect()
        for answering in self._answering:
            await answering.start(client)
        for calling in self._calling:
            calling.connect(client)
        log.info(
            "remote.linked",
            answers_for=self.answers_for,
            calls=[c.module for c in self._calling],
        )

    async def close(self) -> None:
        if self._client is None:
            return
        for answering in self._answering:
            await answering.stop()
        # Stopped answering first; a closed connection needs no broker to be reachable.
        await self._client.close()
        self._client = None
