"""IQ-Learn (inverse soft-Q learning) on CartPole-v1 and Pendulum-v1, and its reward under rotated actions.

Targets (issue #18): normalised score = (return - random) / (expert - random) >= 0.95 on CartPole-v1
with <= 10k environment steps (or offline, from the demonstrations alone), and >= 0.9 on
Pendulum-v1 within 20k environment steps, for every seed. Chapter 10's protocol
(benchmarks/adversarial_imitation.py): 10 demonstration episodes of the analytic experts
(seeds 0..9, no action noise), evaluation on 10 seeded episodes (seeds 10000..10009, greedy / mean
action) with the TRUE reward, which IQ-Learn never sees; random = uniformly random actions on the
same evaluation seeds.

Transfer (chapter 10's protocol, benchmarks/reward_transfer.py): IQ-Learn on the point mass from
40 soft-optimal demonstrations, then a fresh SAC trained on the frozen recovered reward
r = Q(s, a) - gamma V(s') with the actions rotated by 90 degrees; score against the expert and the
random policy under the rotated dynamics.

Run from the repository root:

    python benchmarks/iq_learn.py                                 # CartPole, Pendulum, transfer; seeds 0 1 2
    python benchmarks/iq_learn.py --env CartPole-v1 --seeds 0 1 2 3 4
    python benchmarks/iq_learn.py --env Pendulum-v1 --steps 20000
    python benchmarks/iq_learn.py --env none --transfer           # the transfer only
    python benchmarks/iq_learn.py --env Pendulum-v1 --seeds 0 --set alpha=0.1 lr_decay=False --plain

Settings: see ``SETTINGS`` (CartPole offline: ``total_steps`` counts gradient steps and no
environment step is taken; Pendulum online: environment steps, one critic and one actor step each).
Measured figures: benchmarks/README.md ("IQ-Learn").
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from adversarial_imitation import EVAL_EPISODES, EVAL_SEED, random_return
from reward_transfer import ROTATION, SAC, normalised

from course_utils.adversarial import WiderActions
from course_utils.envs import PointMassEnv
from course_utils.iq_learn import IQLearnConfig, train_iq_learn
from course_utils.rl import SACConfig, evaluate, train_sac
from course_utils.rl.experts import (
    SoftPointMassExpert,
    generate_demonstrations,
    make_expert,
    point_mass_expert,
)

SETTINGS = {
    "CartPole-v1": dict(
        steps=3_000,  # gradient steps (offline)
        threshold=0.95,
        config=lambda: IQLearnConfig(online=False, eval_every=500),
    ),
    "Pendulum-v1": dict(
        steps=20_000,  # environment steps (online)
        threshold=0.9,
        # chapter 10's wrapper (a 1.25x wider action box, clipped): the bang-bang expert's torques sit
        # on the bounds, which a tanh policy reaches only at infinity
        make_env=lambda: WiderActions(gym.make("Pendulum-v1")),
        # learning rates decayed to 0 over the run: without it seed 0 reached 0.91 at 16k steps and
        # fell to 0.40 at 20k (the critic and the actor chase each other, as GAIL's do). gamma 0.98:
        # 0.86 / 0.43 / 0.37 on seeds 0-2, against 0.73 / 0.27 / 0.28 with 0.99 and 0.61 / 0.34 / 0.78
        # with 0.95. A Polyak target critic for V(s') (tau 0.005, the authors' ``use_target``) then
        # lifted seeds 0-2 to 0.98 / 0.91 / 0.99 (see benchmarks/README.md)
        config=lambda: IQLearnConfig(
            online=True, eval_every=2_000, lr_decay=True, gamma=0.98, target_tau=0.005
        ),
    ),
}
TRANSFER = dict(steps=5_000, transfer_steps=4_000, demos=40)


def run_imitation(
    env_id: str, seeds: list[int], steps: int | None, log: str | None, overrides: dict, plain: bool
) -> bool:
    s = SETTINGS[env_id]
    expert = make_expert(env_id)
    expert_ret = evaluate(expert, env_id, EVAL_EPISODES, seed=EVAL_SEED).mean
    rand_ret = random_return(env_id)
    demos = generate_demonstrations(expert, env_id, 10, seed=0)
    steps = steps or s["steps"]
    print(
        f"{env_id}: expert {expert_ret:.1f}, random {rand_ret:.1f}, {len(demos)} expert transitions; "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    scores = []
    for seed in seeds:
        tick = time.perf_counter()
        make_env = env_id if plain else s.get("make_env", env_id)
        config = dataclasses.replace(s["config"](), **overrides)
        res = train_iq_learn(make_env, demos.transitions, steps, seed=seed, config=config)
        wall = time.perf_counter() - tick
        final = res.final_eval.mean
        score = (final - rand_ret) / (expert_ret - rand_ret)
        scores.append(score)
        curve = [round(r, 1) for r in res.curve.returns]
        kind = "env steps (online)" if res.online else "gradient steps (offline, 0 env steps)"
        print(
            f"  seed {seed}: return {final:.1f}, normalised {score:.3f} after {steps} {kind}, "
            f"{res.train_seconds:.1f} s train / {wall:.1f} s wall (load {os.getloadavg()[0]:.2f}); "
            f"curve {curve} at {res.curve.steps[0]}, {res.curve.steps[1]}, ...; "
            f"expert / policy reward {res.diagnostics['expert_reward'][-1]:.3f} / "
            f"{res.diagnostics['policy_reward'][-1]:.3f}",
            flush=True,
        )
        if log:
            with open(log, "a") as handle:
                row = dict(env=env_id, seed=seed, steps=steps, online=res.online, ret=final)
                row.update(score=score, train_s=res.train_seconds, wall_s=wall, curve=curve)
                handle.write(json.dumps(row) + "\n")
    ok = min(scores) >= s["threshold"]
    print(
        f"  IQ-Learn {env_id}: min {min(scores):.3f}, mean {statistics.mean(scores):.3f} "
        f"(target >= {s['threshold']} for every seed: {'met' if ok else 'NOT met'})",
        flush=True,
    )
    return ok


def run_transfer(seeds: list[int], log: str | None) -> None:
    def rotated_plain():
        return PointMassEnv(action_rotation=ROTATION)

    def rotated():
        return WiderActions(PointMassEnv(action_rotation=ROTATION))

    expert_new = evaluate(
        point_mass_expert(action_rotation=ROTATION), rotated_plain, 10, seed=10_000
    ).mean
    torch.manual_seed(0)
    random_new = evaluate(
        lambda obs: 2 * torch.rand(obs.shape[0], 2) - 1, rotated_plain, 10, seed=10_000
    ).mean
    demos = generate_demonstrations(
        SoftPointMassExpert(beta=50.0, seed=0), PointMassEnv, n_episodes=TRANSFER["demos"], seed=0
    )
    print(
        f"transfer (point mass, actions rotated 90 deg): expert {expert_new:.1f}, random "
        f"{random_new:.1f}; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    sac_config = SACConfig(**SAC)
    scores = []
    for seed in seeds:
        tick = time.perf_counter()
        res = train_iq_learn(
            lambda: WiderActions(PointMassEnv()),
            demos.transitions,
            TRANSFER["steps"],
            seed=seed,
            config=IQLearnConfig(online=True, eval_every=1_000),
        )
        run = train_sac(
            rotated,
            TRANSFER["transfer_steps"],
            seed=seed,
            config=sac_config,
            progress=False,
            reward_fn=res.reward_fn,
        )
        score = normalised(run.final_eval.mean, expert_new, random_new)
        scores.append(score)
        print(
            f"  seed {seed}: imitation return {res.final_eval.mean:.1f}, re-optimised under rotation "
            f"{run.final_eval.mean:.1f}, normalised {score:.2f} ({time.perf_counter() - tick:.0f} s, "
            f"load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        if log:
            with open(log, "a") as handle:
                row = dict(env="transfer", seed=seed, imitation=res.final_eval.mean)
                row.update(transfer=run.final_eval.mean, score=score)
                handle.write(json.dumps(row) + "\n")
    print(
        f"IQ-Learn transfer: per seed {[round(v, 2) for v in scores]}, mean {np.mean(scores):.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", nargs="+", default=list(SETTINGS), help="envs, or 'none'")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the step budget")
    parser.add_argument("--transfer", action="store_true", help="also run the transfer")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="override IQLearnConfig fields"
    )
    parser.add_argument("--plain", action="store_true", help="no WiderActions wrapper (Pendulum)")
    parser.add_argument("--json", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args()
    all_ok = True
    for env_id in args.env:
        if env_id == "none":
            continue
        if env_id not in SETTINGS:
            parser.error(f"unknown env {env_id!r}; known: {sorted(SETTINGS)} or 'none'")
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            overrides[key] = ast.literal_eval(value)
        all_ok &= run_imitation(env_id, args.seeds, args.steps, args.json, overrides, args.plain)
    if args.transfer:
        run_transfer(args.seeds, args.json)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    gym.logger.min_level = 40
    raise SystemExit(main())
