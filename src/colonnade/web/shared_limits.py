"""Rate limits every process and replica of the shop counts together, in Redis.

The same token buckets as `RateLimiter`, by the same arithmetic, kept in Redis hashes
(`<prefix>:rl:<bucket>`: tokens and when they were counted) and changed by one Lua script, so
taking from a client's buckets is atomic across processes. Time is Redis's own clock, the one
clock every replica shares. A bucket untouched for a whole window is full again, so it
expires then, as the in-process one is swept.

When Redis fails, each process limits on its own again (today's embedded behaviour, up to
processes x limit) rather than refusing everyone or no one: the limits are there against one
client's abuse, and failing closed would turn an outage of Redis into an outage of login and
checkout, while failing fully open would drop the guard exactly when nobody watches it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.asyncio import Redis

from colonnade.kernel.shared_state import UNREACHABLE, Outage
from colonnade.web.limits import RateLimiter, whole_seconds

# KEYS: the buckets; ARGV: limit, window seconds and expiry milliseconds for each in turn.
# Answers the longest wait in seconds, "0" when every bucket had a token (and gave it).
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local kept = redis.call('HMGET', key, 'tokens', 'at')
  local level = limit
  if kept[1] then
    level = math.min(limit, tonumber(kept[1]) + (now - tonumber(kept[2])) * limit / window)
  end
  levels[i] = level
  if level < 1 then
    wait = math.max(wait, (1 - level) * window / limit)
  end
end
if wait > 0 then
  return tostring(wait)
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'at', now)
  redis.call('PEXPIRE', key, ARGV[3 * i])
end
return '0'
"""


class SharedRateLimiter:
    def __init__(self, redis: Redis, *, prefix: str, fallback: RateLimiter) -> None:
        self._take = redis.register_script(_TAKE)
        self._prefix = f"{prefix}:rl:"
        self._fallback = fallback
        self._outage = Outage("rate_limits")

    async def take(self, wants: Sequence[tuple[str, int, float]]) -> int:
        if self._outage.skipping():
            return await self._fallback.take(wants)
        keys = [self._prefix + key for key, _, _ in wants]
        args: list[float] = []
        for _, limit, window in wants:
            args += [limit, window, math.ceil(window * 1000)]
        try:
            wait = float(await self._take(keys, args))
        except UNREACHABLE as error:
            self._outage.failed(error)
            return await self._fallback.take(wants)
        self._outage.answered()
        return 0 if wait == 0 else whole_seconds(wait)
