"""The GIL is released while Rust computes: the main thread keeps running Python while another
thread is inside a long kernel call. With the GIL held through the call, the main thread would
be frozen for the whole call (its longest pause = the call's duration; checked by the same
measurement on a GIL-holding C call, `re` backtracking, in the second test)."""

import re
import threading
import time

import numpy as np

import gbml_testbed as gt


def longest_pause_during(call):
    """Run `call` in a thread; return (longest gap between the main thread's loop iterations
    while the call ran, the call's duration)."""
    span = {}

    def worker():
        span["start"] = time.perf_counter()
        call()
        span["end"] = time.perf_counter()

    t = threading.Thread(target=worker)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    inside = [s for s in stamps if span["start"] <= s <= span["end"]]
    edges = [span["start"]] + inside + [span["end"]]
    return max(b - a for a, b in zip(edges, edges[1:])), span["end"] - span["start"]


def test_python_runs_during_a_kernel_call():
    x = np.random.default_rng(0).standard_normal((2000, 10))
    pause, duration = longest_pause_during(
        lambda: gt.ntk(x, depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1))
    assert duration > 0.03, duration  # long enough to tell the two cases apart
    assert pause < 0.5 * duration, (pause, duration)


def test_the_measurement_sees_a_gil_holding_call():
    """Counterfactual: `re` holds the GIL while it backtracks; the main thread freezes."""
    pause, duration = longest_pause_during(lambda: re.match(r"(a+)+b", "a" * 21))
    assert duration > 0.03, duration
    assert pause >= 0.5 * duration, (pause, duration)
