"""Today's spend of the whole cluster (issue 14): the ``Ledger`` of a node started with
``--redis``, so the server-wide and per-agent daily limits count what every node spent.

The day's spend is one hash per UTC day, ``hive:{budget}:<day>`` (fields ``tokens``,
``cost_usd``, ``agent:<id>:tokens``, ``agent:<id>:cost_usd``; kept ``KEY_TTL`` after its last
write). Each node:

- answers ``total()`` / ``agent()`` from memory (the model-call gate stays synchronous and
  cheap): the hash as it last read it plus its own increments not yet in it;
- ``add`` counts a settled call at once in that view and queues the increment (summed by
  field, per day: a call settled before midnight goes to its own day's hash);
- runs one owned task: every ``REFRESH_SECONDS`` (at once on a ``flush``) one round, a
  MULTI pipeline that HINCRBY/HINCRBYFLOATs what is queued (and refreshes the day keys'
  expiry) and reads today's hash back, so the view never counts an increment twice or
  misses one it sent. ``load`` runs a first round and starts the task; ``close`` stops it
  after a last round.

Staleness: a node sees its own spend at once, and another node's at most about
``REFRESH_SECONDS`` after that node's next round, itself at most ``REFRESH_SECONDS`` after the
spend (at once when that node's session stops): about 2 s in all. Calls admitted meanwhile
on several nodes may together pass a limit by what they spend in that window.

A round that fails (Redis unreachable, an error): the increments stay queued and go with the
next round; the view keeps the last hash read plus everything queued, so a node goes on
counting its own spend and the others' as last seen. One warning per outage, one line when
Redis answers again; nothing is raised into the model-call path. Memory stays bounded: the
queue holds one sum per field and day, for ``KEEP_DAYS`` days at most (older ones, whose key
would have expired, are dropped with a warning). A round whose reply was lost after Redis ran
it (redis-py retries it) may count its increments twice: the limits then err on the safe
side. A node that stops while Redis is down loses what it still had queued (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio

from hive_server.core.clock import Clock
from hive_server.core.redis_backoff import RETRIED, honour_cancel
from hive_server.services.budget.ledger import Spend, utc_day

log = logging.getLogger(__name__)
REFRESH_SECONDS = 1.0  # a round at least this often: other nodes' spend seen this late
KEY_TTL = 2 * 86400  # seconds a day's hash is kept after its last write
KEEP_DAYS = 2  # the days of increments a node keeps queued while Redis fails
ALL = ""  # a tally's key for the day's total (else an agent id)

Tally = dict[str, Spend]  # spend by agent id, and in all under ``ALL``


def day_key(day: str) -> str:
    return f"hive:{{budget}}:{day}"


def _fields(who: str) -> tuple[str, str]:
    prefix = f"agent:{who}:" if who != ALL else ""
    return f"{prefix}tokens", f"{prefix}cost_usd"


def _merge(into: Tally, more: Tally) -> None:
    for who, spend in more.items():
        into[who] = into.get(who, Spend()) + spend


def parse_day(raw: dict[bytes, bytes]) -> Tally:
    """A day's hash as a tally (fields it does not know are ignored)."""
    tally: Tally = {}
    for field, value in raw.items():
        head, _, kind = field.decode().rpartition(":")
        if head and not head.startswith("agent:"):
            continue
        spend = (Spend(tokens=int(value)) if kind == "tokens"
                 else Spend(cost_usd=round(float(value), 8)) if kind == "cost_usd" else None)
        if spend is not None:
            _merge(tally, {head.removeprefix("agent:"): spend})
    return tally


