"""One waiting room for every process and replica of a shop, kept in Redis.

What Redis keeps under `<prefix>:wr:`:

- `epoch`: the queue's name, set once. Tickets carry it, so a ticket of a Redis that lost
  its keys (it keeps nothing on disk) is known as another queue's, not read against numbers
  counted again from 1.
- `issued`, `called`: the last number given and the last called.
- `flight`: the places taken, each with the end of its lease. A process that dies mid
  checkout does not give its places back; their leases (`lease_seconds`, longer than any
  checkout) do.
- `keep`: called numbers whose holders are awaited, with when the call lapses.
- `rooms`, `limits`, `calls`: until when each live process counts, and its `Places`. The
  queue's places and calls are those of the processes that took part lately added up, so
  each process's own limit (set, or learned from its own checkout times) adds its share.
- `ends`: when the last 200 checkouts ended, for the wait a holder is asked for (as
  `waiting_room.pace_of` reads them).
- `used:<ticket>`: a ticket that let its holder in, until the ticket's own end.

Each arrival, return and end is one script, so two processes never call one number twice
or give one place to two buyers. Numbers are called and let in as `waiting_room` tells, over
the shop's places: a called holder is let in by whichever process it comes back to.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from colonnade.modules.checkout.waiting_room import (
    Admitted,
    Places,
    QueueTicketUsed,
    Ticket,
    Waits,
)

# KEYS: epoch issued called flight keep rooms limits ends used calls
# ARGV: now room limit room_seconds lease_seconds call_seconds number ticket_epoch
#       ticket_end_ms place new_epoch calls
# Answers {1, waiting, epoch} (let in), {0, number, ahead, waiting, epoch, pace} (waits) or
# {-1} (the ticket let its holder in already).
_ENTER = """
local now = tonumber(ARGV[1])
redis.call('SET', KEYS[1], ARGV[11], 'NX')
local epoch = redis.call('GET', KEYS[1])
local number = tonumber(ARGV[7])
if number ~= 0 and redis.call('EXISTS', KEYS[9]) == 1 then
  return {-1}
end
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[4]), ARGV[2])
redis.call('HSET', KEYS[7], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[10], ARGV[2], ARGV[12])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)) do
  redis.call('HDEL', KEYS[7], gone)
  redis.call('HDEL', KEYS[10], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local limit, calls = 0, 0
for _, places in ipairs(redis.call('HVALS', KEYS[7])) do
  limit = limit + tonumber(places)
end
for _, each in ipairs(redis.call('HVALS', KEYS[10])) do
  calls = calls + tonumber(each)
end
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')
local called = tonumber(redis.call('GET', KEYS[3]) or '0')
local awaited = redis.call('ZCARD', KEYS[5])
while called < issued and awaited < calls do
  called = called + 1
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[6]), called)
  awaited = awaited + 1
end
redis.call('SET', KEYS[3], called)
local running = redis.call('ZCARD', KEYS[4])
local let_in = false
if number == 0 then
  if called == issued and running + awaited < limit then
    let_in = true
  else
    issued = redis.call('INCR', KEYS[2])
    number = issued
  end
elseif ARGV[8] ~= epoch or number <= called then
  let_in = running < limit
end
if let_in then
  if number ~= 0 then
    if ARGV[8] == epoch then redis.call('ZREM', KEYS[5], number) end
    redis.call('SET', KEYS[9], 1, 'PXAT', ARGV[9])
  end
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[10])
  return {1, issued - called, epoch}
end
-- A number not called yet waits for those before it and the called ones awaited; a called
-- one, for a place, with the others awaited (half of them before it, likely).
local ahead = math.floor(awaited / 2)
if (ARGV[7] == '0' or ARGV[8] == epoch) and number > called then
  ahead = number - called - 1 + awaited
end
-- Ends are kept newest first: the recent ones are a prefix.
local recent, oldest = 0, now
for _, moment in ipairs(redis.call('LRANGE', KEYS[8], 0, -1)) do
  moment = tonumber(moment)
  if moment <= now - 30 then break end
  recent = recent + 1
  oldest = moment
end
return {0, number, ahead, issued - called, epoch, tostring(recent / math.max(now - oldest, 1))}
"""

# KEYS: flight ends; ARGV: place now
_LEAVE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, 199)
end
return 0
"""


class SharedQueue:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        call_seconds: float,
        lease_seconds: float = 120,
        room_seconds: float = 30,
    ) -> None:
        keys = f"{prefix}:wr:"
        self._keys = [
            keys + name
            for name in ("epoch", "issued", "called", "flight", "keep", "rooms", "limits", "ends")
        ]
        self._used = keys + "used:"
        self._calls = keys + "calls"
        self._call_seconds = call_seconds
        self._lease_seconds = lease_seconds
        self._room_seconds = room_seconds
        # This process among those whose limits make up the places.
        self._process = uuid.uuid4().hex
        self._redis = redis
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)

    async def arrive(self, places: Places, now: float) -> Admitted | Waits:
        return await self._ask(places, now, None)

    async def come_back(self, ticket: Ticket, places: Places, now: float) -> Admitted | Waits:
        return await self._ask(places, now, ticket)

    async def leave(self, place: Admitted, places: Places, now: float) -> None:
        await self._leave(keys=[self._keys[3], self._keys[7]], args=[place.key, now])

    async def unspend(self, ticket: Ticket) -> None:
        await self._redis.delete(self._used + ticket.id)

    async def _ask(self, places: Places, now: float, ticket: Ticket | None) -> Admitted | Waits:
        place = uuid.uuid4().hex
        answer = await self._enter(
            keys=[*self._keys, self._used + ("" if ticket is None else ticket.id), self._calls],
            args=[
                now,
                self._process,
                places.limit,
                self._room_seconds,
                self._lease_seconds,
                self._call_seconds,
                0 if ticket is None else ticket.number,
                "" if ticket is None else ticket.room,
                0 if ticket is None else int(ticket.expires_at * 1000),
                place,
                uuid.uuid4().hex,
                places.calls,
            ],
        )
        if answer[0] == -1:
            raise QueueTicketUsed()
        if answer[0] == 1:
            return Admitted(place, int(answer[1]))
        number, ahead, waiting, epoch, pace = answer[1:]
        return Waits(int(number), int(ahead), float(pace), int(waiting), _text(epoch))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
