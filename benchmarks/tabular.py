"""Speed of the tabular inference code on a 32x32 gridworld with slip (1024 states, 5 actions).

Targets (issue: chapters 04-05): soft value iteration to tol 1e-8 in under 1 s; a 50-step
backward pass in under 50 ms. Run from the repository root:

    python benchmarks/tabular.py

Reports the median of several repetitions of each (the first call is included in none).
"""

import statistics
import time


from course_utils.inference import (
    backward_messages,
    forward_messages,
    soft_policy,
    soft_value_iteration,
    value_iteration,
)
from course_utils.mdp import gridworld
from course_utils.runtime import configure_threads


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    configure_threads()
    layout = ["S" + "." * 31] + ["." * 32] * 30 + ["." * 31 + "G"]
    mdp = gridworld(layout, rewards={"G": 1.0}, step_reward=-0.1, slip=0.2)
    assert mdp.n_states == 1024 and mdp.n_actions == 5
    Q, V = backward_messages(mdp.P, mdp.R, 50)
    pi = soft_policy(Q, V)
    rows = [
        (
            "soft value iteration, gamma=0.9, tol=1e-8",
            lambda: soft_value_iteration(mdp.P, mdp.R, gamma=0.9, tol=1e-8),
            1.0,
        ),
        (
            "soft value iteration, gamma=0.99, tol=1e-8",
            lambda: soft_value_iteration(mdp.P, mdp.R, gamma=0.99, tol=1e-8),
            1.0,
        ),
        (
            "hard value iteration, gamma=0.99, tol=1e-8",
            lambda: value_iteration(mdp.P, mdp.R, gamma=0.99, tol=1e-8),
            None,
        ),
        (
            "backward messages, T=50 (variational)",
            lambda: backward_messages(mdp.P, mdp.R, 50),
            0.05,
        ),
        (
            "backward messages, T=50 (optimistic)",
            lambda: backward_messages(mdp.P, mdp.R, 50, optimistic=True),
            None,
        ),
        ("forward messages, T=50", lambda: forward_messages(mdp.P, pi, mdp.p0, 50), None),
    ]
    print(f"32x32 gridworld with slip 0.2: {mdp.n_states} states, {mdp.n_actions} actions")
    failed = False
    for name, fn, target in rows:
        seconds = median_seconds(fn, repeats=5)
        verdict = "" if target is None else ("  ok" if seconds < target else "  SLOWER THAN TARGET")
        failed |= target is not None and seconds >= target
        limit = "" if target is None else f" (target < {target * 1000:.0f} ms)"
        print(f"{name:<46} {seconds * 1000:8.1f} ms{limit}{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
