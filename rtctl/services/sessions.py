"""Session records, node heartbeats and cleanup after dead nodes: this node in the cluster.

Every connection gets a :class:`~rtctl.backends.base.SessionRecord` in the
session store while it lives. A background task, every ``node_ttl / 4``:

* renews this node's heartbeat (kept for ``node_ttl / 2``); a heartbeat that
  had lapsed means others may have cleaned up after us, so we resynchronise;
* refreshes ``last_seen`` and the TTL of this node's records every
  ``session_ttl / 3``;
* looks for nodes whose heartbeat lapsed, and for each one this node wins the
  claim for, ends its sessions (presence goes offline, rooms are left, the
  notifications go out) and forgets the node. A node killed without warning
  is thus cleaned up within ``node_ttl / 2 + node_ttl / 4 < node_ttl``.

A connection that drops does not end its session at once: it is *held* for
``host.grace`` seconds (presence stays online, the store keeps its rooms), so a
client that reconnects with its recovery token -- on this node or any other --
carries on with nothing flapping. A new connection that resumes a session
announces it on ``<prefix>.session`` (``{"takeover": id, "node": n}``): the
node that held it cancels its pending end, and one that still has an older
connection of it (half-open, connected before the resume) closes that with
4009. A client that closes deliberately (1000, 1001 or no code, on its own
initiative) leaves at once, and so does one the game kicked (4003).
Whoever ends a session first checks that its record still names the node
ending it: one resumed elsewhere is left alone.

A backend that fails while a session starts or ends never costs the client its
connection: the node marks itself out of sync and, once every backend is
healthy again, reconciles the store with its live connections
(:meth:`SessionService.resync`). Presence and rooms plug in through
:meth:`~SessionService.on_started`, :meth:`~SessionService.on_ended` and
:meth:`~SessionService.on_resync`.

``session.list`` answers the caller's sessions on every node (its devices).

``/metrics`` shows the sessions (``rtctl_sessions{state}``), the heartbeats
(``rtctl_node_heartbeats_total{result}``, their age and TTL) and the cleanups
after dead nodes (``rtctl_node_cleanups_total``, ``rtctl_node_cleaned_sessions_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rtctl.backends.base import Backends, BackendUnavailable, SessionJSON, SessionRecord
from rtctl.backends.metrics import labelled
from rtctl.host import Host
from rtctl.protocol.codes import CloseCode, ErrorCode
from rtctl.router import CallContext, Peer, Router

__all__ = ["HEARTBEAT_RESULTS", "DetachedHook", "EndedHook", "ResyncHook", "SessionService",
           "StartedHook"]

logger = logging.getLogger("rtctl.sessions")

StartedHook = Callable[[Peer], Awaitable[None]]
DetachedHook = Callable[[str], Awaitable[None]]  # (session id): its connection here closed
EndedHook = Callable[[str, str], Awaitable[None]]  # (session id, user)
ResyncHook = Callable[[Sequence[Peer]], Awaitable[None]]

# A close the client chose (RFC 6455 §7.4.1: normal, going away, or no code at all) is the
# player leaving; any other end of a connection may be followed by a resume.
_LEAVING = frozenset({CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.NO_STATUS})
_ENDING = frozenset({CloseCode.KICKED})  # closed by the game for good: not held
HEARTBEAT_RESULTS = ("ok", "lapsed", "error")  # rtctl_node_heartbeats_total's label values


class SessionService:
    """This node's sessions in the shared store, and the cluster's housekeeping."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.backends: Backends = host.backends
        self.node = self.backends.node_id
        self._records: dict[str, SessionRecord] = {}  # this node's live sessions
        self._started: list[StartedHook] = []
        self._detached: list[DetachedHook] = []
        self._ended: list[EndedHook] = []
        self._resyncs: list[ResyncHook] = []
        self._held: dict[str, asyncio.TimerHandle] = {}  # dropped sessions → their pending end
        self._moved: set[str] = set()  # sessions of live connections here resumed elsewhere
        self._ending: set[asyncio.Task[None]] = set()
        self._dirty = False
        self._beat_at: float | None = None  # host clock at our last heartbeat
        self._heartbeats: Counter[str] = Counter(dict.fromkeys(HEARTBEAT_RESULTS, 0))
        self._cleanups = self._cleaned_sessions = 0  # dead nodes reaped, their sessions ended
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        host.on_connect(self._connected)
        host.on_disconnect(self._disconnected)
        host.on_startup(self._start)
        host.on_shutdown(self._stop)
        for connection in self.backends.connections:
            host.add_readiness_check(connection.name, connection.failure)
        self.backends.on_recovered(self.mark_out_of_sync)
        host.add_metrics(self._families)
        self.router = Router()
        self.router.add_method(self._list, name="session.list",
                               errors=[ErrorCode.BACKEND_UNAVAILABLE])

    @property
    def records(self) -> Mapping[str, SessionRecord]:
        """This node's sessions with a connection here, by id (read only)."""
        return self._records

    def _families(self) -> Iterator[Metric]:
        yield labelled(GaugeMetricFamily, "rtctl_sessions",
                       "Sessions this node owns: with a connection, or held for a resume",
                       "state", {"connected": len(self._records), "held": len(self._held)})
        yield labelled(CounterMetricFamily, "rtctl_node_heartbeats",
                       "This node's heartbeat renewals: kept, found lapsed, failed (backend)",
                       "result", self._heartbeats)
        age = GaugeMetricFamily("rtctl_node_heartbeat_age_seconds",
                                "Seconds since this node's last successful heartbeat")
        if self._beat_at is not None:
            age.add_metric([], self._host.clock() - self._beat_at)
        yield age
        yield GaugeMetricFamily("rtctl_node_ttl_seconds",
                                "How long a heartbeat lives: others treat this node as dead "
                                "when the heartbeat's age passes it", value=self._beat_ttl)
        yield CounterMetricFamily("rtctl_node_cleanups",
                                  "Dead nodes this node cleaned up after",
                                  value=self._cleanups)
        yield CounterMetricFamily("rtctl_node_cleaned_sessions",
                                  "Sessions ended by this node's cleanups after dead nodes",
                                  value=self._cleaned_sessions)

    def on_started(self, hook: StartedHook) -> None:
        self._started.append(hook)

    def on_detached(self, hook: DetachedHook) -> None:
        """``hook(session_id)`` when the session's connection on this node closes: what was
        kept for that connection goes now, what the session holds in the cluster waits for
        :meth:`on_ended` (later, after the grace period, or never if it is resumed)."""
        self._detached.append(hook)

    def on_ended(self, hook: EndedHook) -> None:
        """``hook(session_id, user)`` for local disconnects and dead nodes' sessions alike."""
        self._ended.append(hook)

    def on_resync(self, hook: ResyncHook) -> None:
        self._resyncs.append(hook)

    def mark_out_of_sync(self) -> None:
        """Reconcile with the store at the next chance (a backend failed or came back)."""
        self._dirty = True
        if self._wake is not None:
            self._wake.set()

    async def _list(self, ctx: CallContext) -> list[SessionJSON]:
        """``session.list`` → the caller's sessions on every node (times in epoch ms)."""
        return [record.to_json() for record in await self.backends.sessions.by_user(ctx.user)]

    # -- connections come and go --------------------------------------------

    @property
    def _subject(self) -> str:
        return f"{self.backends.subject_prefix}.session"

    async def _connected(self, conn: Peer) -> None:
        record = SessionRecord(id=conn.id, user=conn.user, node=self.node,
                               created_at=conn.connected_at, last_seen=conn.connected_at)
        self._records[conn.id] = record
        if conn.resumed:
            self._release(conn.id)
            await self._guarded(self.backends.bus.publish(self._subject, {
                "takeover": conn.id, "node": self.node, "at": conn.connected_at}), conn.id)
        await self._guarded(self._announce_start(conn, record), conn.id)

    def _release(self, session_id: str) -> None:
        """The held session was resumed: it must not end."""
        handle = self._held.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def _taken_over(self, message: dict[str, Any]) -> None:
        """The bus handler: a session was resumed on ``message["node"]``."""
        session_id, at = message.get("takeover"), message.get("at")
        if (not isinstance(session_id, str) or not isinstance(at, int | float)
                or message.get("node") == self.node):
            return
        self._release(session_id)
        conn = self._host.peer(session_id)
        # One the client has given up on (half-open); a newer one here resumed it after.
        if conn is not None and conn.connected_at <= at:
            self._moved.add(session_id)
            conn.close(CloseCode.SESSION_RESUMED, "session resumed on another node")

    async def _announce_start(self, conn: Peer, record: SessionRecord) -> None:
        await self.backends.sessions.put([record], ttl=self.backends.session_ttl)
        for hook in self._started:
            await hook(conn)

    async def _disconnected(self, conn: Peer, code: int | None, reason: str) -> None:
        successor = self._host.peer(conn.id)  # a newer connection here resumed it
        moved = conn.id in self._moved
        self._moved.discard(conn.id)
        if successor is None:
            self._records.pop(conn.id, None)
        for hook in self._detached:
            await self._guarded(hook(conn.id), conn.id)
        if successor is not None or moved or self._host.peer(conn.id) is not None:
            return  # (a resume may have come here while the hooks ran)
        grace, closed_by_us = self._host.grace, conn.close_code
        if grace > 0 and closed_by_us not in _ENDING and not (
                closed_by_us is None and code in _LEAVING):
            loop = asyncio.get_running_loop()
            self._held[conn.id] = loop.call_later(grace, self._expire, conn.id, conn.user)
            return
        await self.end(conn.id, conn.user, self.node)

    def _expire(self, session_id: str, user: str) -> None:
        """A held session's grace is over: end it, unless it was resumed elsewhere."""
        del self._held[session_id]
        task = asyncio.get_running_loop().create_task(self._end_held(session_id, user))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_held(self, session_id: str, user: str) -> None:
        if self._host.peer(session_id) is not None:  # resumed here meanwhile
            return
        try:
            moved = await self._resumed_elsewhere(session_id, self.node)
        except BackendUnavailable:
            self.mark_out_of_sync()  # the resync ends it, if it is still ours
            return
        if not moved and self._host.peer(session_id) is None:  # (not resumed here meanwhile)
            await self.end(session_id, user, self.node)

    async def _resumed_elsewhere(self, session_id: str, node: str) -> bool:
        """Does the session's record name another node than ``node`` (it was resumed)?"""
        record = await self.backends.sessions.get(session_id)
        return record is not None and record.node != node

    async def end(self, session_id: str, user: str, node: str) -> bool:
        """Run every ended hook, then drop the record; False (kept for a retry) on failure."""
        ok = True
        for hook in self._ended:
            ok = await self._guarded(hook(session_id, user), session_id) and ok
        if ok:
            ok = await self._guarded(
                self.backends.sessions.remove(session_id, user=user, node=node), session_id)
        return ok

    async def _guarded(self, step: Awaitable[None], session_id: str) -> bool:
        try:
            await step
        except BackendUnavailable as exc:
            logger.info("session %s: %s; will resynchronise", session_id, exc.message)
        except Exception:
            logger.exception("session %s: a session hook failed", session_id)
        else:
            return True
        self.mark_out_of_sync()
        return False

    # -- the node's background work -------------------------------------------

    async def _start(self) -> None:
        await self.backends.start()
        await self.backends.bus.subscribe(self._subject, self._taken_over)
        await self._beat()
        # A node restarted under its old id, before its heartbeat lapsed, finds the sessions
        # its last life held: the first round ends those not resumed elsewhere.
        self._dirty = True
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for handle in self._held.values():
            handle.cancel()
        for task in list(self._ending):
            task.cancel()
        if self._held:  # a survivor ends the sessions not resumed, once our heartbeat lapses
            logger.info("node %s stops with %d sessions held for recovery", self.node,
                        len(self._held))
            self._held.clear()
        else:
            with contextlib.suppress(BackendUnavailable):
                await self.backends.sessions.forget_node(self.node)
        await self.backends.close()

    async def _run(self) -> None:
        interval = self.backends.node_ttl / 4
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + self.backends.session_ttl / 3
        assert self._wake is not None
        while True:
            try:
                await self.housekeeping(refresh=loop.time() >= next_refresh)
            except BackendUnavailable as exc:
                logger.debug("housekeeping: %s", exc.message)
                self.mark_out_of_sync()
            except Exception:
                logger.exception("housekeeping failed")
            if loop.time() >= next_refresh:
                next_refresh = loop.time() + self.backends.session_ttl / 3
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def housekeeping(self, *, refresh: bool = False) -> None:
        """One round: heartbeat, resync if needed, refresh records, reap dead nodes."""
        store, backends = self.backends.sessions, self.backends
        if (gap := await self._beat()) is not None:
            self._lapsed(gap)
        if self._dirty and not backends.failures():
            self._dirty = False
            await self.resync()
        if refresh and self._records:
            now = self._host.clock()
            self._records = {sid: replace(r, last_seen=now) for sid, r in self._records.items()}
            await store.put(list(self._records.values()), ttl=backends.session_ttl)
        for node in await store.dead_nodes():
            if node != self.node and await store.claim(node, self.node, ttl=backends.node_ttl):
                await self._reap(node)

    @property
    def _beat_ttl(self) -> float:
        return self.backends.node_ttl / 2

    async def _beat(self) -> float | None:
        """Renew this node's heartbeat: None, or if it had lapsed, seconds since the last."""
        try:
            kept = await self.backends.sessions.beat(self.node, ttl=self._beat_ttl)
        except BackendUnavailable:
            self._heartbeats["error"] += 1
            raise
        now = self._host.clock()
        previous, self._beat_at = self._beat_at, now
        if kept or previous is None:  # (a new node's first heartbeat finds none: no lapse)
            self._heartbeats["ok"] += 1
            return None
        self._heartbeats["lapsed"] += 1
        return now - previous

    def _lapsed(self, gap: float) -> None:
        """Say why the heartbeat lapsed: on a store in this process, only a blocked loop can."""
        ttl = self._beat_ttl
        if gap <= ttl:
            why = "the store had lost it (restarted or flushed)"
        elif self.backends.connections:
            why = "the event loop was blocked or the store unreachable that long"
        else:
            why = "this node's event loop was blocked that long"
        logger.warning("node %s: heartbeat renewed %.1fs after the last (TTL %gs): %s; "
                       "resynchronising %d sessions", self.node, gap, ttl, why,
                       len(self._records))
        self._dirty = True

    async def _reap(self, node: str) -> None:
        sessions = await self.backends.sessions.by_node(node)
        logger.warning("node %s is gone: ending its %d sessions", node, len(sessions))
        complete = True
        for sid, user in sessions.items():
            if await self._resumed_elsewhere(sid, node):
                continue
            if await self.end(sid, user, node):
                self._cleaned_sessions += 1
            else:
                complete = False  # kept for a retry once the claim lapses
        if complete:
            await self.backends.sessions.forget_node(node)
            self._cleanups += 1

    async def resync(self) -> None:
        """Make the store match this node's live connections, then let services catch up."""
        stored = await self.backends.sessions.by_node(self.node)
        for sid, user in stored.items():
            # It ended while the store was unreachable (unless it is held or moved on).
            if (sid not in self._records and sid not in self._held
                    and not await self._resumed_elsewhere(sid, self.node)):
                await self.end(sid, user, self.node)
        if self._records:
            await self.backends.sessions.put(list(self._records.values()),
                                             ttl=self.backends.session_ttl)
        live = [conn for sid in self._records
                if (conn := self._host.peer(sid)) is not None]
        for hook in self._resyncs:
            await hook(live)
        # (at debug when there was nothing to do: every node resyncs once as it starts)
        logger.log(logging.INFO if live or stored else logging.DEBUG,
                   "node %s resynchronised %d sessions", self.node, len(live))
