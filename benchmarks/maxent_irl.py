"""MaxEnt IRL (course_utils.irl.maxent_irl) against the targets of chapter 08.

Targets, checked for every seed:
1. exact: given the expert's exact feature counts (from forward messages, no sampling),
   the learned model matches them within 1e-3 (max abs over features);
2. demos: from 200 demonstrations sampled from the soft-optimal expert on the chapter's 10x10
   gridworld (slip 0.1, T = 30), the policy soft-optimal for the learned reward gets >= 95% of
   the expert's expected true return (exact, by forward messages). Also reported: the normalised
   score (learned - random) / (expert - random) and the Pearson correlation of learned and true
   state rewards;
3. speed: on a random 32x32 gridworld (slip 0.1, T = 64, 200 demos) maxent_irl converges
   (feature gap <= 1e-6) in under 10 s.

Run from the repository root (timings are wall-clock on this machine and vary with its load):

    python benchmarks/maxent_irl.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from course_utils.inference import backward_messages, forward_messages, soft_policy
from course_utils.irl import (
    expected_return,
    irl_gridworld,
    maxent_irl,
    maxent_irl_from_expectations,
)
from course_utils.mdp import sample_trajectories

HORIZON, N_DEMOS, ALPHA = 30, 200, 1.0


def soft_expert(mdp, theta, horizon):
    Q, V = backward_messages(
        mdp.P, np.repeat((mdp.features @ theta)[:, None], mdp.n_actions, 1), horizon, alpha=ALPHA
    )
    return soft_policy(Q, V, ALPHA)


def exact_row(seed: int) -> dict:
    """Random true weights on the chapter's gridworld; the expert's exact counts as the target."""
    mdp, _ = irl_gridworld()
    theta_true = np.random.default_rng(seed).normal(size=mdp.features.shape[1])
    pi = soft_expert(mdp, theta_true, HORIZON)
    target = forward_messages(mdp.P, pi, mdp.p0, HORIZON).sum(axis=0) @ mdp.features
    result = maxent_irl_from_expectations(
        mdp.P, mdp.features, target, horizon=HORIZON, p0=mdp.p0, alpha=ALPHA
    )
    return {
        "exact gap": np.abs(result.feature_expectations - target).max(),
        "exact |dpi|": np.abs(result.policy - pi).max(),
        "exact it": result.n_iters,
    }


def demos_row(seed: int) -> dict:
    mdp, theta_true = irl_gridworld()
    r_true = mdp.features @ theta_true
    pi = soft_expert(mdp, theta_true, HORIZON)
    states, actions = sample_trajectories(mdp, pi, HORIZON, N_DEMOS, np.random.default_rng(seed))
    start = time.perf_counter()
    result = maxent_irl(mdp.P, mdp.features, states, actions, horizon=HORIZON, alpha=ALPHA)
    seconds = time.perf_counter() - start
    expert = expected_return(mdp.P, r_true, pi, mdp.p0, HORIZON)
    learned = expected_return(mdp.P, r_true, result.policy, mdp.p0, HORIZON)
    random = expected_return(
        mdp.P, r_true, np.full((mdp.n_states, mdp.n_actions), 1 / mdp.n_actions), mdp.p0, HORIZON
    )
    return {
        "expert R": expert,
        "learned R": learned,
        "ratio": learned / expert,
        "normalised": (learned - random) / (expert - random),
        "pearson": np.corrcoef(result.reward, r_true)[0, 1],
        "demo it": result.n_iters,
        "demo s": seconds,
    }


def random_layout(rng: np.random.Generator, size: int = 32) -> list[str]:
    grid = rng.choice(list(".WL#"), p=[0.74, 0.12, 0.07, 0.07], size=(size, size))
    grid[rng.integers(size // 2, size, size=2)[0], rng.integers(size // 2, size)] = "G"
    for r, c in rng.integers(0, size // 2, size=(4, 2)):
        grid[r, c] = "S"
    return ["".join(row) for row in grid]


def large_row(seed: int) -> dict:
    mdp, theta_true = irl_gridworld(random_layout(np.random.default_rng(1000 + seed)))
    horizon = 64
    pi = soft_expert(mdp, theta_true, horizon)
    states, actions = sample_trajectories(mdp, pi, horizon, N_DEMOS, np.random.default_rng(seed))
    start = time.perf_counter()
    result = maxent_irl(mdp.P, mdp.features, states, actions, horizon=horizon, alpha=ALPHA)
    return {
        "32x32 S": mdp.n_states,
        "32x32 it": result.n_iters,
        "32x32 s": time.perf_counter() - start,
        "32x32 gap": result.feature_gap[-1],
        "ok": result.converged,
    }


COLUMNS = [
    ("seed", "{:>4d}"),
    ("exact gap", "{:>9.1e}"),
    ("exact |dpi|", "{:>11.1e}"),
    ("exact it", "{:>8d}"),
    ("expert R", "{:>8.2f}"),
    ("learned R", "{:>9.2f}"),
    ("ratio", "{:>6.3f}"),
    ("normalised", "{:>10.3f}"),
    ("pearson", "{:>7.3f}"),
    ("demo it", "{:>7d}"),
    ("demo s", "{:>6.2f}"),
    ("32x32 S", "{:>7d}"),
    ("32x32 it", "{:>8d}"),
    ("32x32 s", "{:>7.2f}"),
    ("32x32 gap", "{:>9.1e}"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    mdp, _ = irl_gridworld()
    print(
        f"chapter gridworld: {mdp.n_states} states, slip 0.1, T = {HORIZON}, {N_DEMOS} demos, alpha = {ALPHA}"
    )
    print(" ".join(f"{name:>{len(fmt.format(0 if 'd' in fmt else 0.0))}}" for name, fmt in COLUMNS))
    rows = []
    for seed in args.seeds:
        row = {"seed": seed, **exact_row(seed), **demos_row(seed), **large_row(seed)}
        rows.append(row)
        print(" ".join(fmt.format(row[name]) for name, fmt in COLUMNS), flush=True)
    checks = [
        ("exact feature counts matched within 1e-3", all(r["exact gap"] <= 1e-3 for r in rows)),
        ("learned / expert return >= 0.95 from 200 demos", all(r["ratio"] >= 0.95 for r in rows)),
        ("32x32 converges in under 10 s", all(r["ok"] and r["32x32 s"] < 10 for r in rows)),
    ]
    print(
        f"worst over seeds: exact gap {max(r['exact gap'] for r in rows):.1e}, ratio "
        f"{min(r['ratio'] for r in rows):.3f}, "
        f"normalised {min(r['normalised'] for r in rows):.3f}, pearson {min(r['pearson'] for r in rows):.3f}, "
        f"32x32 {max(r['32x32 s'] for r in rows):.2f} s"
    )
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