class RedisSpendLedger:
    """Today's spend of every node on one Redis; see the module docstring."""

    def __init__(self, client: redis.asyncio.Redis, clock: Clock):
        self._client = client
        self.clock = clock
        self._day = utc_day(clock.time())
        self._seen: Tally = {}  # today's hash as last read: every node's sent spend
        self._queued: dict[str, Tally] = {}  # by day: added here, not sent yet
        self._sending: dict[str, Tally] = {}  # the round under way's
        self._lock = asyncio.Lock()  # one round at a time
        self._due = asyncio.Event()  # a flush: a round now
        self._waiters: list[asyncio.Future[None]] = []  # flushes waiting for the next round
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failing = False  # an outage under way (warned once)

    # -- the view (synchronous: the gate of every model call) ---------------------------------
    @property
    def day(self) -> str:
        self._roll()
        return self._day

    def total(self) -> Spend:
        return self._view(ALL)

    def agent(self, agent_id: str) -> Spend:
        return self._view(agent_id)

    def add(self, agent_id: str | None, spend: Spend) -> None:
        self._roll()
        tally = {ALL: spend} if agent_id is None else {ALL: spend, agent_id: spend}
        _merge(self._queued.setdefault(self._day, {}), tally)

    def _view(self, who: str) -> Spend:
        self._roll()
        spend = self._seen.get(who, Spend())
        for unsent in (self._sending, self._queued):
            spend = spend + unsent.get(self._day, {}).get(who, Spend())
        return spend

    def _roll(self) -> None:
        today = utc_day(self.clock.time())
        if today != self._day:
            self._day, self._seen = today, {}

    # -- rounds ---------------------------------------------------------------------------------
    async def sync(self) -> bool:
        """One round now: send what is queued, read today's hash. False when Redis failed
        (the increments stay queued)."""
        async with self._lock:
            self._roll()
            day, self._sending, self._queued = self._day, self._queued, {}
            try:
                seen = await self._exchange(day)
            except RETRIED as exc:  # Redis down or refusing: retried next round
                self._outage(exc)
                return False
            finally:
                self._requeue()  # what a failed round did not send
            if self._failing:
                self._failing = False
                log.warning("spend ledger: Redis answers again; the queued spend is sent")
            if day == self._day:  # else the day rolled during the round: its hash is old
                self._seen = seen
            return True

    async def _exchange(self, day: str) -> Tally:
        """The round's pipeline (MULTI): the increments of ``_sending``, then today's hash."""
        pipe = self._client.pipeline(transaction=True)
        for sent_day, tally in self._sending.items():
            key = day_key(sent_day)
            for who, spend in tally.items():
                tokens, cost = _fields(who)
                if spend.tokens:
                    pipe.hincrby(key, tokens, spend.tokens)
                if spend.cost_usd:
                    pipe.hincrbyfloat(key, cost, spend.cost_usd)
            pipe.expire(key, KEY_TTL)
        pipe.hgetall(day_key(day))
        answers = await pipe.execute()
        self._sending = {}
        return parse_day(answers[-1])

    def _requeue(self) -> None:
        for day, tally in self._sending.items():
            _merge(self._queued.setdefault(day, {}), tally)
        self._sending = {}
        for day in sorted(self._queued)[:-KEEP_DAYS]:
            dropped = self._queued.pop(day).get(ALL, Spend())
            log.warning("spend ledger: Redis unreachable since %s; that day's %d tokens / %g "
                        "USD of this node are dropped", day, dropped.tokens, dropped.cost_usd)

    def _outage(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("spend ledger: Redis failed (%r); this node's spend is queued and sent "
                        "when it answers, other nodes' counted as last read", exc)

    # -- the task -------------------------------------------------------------------------------
    async def load(self) -> None:
        """Read today's spend (a first round) and start the rounds (until ``close``)."""
        await self.sync()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="spend-ledger-redis")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), REFRESH_SECONDS)
            self._due.clear()
            waiters, self._waiters = self._waiters, []
            try:
                await self.sync()
            except Exception:  # a fault of the round itself: logged, the next one still runs
                log.exception("spend ledger round failed")
            finally:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            honour_cancel()

    async def flush(self) -> None:
        """Send what was added so far now (a session's stop waits for it); never raises for
        Redis (what it could not send stays queued)."""
        if self._task is None or self._task.done():  # not started, or closing
            await self.sync()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._due.set()
        await waiter

    async def close(self) -> None:
        """Stop the rounds after a last one (one more try when it failed)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._due.set()
            await task
        if self._queued and not await self.sync():
            lost = sum((t.get(ALL, Spend()) for t in self._queued.values()), Spend())
            log.warning("spend ledger: %d tokens / %g USD of this node never reached Redis",
                        lost.tokens, lost.cost_usd)
