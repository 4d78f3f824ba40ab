"""Guided cost learning (course_utils.gcl.train_gcl) on the 2-D point mass: the targets of chapter 09.

For every seed: 20 demonstrations of the noisy expert (action noise std 0.3, starts seeded
100 + seed), then guided cost learning with the default :class:`course_utils.gcl.GCLConfig`
(the notebook's settings: 60 iterations of 4 episodes, 12,200 environment steps, 12,000 SAC steps,
the cost regularized by monotonic decrease along the demonstrations and an L2 penalty). Target: the
deterministic (mean-action) policy trained on the learned cost ends in the goal disc in >= 90% of
20 evaluation episodes (``info["in_goal"]`` at the last step), every seed. Also reported: the
stochastic policy's success, the Pearson correlation of the learned reward -c(s) with the true
reward -||s - g|| on a 61 x 61 grid, whether the learned cost is lower at the goal than at the
start (the notebook asserts it), the median effective sample size of the cost updates (ESS own:
of each sample's own-sampler weight over the 20 policy samples; ESS fused: of the fused
sampler's weights over the background set of the 20 policy samples and the 20 demonstrations,
on the same samples),
and the training time (wall-clock on this machine; it varies with the load).

Run from the repository root:

    COURSE_THREADS=1 python benchmarks/gcl_point_mass.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from course_utils import gcl

TARGET = 0.9


def run(seed: int, iterations: int, importance: str = "own") -> dict:
    demos = gcl.expert_demonstrations(20, noise=0.3, seed=100 + seed)
    result = gcl.train_gcl(
        demos, config=gcl.GCLConfig(iterations=iterations, importance=importance), seed=seed
    )
    X, Y, C = gcl.cost_on_grid(result.cost_net, 61)
    with torch.no_grad():
        c_goal, c_start = result.cost_net(torch.tensor([[0.6, 0.6], [-0.6, -0.6]])).tolist()
    return {
        "goal_below_start": c_goal < c_start,
        "success": gcl.success_rate(result.policy, 20, seed=10_000),
        "stochastic": gcl.success_rate(result.policy, 20, seed=10_000, deterministic=False),
        "pearson": float(np.corrcoef(-C.ravel(), -np.hypot(X - 0.6, Y - 0.6).ravel())[0, 1]),
        "ess": float(np.median(result.history["ess"])),
        "ess_own": float(np.median(result.history["ess_own"])),
        "ess_fused": float(np.median(result.history["ess_fused"])),
        "seconds": result.train_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=gcl.GCLConfig().iterations)
    parser.add_argument(
        "--importance", choices=["own", "fused"], default=gcl.GCLConfig().importance,
        help="the importance weights the cost update trains with",
    )  # fmt: skip
    args = parser.parse_args()
    ok = True
    print(
        f"{'seed':>4s} {'success':>8s} {'stoch.':>7s} {'c(g)<c(s0)':>10s} {'pearson':>8s} "
        f"{'ESS own':>7s} {'ESS fused':>9s} {'train s':>8s}"
    )
    for seed in args.seeds:
        r = run(seed, args.iterations, args.importance)
        ok &= r["success"] >= TARGET and r["goal_below_start"]
        print(
            f"{seed:4d} {r['success']:8.2f} {r['stochastic']:7.2f} {r['goal_below_start']!s:>10s} "
            f"{r['pearson']:8.2f} {r['ess_own']:7.1f} {r['ess_fused']:9.1f} "
            f"{r['seconds']:8.1f}",
            flush=True,
        )
    print(
        f"target: success >= {TARGET} and c(goal) < c(start) for every seed: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
