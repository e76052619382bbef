"""The Black Friday profile of a rehearsal: how many visitors arrive at each moment, what they
come for, when the flash sale opens and when the faults strike. Pure: times are seconds since
the rehearsal began, and nothing here waits or calls.

The load is open: visitors arrive at the profile's rate whatever the shop answers, as buyers
do on Black Friday, so a shop that slows down sees its queue grow instead of the load easing
off, and the rate it keeps up with is the rate it can serve.

The shape, in purchases per second: a linear ramp from the baseline to `peak_multiple` times
it over `ramp_seconds`, then that peak held to the end. Visitors arrive at that rate divided
by the mix's share of buyers; the others browse, or fill a cart and leave. At `flash.at`,
`flash.buyers` more buyers arrive evenly over `flash.seconds`, each for one unit of the flash
SKU, on top of the mix. Faults are either held over a window (the payment provider slow or
failing) or struck once (a worker killed, the database's connections cut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["slow-provider", "failing-provider", "kill-worker", "cut-database"]
HELD_FAULTS: tuple[FaultKind, ...] = ("slow-provider", "failing-provider")
STRUCK_FAULTS: tuple[FaultKind, ...] = ("kill-worker", "cut-database")
# Those reach into the shop's machine (its processes, its database): loopback targets only.
LOCAL_FAULTS = STRUCK_FAULTS
DEFAULT_FAULT_SECONDS = 30.0


@dataclass(frozen=True)
class Mix:
    """Shares of visits: browse only (a listing and a product page), fill a cart and leave,
    or buy (browse, cart, checkout). They add up to 1."""

    browse: float
    cart: float
    buy: float
    source: str = "default"

    def __post_init__(self) -> None:
        if min(self.browse, self.cart, self.buy) < 0 or self.buy <= 0:
            raise ValueError("a mix's shares must not be negative, and some visitors must buy")
        if abs(self.browse + self.cart + self.buy - 1) > 1e-6:
            raise ValueError("a mix's shares must add up to 1")

    @classmethod
    def observed(cls, carts: int, checkouts: int, product_views: int) -> Mix | None:
        """The mix the shop's own analytics saw: checkouts per cart started (the funnel), and
        carts per visit, a visit being a product page viewed (the routes' minutes). Every
        cart follows a product page, so fewer pages than carts means the pages were not all
        counted (minutes not yet written): then, as without any, the default share of
        browsers stays. Without checkouts there is nothing to go by (None)."""
        if checkouts <= 0 or carts < checkouts:
            return None
        if product_views < carts:
            carting = 1 - DEFAULT_MIX.browse
            buy = carting * checkouts / carts
            return cls(DEFAULT_MIX.browse, carting - buy, buy, "funnel")
        buy = checkouts / product_views
        cart = (carts - checkouts) / product_views
        return cls(1 - buy - cart, cart, buy, "funnel and product pages")


# A sale day's visitors come meaning to buy: its conversion is several times an ordinary
# day's few percent. Of twenty visits, twelve browse, five leave a cart and three buy, so
# browsing still makes most of the requests while a load generator of one process can send
# enough of it for a peak of purchases.
DEFAULT_MIX = Mix(browse=0.60, cart=0.25, buy=0.15)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: float
    lasting: float = 0.0  # held faults only

    def holds_at(self, moment: float) -> bool:
        return self.kind in HELD_FAULTS and self.at <= moment < self.at + self.lasting

    @property
    def needs_local_access(self) -> bool:
        return self.kind in LOCAL_FAULTS

    def describe(self) -> str:
        held = f" for {self.lasting:g}s" if self.kind in HELD_FAULTS else ""
        return f"{self.kind} at {clock(self.at)}{held}"


@dataclass(frozen=True)
class FlashSale:
    sku: str
    at: float
    stock: int
    buyers: int
    seconds: float = 10.0


@dataclass(frozen=True)
class Profile:
    seconds: float
    baseline: float  # purchases per second at the start
    peak_multiple: float
    ramp_seconds: float
    mix: Mix = DEFAULT_MIX
    flash: FlashSale | None = None
    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.baseline <= 0 or self.peak_multiple < 1:
            raise ValueError("a rehearsal must last, start above zero and peak at 1x or more")
        if not 0 <= self.ramp_seconds <= self.seconds:
            raise ValueError(f"the ramp ({self.ramp_seconds:g}s) must fit in the rehearsal")
        flash = self.flash
        if flash is not None and not 0 <= flash.at < flash.at + flash.seconds <= self.seconds:
            raise ValueError(
                f"the flash sale ({clock(flash.at)} for {flash.seconds:g}s) must end by"
                f" the rehearsal's end ({clock(self.seconds)})"
            )
        for fault in self.faults:
            if not 0 <= fault.at <= fault.at + fault.lasting <= self.seconds:
                raise ValueError(f"{fault.describe()} must fall within the rehearsal")

    @property
    def peak(self) -> float:
        return self.baseline * self.peak_multiple

    def purchases_per_second(self, moment: float) -> float:
        """The purchases the mix's buyers are offered at `moment` (the flash sale apart)."""
        if moment < self.ramp_seconds:
            return self.baseline + (self.peak - self.baseline) * moment / self.ramp_seconds
        return self.peak

    def _purchases_until(self, moment: float) -> float:
        """The integral of purchases_per_second from the start to `moment`."""
        t = min(max(moment, 0.0), self.seconds)
        ramp = min(t, self.ramp_seconds)
        ramped = self.baseline * ramp
        if self.ramp_seconds > 0:
            ramped += (self.peak - self.baseline) * ramp * ramp / (2 * self.ramp_seconds)
        return ramped + self.peak * max(0.0, t - self.ramp_seconds)

    def visits_between(self, start: float, end: float) -> float:
        """Visitors of the mix expected to arrive in [start, end)."""
        return (self._purchases_until(end) - self._purchases_until(start)) / self.mix.buy

    def flash_buyers_between(self, start: float, end: float) -> float:
        flash = self.flash
        if flash is None:
            return 0.0
        overlap = min(end, flash.at + flash.seconds) - max(start, flash.at)
        return flash.buyers * max(0.0, overlap) / flash.seconds

    def expected_purchases(self) -> float:
        """Purchases offered over the whole rehearsal, flash sale included."""
        return self._purchases_until(self.seconds) + (self.flash.buyers if self.flash else 0)

    def phase(self, moment: float) -> str:
        flash = self.flash
        if flash is not None and flash.at <= moment < flash.at + flash.seconds:
            return "flash sale"
        return "ramp" if moment < self.ramp_seconds else "peak"

    def held_faults_at(self, moment: float) -> list[Fault]:
        return [f for f in self.faults if f.holds_at(moment)]

    def struck_faults(self) -> list[Fault]:
        return sorted((f for f in self.faults if f.kind in STRUCK_FAULTS), key=lambda f: f.at)


_DURATION = re.compile(r"^(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


def parse_seconds(text: str) -> float:
    """`90`, `90s`, `1m30s`, `2m` or `1:30` as seconds."""
    text = text.strip()
    if ":" in text:
        minutes, _, seconds = text.partition(":")
        if minutes.isdigit() and seconds.isdigit():
            return int(minutes) * 60.0 + int(seconds)
    found = _DURATION.match(text)
    if not text or found is None:
        raise ValueError(f"'{text}' is not a time: write 90, 90s, 1m30s or 1:30")
    return float(found["m"] or 0) * 60 + float(found["s"] or 0)


def parse_fault(text: str) -> Fault:
    """`KIND@AT[+LASTING]`, e.g. `slow-provider@1:00+30s` or `kill-worker@2m`."""
    name, at_sign, when = text.partition("@")
    kinds: dict[str, FaultKind] = {k: k for k in (*HELD_FAULTS, *STRUCK_FAULTS)}
    kind = kinds.get(name)
    if kind is None or not at_sign:
        known = ", ".join(kinds)
        raise ValueError(f"'{text}' is not a fault: write KIND@AT[+LASTING], KIND one of {known}")
    start, plus, lasting = when.partition("+")
    if kind in STRUCK_FAULTS:
        if plus:
            raise ValueError(f"{kind} strikes once: it has no +LASTING")
        return Fault(kind, parse_seconds(start))
    return Fault(
        kind,
        parse_seconds(start),
        parse_seconds(lasting) if plus else DEFAULT_FAULT_SECONDS,
    )


def clock(seconds: float) -> str:
    """Seconds since the start as m:ss."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
