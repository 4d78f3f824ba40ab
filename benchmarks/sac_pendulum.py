"""SAC on Pendulum-v1: our two variants against Stable-Baselines3's SAC, in the same run.

Targets (issue: chapters 06-07): mean evaluation return >= -200 over 10 seeded episodes
within 15k env steps for every seed (goal: >= -180 at 10k); wall-clock of our SAC <= 0.8 x
SB3's SAC with the same network sizes, hyper-parameters and step budget.
Anchor: the RL Zoo's SB3 SAC, -157 +- 89 after 20k steps.

Run from the repository root (needs ``pip install -r benchmarks/requirements.txt``):

    python benchmarks/sac_pendulum.py                          # seeds 0 1 2, 15k steps
    python benchmarks/sac_pendulum.py --seeds 0 1 2 3 4 --steps 15000
    python benchmarks/sac_pendulum.py --no-sb3                 # our SAC only

Ours: ``variant="v"`` (the slides' Algorithm 1: V network, fixed alpha) and
``variant="auto_alpha"`` (no V, target critics, learned alpha), the latter being the same
algorithm as SB3's SAC; ``--variants no_v`` adds the step between them (target critics, fixed
alpha). SB3 runs with our hyper-parameters (network sizes, learning rate,
batch size, buffer, warm-up, tau, gamma, one gradient step per env step, ent_coef="auto",
initial alpha = ours) and the same torch thread count. Every agent is evaluated with
``course_utils.rl.evaluate``: mean action, episodes seeded 10000..10009, at 10k steps and at
the end. Wall-clock counts acting and learning (no evaluation); it depends on what else runs
on the machine, so the load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import gymnasium as gym
import torch

from course_utils.rl import SACConfig, evaluate, train_sac

THRESHOLD = -200.0
GOAL_10K = -180.0
EVAL_AT = 10_000


def run_sb3(seed: int, steps: int, config: SACConfig) -> dict:
    """SB3's SAC with our hyper-parameters: evaluations at EVAL_AT and ``steps``, learn() seconds."""
    from stable_baselines3 import SAC

    torch.set_num_threads(config.num_threads or torch.get_num_threads())
    model = SAC(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        train_freq=1,
        gradient_steps=1,
        ent_coef=f"auto_{config.alpha}",
        target_entropy="auto",
        policy_kwargs={"net_arch": list(config.hidden_sizes)},
        seed=seed,
        device="cpu",
        verbose=0,
    )

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(model.predict(obs.numpy(), deterministic=True)[0])

    def evaluation():
        return evaluate(policy, "Pendulum-v1", config.eval_episodes, seed=config.eval_seed)

    returns, seconds, done = {}, 0.0, 0
    for stop in sorted({min(EVAL_AT, steps), steps}):
        start = time.perf_counter()
        model.learn(total_timesteps=stop - done, reset_num_timesteps=done == 0)
        seconds += time.perf_counter() - start
        returns[stop], done = evaluation(), stop
    return {"returns": returns, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument(
        "--variants", nargs="+", default=["v", "auto_alpha"], choices=["v", "no_v", "auto_alpha"]
    )
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args()

    config = SACConfig()
    names = [f"ours ({v})" for v in args.variants] + ([] if args.no_sb3 else ["SB3 SAC"])
    print(f"Pendulum-v1, {args.steps} env steps, seeds {args.seeds}; {config}")
    print(f"torch {torch.__version__}, {config.num_threads} thread(s)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 = both cores busy with other work)")
    header = (
        f"{'agent':<18} {'seed':>4} {'return@10k':>10} {'final return':>16} "
        f"{'first>=-200':>11} {'train s':>8} {'steps/s':>7}"
    )
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for seed in args.seeds:
        for variant in args.variants:
            result = train_sac(
                "Pendulum-v1", args.steps, seed, variant, config, progress=args.progress
            )
            at = dict(zip(result.curve.steps, result.curve.returns, strict=True))
            row = {
                "at10k": at.get(EVAL_AT, float("nan")),
                "final": result.final_eval.mean,
                "final_std": result.final_eval.std,
                "first": result.curve.first_step_reaching(THRESHOLD),
                "seconds": result.train_seconds,
            }
            rows[f"ours ({variant})"].append(row)
            _print_row(f"ours ({variant})", seed, row, args.steps)
        if not args.no_sb3:
            sb3 = run_sb3(seed, args.steps, config)
            at10k = sb3["returns"].get(EVAL_AT)
            row = {
                "at10k": at10k.mean if at10k else float("nan"),
                "final": sb3["returns"][args.steps].mean,
                "final_std": sb3["returns"][args.steps].std,
                "first": None,
                "seconds": sb3["seconds"],
            }
            rows["SB3 SAC"].append(row)
            _print_row("SB3 SAC", seed, row, args.steps)
    print("-" * len(header))

    ok = True
    for name, results in rows.items():
        finals = [r["final"] for r in results]
        at10k = [r["at10k"] for r in results]
        seconds = statistics.mean(r["seconds"] for r in results)
        print(
            f"{name:<18} final: min {min(finals):7.1f} mean {statistics.mean(finals):7.1f} | "
            f"@10k: min {min(at10k):7.1f} mean {statistics.mean(at10k):7.1f} | "
            f"{seconds:6.1f} s per run ({seconds / args.steps * 1e4:.1f} s per 10k steps)"
        )
        if name.startswith("ours"):
            ok &= min(finals) >= THRESHOLD
    if not args.no_sb3:
        sb3_seconds = [r["seconds"] for r in rows["SB3 SAC"]]
        for variant in args.variants:
            ratios = [
                r["seconds"] / s
                for r, s in zip(rows[f"ours ({variant})"], sb3_seconds, strict=True)
            ]
            print(
                f"wall-clock ours ({variant}) / SB3: per seed {' '.join(f'{x:.2f}' for x in ratios)}; "
                f"mean {statistics.mean(ratios):.2f} (goal <= 0.8)"
            )
    print(
        f"load average after: {os.getloadavg()[0]:.2f}; total {time.perf_counter() - start:.0f} s"
    )
    print(
        "TARGET MET" if ok else "TARGET MISSED",
        f"(our final return >= {THRESHOLD:.0f} for every seed)",
    )
    return 0 if ok else 1


def _print_row(name: str, seed: int, row: dict, steps: int) -> None:
    final = f"{row['final']:.1f} +- {row['final_std']:.1f}"
    print(
        f"{name:<18} {seed:>4} {row['at10k']:>10.1f} {final:>16} {row['first'] or '-':>11} "
        f"{row['seconds']:>8.1f} {steps / row['seconds']:>7.0f}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
