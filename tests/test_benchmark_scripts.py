"""The benchmark scripts' process pool: results come back in task order.

``scripts/decoding_repeated_splits.py`` zips its tasks with ``run_pool``'s results (the results
carry no split seed), so a pool that returned them in completion order assigned baselines and
fine-tuning runs to the wrong split seeds. No recording is read here: the property is the
pool's, whatever the task computes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import benchmark_decoding as bd  # noqa: E402


def _later_tasks_finish_first(i: int) -> int:
    """Task ``i`` of 0..3 sleeps (3 - i) * 0.4 s, so with 2 workers task 1 ends before task 0."""
    time.sleep(0.4 * (3 - i))
    return i


def test_run_pool_returns_results_in_task_order_with_two_workers():
    assert bd.run_pool(_later_tasks_finish_first, [0, 1, 2, 3], 2, "order") == [0, 1, 2, 3]
    assert bd.run_pool(_later_tasks_finish_first, [3, 2], 1, "order") == [3, 2]
