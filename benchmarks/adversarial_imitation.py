"""GAIL and AIRL with off-policy generators on CartPole-v1 (soft DQN) and Pendulum-v1 (SAC).

Targets (issue #8): normalised score = (return - random) / (expert - random) >= 0.95 on
CartPole-v1 within 50k env steps and >= 0.9 on Pendulum-v1 within 30k env steps, for every seed,
evaluated on 10 seeded episodes (seeds 10000..10009, mean/greedy action) with the TRUE reward,
which the agents never see. Expert: the analytic controllers of course_utils.rl.experts
(10 demonstration episodes, seeds 0..9); random: uniformly random actions on the same 10
evaluation seeds.

Run from the repository root:

    python benchmarks/adversarial_imitation.py                         # both envs, both methods, seeds 0 1 2
    python benchmarks/adversarial_imitation.py --env CartPole-v1 --methods airl --seeds 0

Settings (see ``SETTINGS``): CartPole uses the reward -log(1 - D) (positive: CartPole terminates
when the pole falls, and a negative reward would teach the agent to end episodes early; the
positive one carries a survival bonus, a known bias of adversarial imitation in tasks with
terminations), and its discriminator is frozen after 25k steps; GAIL's soft DQN uses gamma = 0.98.
Pendulum (no terminations) uses log D - log(1 - D), the slides' generator reward, for GAIL and f_psi
(the AIRL logit without its -log pi term, which SAC adds as its entropy bonus) for AIRL, and its actions go through
``WiderActions`` (see course_utils.adversarial).

Measured (shared 2-core CPU, seeds 0 1 2, normalised score of the final evaluation):
CartPole-v1, 50k steps: GAIL 1.00 / 1.00 / 1.00 (and 1.00 / 1.00 on seeds 3 4) with gamma = 0.98
for its soft DQN (with 0.99: 1.00 / 1.00 / 0.02, seed 2's Q values overshot their bound and the
policy collapsed after 45k steps; see ``SETTINGS``), AIRL 1.00 / 1.00 / 1.00; 1-3 min each.
Pendulum-v1, 30k steps: GAIL 1.00 / 0.99 / 1.00, AIRL 1.00 / 1.00 / 1.00; 2-11 min each.
Wall-clock counts acting and learning, including the discriminator (not the evaluations).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from course_utils.adversarial import AdversarialConfig, WiderActions, train_adversarial
from course_utils.rl import SACConfig, SoftDQNConfig, evaluate
from course_utils.rl.experts import make_expert

EVAL_SEED, EVAL_EPISODES = 10_000, 10

SETTINGS = {
    "CartPole-v1": dict(
        steps=50_000,
        threshold=0.95,
        make_env=lambda: gym.make("CartPole-v1"),
        # GAIL: gamma = 0.98. Its discriminator stays weak (D ~ 0.47-0.55), so -log(1 - D) is almost a
        # constant ~0.75 per step and the actions' rewards differ by ~0.02: the policy lives on Q gaps of
        # ~0.4 on Q values near the bound (r_max + alpha log 2) / (1 - gamma). With gamma = 0.99 (bound ~98)
        # seed 2's soft Q overshot that bound after 45k steps (Q 144 at 50k, max 166) and the greedy
        # policy fell from 500 to 28; with 0.98 (bound ~51) Q stays at ~46-48 and every seed 0-4 ends at 500.
        # AIRL keeps 0.99 (1.00 on every seed).
        rl_config=lambda method: SoftDQNConfig(
            eval_every=5_000, gamma=0.98 if method == "gail" else 0.99
        ),
        # soft DQN's temperature (chapter 06's default); alpha = 0.1 and 0.05 were less stable (see the report)
        alpha=0.3,
        # the library's discriminator defaults (as on the point mass), frozen after half of the run
        config=lambda method: AdversarialConfig(
            reward_shape="positive", disc_every=1_000, disc_updates=10, disc_until=25_000
        ),
    ),
    "Pendulum-v1": dict(
        steps=30_000,
        threshold=0.9,
        make_env=lambda: WiderActions(gym.make("Pendulum-v1")),
        rl_config=lambda method: SACConfig(eval_every=2_500),
        # GAIL: a weaker discriminator on the latest samples, no penalty (met the target for every seed);
        # AIRL: the library's defaults (as on the point mass), frozen after two thirds of the run
        config=lambda method: (
            AdversarialConfig(
                disc_every=100,
                disc_updates=10,
                disc_lr=1e-3,
                disc_window=2_000,
                grad_penalty=0.0,
                reward_shape="logit",
            )
            if method == "gail"
            else AdversarialConfig(reward_shape="f", disc_until=20_000)
        ),
    ),
}


def random_return(env_id: str) -> float:
    space = gym.make(env_id).action_space
    torch.manual_seed(0)
    if isinstance(space, gym.spaces.Discrete):

        def policy(obs):
            return torch.randint(0, space.n, (obs.shape[0],))
    else:
        low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)

        def policy(obs):
            return low + (high - low) * torch.rand(obs.shape[0], len(low))

    return evaluate(policy, env_id, EVAL_EPISODES, seed=EVAL_SEED).mean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", nargs="+", default=list(SETTINGS))
    parser.add_argument("--methods", nargs="+", default=["gail", "airl"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the step budget")
    parser.add_argument(
        "--alpha", type=float, default=None, help="override soft DQN's temperature (CartPole)"
    )
    parser.add_argument("--json", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args()
    from course_utils.rl.experts import generate_demonstrations

    all_ok = True
    for env_id in args.env:
        s = SETTINGS[env_id]
        expert = make_expert(env_id)
        expert_ret = evaluate(expert, env_id, EVAL_EPISODES, seed=EVAL_SEED).mean
        rand_ret = random_return(env_id)
        demos = generate_demonstrations(expert, env_id, 10, seed=0)
        print(
            f"{env_id}: expert {expert_ret:.1f}, random {rand_ret:.1f}, {len(demos)} expert transitions "
            f"(demo return {demos.returns.mean():.1f})",
            flush=True,
        )
        steps = args.steps or s["steps"]
        for method in args.methods:
            scores = []
            for seed in args.seeds:
                tick = time.perf_counter()
                res = train_adversarial(
                    method,
                    s["make_env"],
                    demos.transitions,
                    steps,
                    seed=seed,
                    config=s["config"](method),
                    rl_config=s["rl_config"](method),
                    alpha=args.alpha if args.alpha is not None else s.get("alpha", 0.3),
                )
                wall = time.perf_counter() - tick
                final = res.run.final_eval.mean
                score = (final - rand_ret) / (expert_ret - rand_ret)
                scores.append(score)
                curve = [round(r, 1) for r in res.run.curve.returns]
                print(
                    f"  {method} seed {seed}: return {final:.1f}, normalised {score:.3f} after {steps} steps, "
                    f"{res.run.train_seconds:.0f} s train / {wall:.0f} s wall (load {os.getloadavg()[0]:.1f}); "
                    f"curve {curve}",
                    flush=True,
                )
                if args.json:
                    with open(args.json, "a") as handle:
                        handle.write(
                            json.dumps(
                                dict(
                                    env=env_id,
                                    method=method,
                                    seed=seed,
                                    steps=steps,
                                    ret=final,
                                    score=score,
                                    expert=expert_ret,
                                    random=rand_ret,
                                    train_s=res.run.train_seconds,
                                    wall_s=wall,
                                    curve=curve,
                                )
                            )
                            + "\n"
                        )
            ok = min(scores) >= s["threshold"]
            all_ok &= ok
            print(
                f"  {method}: min {min(scores):.3f}, mean {statistics.mean(scores):.3f} "
                f"(target >= {s['threshold']} for every seed: {'met' if ok else 'NOT met'})",
                flush=True,
            )
    return 0 if all_ok else 1


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
