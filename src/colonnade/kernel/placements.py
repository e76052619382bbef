"""Where the catalog places SKUs, as the modules that price, promote and count by product or
category ask it: a port the composition root fills with the catalog's own answer, so none of
them imports the catalog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

# A SKU's product id, and the slugs of its product's category and of every category above it.
Placement = tuple[str, frozenset[str]]
# The placements of the SKUs the catalog knows among those asked.
Placements = Callable[[Sequence[str]], Awaitable[Mapping[str, Placement]]]
