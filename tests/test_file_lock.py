"""Concurrent processes: one builds, the others wait and then load what it built."""
import multiprocessing
import time

from mer_jax.data import file_lock


def _hold(target, log_path, seconds):
    with file_lock.exclusive(target, "a test job"):
        with open(log_path, "a") as log:
            log.write(f"start {time.monotonic()}\n")
        time.sleep(seconds)
        with open(log_path, "a") as log:
            log.write(f"end {time.monotonic()}\n")


def test_holders_of_one_lock_never_overlap(tmp_path):
    log_path = tmp_path / "log.txt"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hold, args=(tmp_path / "corpus" / "1.0.0", log_path, 0.5)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    events = [line.split() for line in log_path.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end"] * 3
    times = [float(t) for _, t in events]
    assert times == sorted(times)
    assert (tmp_path / "corpus" / "1.0.0.lock").exists()
