"""A bounded, fair queue in front of the shared LLM.

One loaded model serves everybody, a few requests at a time (``slots``). Requests wait their turn in
round-robin order between clients: a client with five questions queued does not hold back a client
with one. Past ``max_waiting`` waiting requests (or ``per_client`` for one client) a new request is
refused at once with a suggested retry delay instead of piling up. Retrieval never goes through here.

Threads wait for their turn (generation runs in worker threads, never on an event loop)::

    ticket = queue.submit("alice")      # QueueFullError when full
    try:
        while not queue.wait(ticket, 0.5):
            show(queue.position(ticket))  # 1 = next
        ...generate...
    finally:
        queue.release(ticket)
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .errors import RagError

INITIAL_SERVICE_S = 8.0  # the first guess of one answer's duration, before any is measured


class QueueFullError(RagError):
    """Too many requests are waiting for the model; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(eq=False)
class Ticket:
    """One request's place: waiting, then running (``granted``), then released."""

    client: str
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    granted: threading.Event = field(default_factory=threading.Event)
    released: bool = False
    tokens: int = 0  # generated during the turn (set by the caller; counted on release)


class FairQueue:
    """Round-robin between clients over ``slots`` concurrent model calls; thread-safe."""

    def __init__(self, slots: int = 1, max_waiting: int = 16, per_client: int = 4) -> None:
        if slots < 1 or max_waiting < 0 or per_client < 1:
            raise ValueError("slots and per_client must be at least 1, max_waiting at least 0")
        self.slots = slots
        self.max_waiting = max_waiting
        self.per_client = per_client
        self._lock = threading.Lock()
        self._waiting: OrderedDict[str, deque[Ticket]] = OrderedDict()  # clients in round-robin order
        self._running: set[Ticket] = set()
        self._service_s = INITIAL_SERVICE_S  # moving average of how long a turn takes
        self.served = 0
        self.refused = 0
        self.tokens = 0  # generated over all turns

    # ------------------------------------------------------------ state
    @property
    def waiting(self) -> int:
        with self._lock:
            return self._n_waiting()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def _n_waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def retry_after(self, ahead: int | None = None) -> int:
        """Seconds until about ``ahead`` more requests (default: all waiting) have been served."""
        with self._lock:
            n = self._n_waiting() + 1 if ahead is None else ahead
            return max(1, math.ceil(n * self._service_s / self.slots))

    # ------------------------------------------------------------ requests
    def submit(self, client: str) -> Ticket:
        """Join the queue (or start at once when a slot is free); raises QueueFullError when full."""
        ticket = Ticket(client)
        with self._lock:
            mine = len(self._waiting.get(client, ()))
            total = self._n_waiting()
            free = len(self._running) < self.slots and total == 0
            if not free and (total >= self.max_waiting or mine >= self.per_client):
                self.refused += 1
                retry = max(1, math.ceil((total + 1) * self._service_s / self.slots))
                why = (
                    f"{mine} of your requests are already waiting (at most {self.per_client})"
                    if mine >= self.per_client
                    else f"{total} requests are waiting for the model (at most {self.max_waiting})"
                )
                raise QueueFullError(f"the server is busy: {why} — retry in {retry} s", retry)
            self._waiting.setdefault(client, deque()).append(ticket)
            self._dispatch()
        return ticket

    def wait(self, ticket: Ticket, timeout: float | None = None) -> bool:
        """Block until the ticket's turn (True) or ``timeout`` seconds passed (False)."""
        return ticket.granted.wait(timeout)

    def position(self, ticket: Ticket) -> int:
        """0 while running (or released); otherwise 1 for the next to run, 2 after it, and so on."""
        with self._lock:
            if ticket.granted.is_set() or ticket.released:
                return 0
            queues = [list(q) for q in self._waiting.values()]
            n = 0
            for depth in range(max((len(q) for q in queues), default=0)):
                for q in queues:
                    if depth < len(q):
                        n += 1
                        if q[depth] is ticket:
                            return n
            return 0

    def release(self, ticket: Ticket) -> None:
        """End a turn, or give up a place in the queue; safe to call twice."""
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            if ticket in self._running:
                self._running.discard(ticket)
                self.served += 1
                self.tokens += ticket.tokens
                if ticket.started is not None:
                    took = time.monotonic() - ticket.started
                    self._service_s = 0.7 * self._service_s + 0.3 * took
            else:
                q = self._waiting.get(ticket.client)
                if q is not None and ticket in q:
                    q.remove(ticket)
                    if not q:
                        del self._waiting[ticket.client]
            self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting requests while slots are free: the first client's oldest request, after
        which that client goes to the back of the line."""
        while len(self._running) < self.slots and self._waiting:
            client, q = next(iter(self._waiting.items()))
            ticket = q.popleft()
            del self._waiting[client]
            if q:
                self._waiting[client] = q  # back of the line
            ticket.started = time.monotonic()
            self._running.add(ticket)
            ticket.granted.set()
