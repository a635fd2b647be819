import threading

import pytest

from rag.scheduler import FairQueue, QueueFullError


def test_first_request_runs_at_once_and_the_next_waits() -> None:
    q = FairQueue(slots=1, max_waiting=4)
    a = q.submit("alice")
    assert q.wait(a, 0) and q.position(a) == 0
    b = q.submit("bob")
    assert not q.wait(b, 0.01) and q.position(b) == 1
    q.release(a)
    assert q.wait(b, 1) and q.running == 1 and q.waiting == 0
    q.release(b)
    q.release(b)  # twice is harmless
    assert q.running == 0 and q.served == 2


def test_round_robin_between_clients() -> None:
    q = FairQueue(slots=1, max_waiting=10, per_client=5)
    first = q.submit("busy")
    busy = [q.submit("busy") for _ in range(3)]
    late = q.submit("late")  # arrives after three of busy's requests, but is served second
    assert [q.position(t) for t in busy] == [1, 3, 4] and q.position(late) == 2
    order = []
    running = first
    for _ in range(4):
        q.release(running)
        running = next(t for t in [*busy, late] if t.granted.is_set() and not t.released)
        order.append("late" if running is late else f"busy{busy.index(running)}")
    assert order == ["busy0", "late", "busy1", "busy2"]


def test_bounded_queue_refuses_with_retry_after() -> None:
    q = FairQueue(slots=1, max_waiting=2, per_client=2)
    q.submit("a")
    q.submit("b")
    q.submit("c")
    with pytest.raises(QueueFullError, match="2 requests are waiting") as full:
        q.submit("d")
    assert full.value.retry_after >= 1 and q.refused == 1


def test_one_client_cannot_take_the_whole_queue() -> None:
    q = FairQueue(slots=1, max_waiting=10, per_client=2)
    q.submit("greedy")
    q.submit("greedy")
    q.submit("greedy")
    with pytest.raises(QueueFullError, match="2 of your requests"):
        q.submit("greedy")
    assert q.wait(q.submit("other"), 0) is False  # others still get in


def test_a_waiting_request_can_give_up_its_place() -> None:
    q = FairQueue(slots=1, max_waiting=4)
    a = q.submit("a")
    b = q.submit("b")
    c = q.submit("c")
    q.release(b)  # the client went away while waiting
    assert q.position(c) == 1
    q.release(a)
    assert q.wait(c, 1) and not b.granted.is_set()


def test_slots_run_concurrently_and_threads_wake_in_turn() -> None:
    q = FairQueue(slots=2, max_waiting=8, per_client=8)
    active, peak, lock = [0], [0], threading.Lock()

    def work(client: str) -> None:
        t = q.submit(client)
        q.wait(t)
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        threading.Event().wait(0.02)
        with lock:
            active[0] -= 1
        q.release(t)

    threads = [threading.Thread(target=work, args=(f"c{i % 3}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 2 and q.served == 8 and q.running == 0 and q.waiting == 0
