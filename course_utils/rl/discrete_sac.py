"""Soft Actor-Critic with a categorical policy (Christodoulou, 2019), on a discrete-action task.

Continuous SAC (chapter 07, :mod:`course_utils.rl.sac`) estimates every expectation over the
action with one reparameterised sample a~. With a handful of discrete actions there is no need
to sample: the critics output Q(s, .) for all actions at once and the policy outputs the whole
distribution pi(.|s), so each expectation over a is an exact sum of |A| terms:

    V(s')      = sum_a' pi(a'|s') [min_i Qbar_i(s', a') - alpha log pi(a'|s')]   (target critics)
    J_Q(theta) = sum_i E[ 1/2 (Q_theta_i(s, a) - (r + gamma (1 - terminated) V(s')))^2 ]
    J_pi(phi)  = E_s sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_theta_i(s, a)]      (critics frozen)
    J(alpha)   = E_s [alpha (H(pi(.|s)) - H_target)],  H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s)

The actor's gradient flows through the probabilities themselves (no reparameterisation and no
score function needed), and J(alpha) uses the exact entropy instead of -log pi(a~|s).

Target entropy: the paper sets H_target = 0.98 log|A|, 98 % of the uniform policy's entropy.
On CartPole (|A| = 2, log 2 = 0.69 nats) that is 0.68 nats: only policies closer to uniform
than 58 % / 42 % have it. The policy's entropy stays just below the target, J(alpha) keeps
pushing alpha up, and alpha and the soft Q-values grow without bound (measured with
``benchmarks/discrete_sac_cartpole.py --target-entropy-ratio 0.98``). :class:`DiscreteSACConfig`
therefore takes the fraction ``target_entropy_ratio`` (H_target = ratio * log|A|) with default
0.3 (0.21 nats on CartPole: a policy that gives about 95 % to its preferred action).

Per environment step the loop acts with a ~ pi(.|s), stores the transition and calls one
``update(agent, batch, gamma, tau)`` (default :func:`discrete_sac_update`), which takes one
gradient step on the critics, the actor and the temperature, all computed from the same
parameters, and then moves the target critics by Polyak averaging.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..runtime import configure_threads, get_device, seed_everything
from .buffer import Batch, ReplayBuffer
from .evaluation import (
    BestSnapshot,
    LearningCurve,
    TrainingRun,
    env_factory,
    evaluate,
    evaluate_and_record,
)
from .losses import polyak_update
from .networks import QNetwork, mlp

__all__ = [
    "CategoricalPolicy",
    "DiscreteSACAgent",
    "DiscreteSACConfig",
    "DiscreteSACResult",
    "TwinDiscreteQNetwork",
    "discrete_sac_update",
    "train_discrete_sac",
]


class CategoricalPolicy(nn.Module):
    """The actor pi_phi(.|s) over ``n_actions`` actions: (B, obs_dim) -> logits (B, n_actions).

    ``probs_and_log_probs(obs)`` gives pi(.|s) and log pi(.|s), both (B, n_actions);
    ``act(obs, deterministic)`` gives actions (B,): argmax_a pi(a|s), or a sample of pi(.|s).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.net = mlp(obs_dim, n_actions, hidden_sizes)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def probs_and_log_probs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pi(.|s) and log pi(.|s), each (B, n_actions); log_softmax keeps log pi finite."""
        log_probs = F.log_softmax(self.net(obs), dim=-1)
        return log_probs.exp(), log_probs

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        logits = self.net(obs)
        if deterministic:
            return logits.argmax(dim=-1)
        return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1).squeeze(-1)


class TwinDiscreteQNetwork(nn.Module):
    """Two critics Q_theta1(s, .), Q_theta2(s, .): (B, obs_dim) -> ((B, n_actions), (B, n_actions))."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.q1 = QNetwork(obs_dim, n_actions, hidden_sizes)
        self.q2 = QNetwork(obs_dim, n_actions, hidden_sizes)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs), self.q2(obs)


@dataclass
class DiscreteSACAgent:
    """Everything one update step sees: the networks, their optimizers and the temperature.

    ``policy`` pi_phi; ``q_net`` (Q_theta1, Q_theta2) and ``q_target`` (Qbar_1, Qbar_2, moved by
    Polyak averaging only), ``q_net(obs) -> (q1, q2)`` each (B, n_actions); ``log_alpha`` a 0-d
    tensor with requires_grad (alpha = exp(log_alpha) stays positive); ``target_entropy``
    H_target in nats; ``policy_opt``, ``q_opt``, ``alpha_opt`` optimise phi, theta, log_alpha.
    """

    policy: CategoricalPolicy
    q_net: TwinDiscreteQNetwork
    q_target: TwinDiscreteQNetwork
    log_alpha: torch.Tensor
    target_entropy: float
    policy_opt: torch.optim.Optimizer
    q_opt: torch.optim.Optimizer
    alpha_opt: torch.optim.Optimizer

    @property
    def alpha(self) -> float:
        return self.log_alpha.exp().item()


def discrete_sac_update(
    agent: DiscreteSACAgent, batch: Batch, gamma: float, tau: float
) -> tuple[float, float, float]:
    """One gradient step of discrete SAC on ``batch``; returns (J_Q, J_pi, J(alpha)) as floats.

    J_Q trains the critics towards r + gamma (1 - terminated) V(s') from the target critics,
    J_pi the actor against the frozen critics, J(alpha) the temperature; each loss reaches only
    its own parameters (the others' inputs are detached), so one backward pass through their sum
    computes all three gradients from the parameters before the step. Then the target critics
    move: Qbar_i <- tau Q_theta_i + (1 - tau) Qbar_i.
    """
    alpha = agent.log_alpha.exp().detach()
    with torch.no_grad():  # critic target with the exact expectation over a' ~ pi(.|s')
        next_probs, next_log_probs = agent.policy.probs_and_log_probs(batch.next_obs)
        next_q = torch.min(*agent.q_target(batch.next_obs))  # (B, A)
        next_value = (next_probs * (next_q - alpha * next_log_probs)).sum(-1)  # (B,)
        target = batch.rewards + gamma * (1.0 - batch.terminated) * next_value
    q1, q2 = agent.q_net(batch.obs)  # (B, A) each
    taken = batch.actions.unsqueeze(1)  # (B, 1)
    q_loss = sum(0.5 * (q.gather(1, taken).squeeze(1) - target).pow(2).mean() for q in (q1, q2))
    probs, log_probs = agent.policy.probs_and_log_probs(batch.obs)  # (B, A) each
    min_q = torch.min(q1, q2).detach()  # the critics are not trained by J_pi
    policy_loss = (probs * (alpha * log_probs - min_q)).sum(-1).mean()
    entropy = -(probs * log_probs).sum(-1).detach()  # H(pi(.|s)), (B,)
    alpha_loss = (agent.log_alpha.exp() * (entropy - agent.target_entropy)).mean()
    optimizers = (agent.q_opt, agent.policy_opt, agent.alpha_opt)
    for optimizer in optimizers:
        optimizer.zero_grad()
    (q_loss + policy_loss + alpha_loss).backward()  # disjoint parameters: one backward pass
    for optimizer in optimizers:
        optimizer.step()
    polyak_update(agent.q_target, agent.q_net, tau)
    return q_loss.item(), policy_loss.item(), alpha_loss.item()


Update = Callable[[DiscreteSACAgent, Batch, float, float], object]


@dataclass
class DiscreteSACConfig:
    """Hyper-parameters of discrete SAC (defaults: tuned on CartPole-v1, see benchmarks/)."""

    gamma: float = 0.99
    tau: float = 0.02  # Polyak rate of the target critics, every gradient step
    learning_rate: float = 1e-3  # critics, actor and temperature
    batch_size: int = 128
    buffer_size: int = 50_000
    learning_starts: int = 1_000  # uniformly random actions before the first update
    hidden_sizes: tuple[int, ...] = (64, 64)
    alpha: float = 0.1  # initial temperature
    # H_target = target_entropy_ratio * log|A|; the paper's 0.98 is too high for CartPole
    target_entropy_ratio: float = 0.3
    # evaluation: greedy (argmax pi) actions, eval_episodes episodes seeded eval_seed, ...
    eval_every: int | None = 2_500  # None: evaluate only at the end
    eval_episodes: int = 10
    eval_seed: int = 10_000
    # keep_best: return the networks of the best evaluation (ties: the later one) and score them
    # on held-out episodes seeded test_seed, test_seed + 1, ... (as chapter 06's soft DQN does)
    keep_best: bool = False
    test_seed: int = 20_000
    num_threads: int | None = 1  # torch threads while training (None: course default)

    def __post_init__(self) -> None:
        if not 0.0 <= self.target_entropy_ratio <= 1.0:
            raise ValueError(
                f"target_entropy_ratio must be in [0, 1] (a fraction of log|A|), "
                f"got {self.target_entropy_ratio}"
            )
        if self.alpha <= 0:
            raise ValueError(f"alpha (the initial temperature) must be positive, got {self.alpha}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")


@dataclass(kw_only=True)
class DiscreteSACResult(TrainingRun):
    """What :func:`train_discrete_sac` returns.

    ``curve`` holds the greedy (argmax pi) evaluation returns during training and ``final_eval``
    the last one. ``diagnostics[name][k]`` is measured on the last mini-batch before
    ``curve.steps[k]``: "q_loss", "policy_loss", "alpha_loss" (before that update), "entropy"
    (mean H(pi(.|s)), nats), "alpha" and "q_mean" (mean of min_i Q_theta_i(s, .)) after it.
    With ``config.keep_best``, the networks are the snapshot of the best evaluation (at
    ``best_step``) and ``final_eval`` is its return on the held-out episodes.
    ``alpha`` is the final temperature and ``target_entropy`` H_target in nats.
    """

    policy: CategoricalPolicy
    q_net: TwinDiscreteQNetwork
    q_target: TwinDiscreteQNetwork
    alpha: float
    target_entropy: float
    config: DiscreteSACConfig
    best_step: int | None = None


def train_discrete_sac(
    env_id: str | Callable[[], gym.Env] = "CartPole-v1",
    total_steps: int = 30_000,
    seed: int = 0,
    config: DiscreteSACConfig | None = None,
    progress: bool = True,
    *,
    update: Update | None = None,
) -> DiscreteSACResult:
    """Train discrete SAC for ``total_steps`` env steps; deterministic on CPU for a given seed.

    ``update(agent, batch, gamma, tau)`` replaces :func:`discrete_sac_update`: one gradient step
    on a :class:`DiscreteSACAgent` and a mini-batch, target update included. If it returns three
    numbers (J_Q, J_pi, J(alpha)) they are recorded in the diagnostics (else NaN). The loop
    acts, stores transitions, samples the mini-batches and evaluates.
    """
    step_fn = discrete_sac_update if update is None else update
    if not callable(step_fn):
        raise TypeError(f"update must be a function, got {type(step_fn).__name__}")
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    cfg = config or DiscreteSACConfig()
    previous_threads = torch.get_num_threads()
    seed_everything(seed)
    configure_threads(cfg.num_threads)
    device = get_device()
    try:
        make_env = env_factory(env_id)
        env = make_env()
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise TypeError(f"discrete SAC needs discrete actions, got {env.action_space}")
        obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)

        policy = CategoricalPolicy(obs_dim, n_actions, cfg.hidden_sizes).to(device)
        q_net = TwinDiscreteQNetwork(obs_dim, n_actions, cfg.hidden_sizes).to(device)
        q_target = copy.deepcopy(q_net).requires_grad_(False)
        log_alpha = torch.tensor(math.log(cfg.alpha), device=device, requires_grad=True)
        agent = DiscreteSACAgent(
            policy=policy,
            q_net=q_net,
            q_target=q_target,
            log_alpha=log_alpha,
            target_entropy=cfg.target_entropy_ratio * math.log(n_actions),
            policy_opt=torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, fused=True),
            q_opt=torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate, fused=True),
            alpha_opt=torch.optim.Adam([log_alpha], lr=cfg.learning_rate),
        )
        buffer = ReplayBuffer.for_env(env, cfg.buffer_size, device=device, seed=seed)
        env.action_space.seed(seed)

        curve = LearningCurve()
        names = ("q_loss", "policy_loss", "alpha_loss", "entropy", "alpha", "q_mean")
        diagnostics: dict[str, list[float]] = {name: [] for name in names}
        last = dict.fromkeys(names, np.nan)
        losses: object = None
        batch = None
        best = BestSnapshot(
            policy, q_net, q_target
        )  # keep_best: the networks of the best evaluation
        eval_seconds, start = 0.0, time.perf_counter()
        obs, _ = env.reset(seed=seed)
        for step in tqdm(range(1, total_steps + 1), disable=not progress, desc="discrete SAC"):
            # ---- act: random warm-up, then a ~ pi(.|s)
            if step <= cfg.learning_starts:
                action = int(env.action_space.sample())
            else:
                obs_t = torch.as_tensor(obs, device=device).unsqueeze(0)  # (1, obs_dim)
                action = int(policy.act(obs_t, deterministic=False))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated)  # truncated: still bootstrap
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()

            # ---- learn: one gradient step on J_Q, J_pi and J(alpha), then the target critics
            if step > cfg.learning_starts:
                batch = buffer.sample(cfg.batch_size)
                losses = step_fn(agent, batch, cfg.gamma, cfg.tau)

            # ---- evaluate the greedy policy argmax_a pi(a|s) (timed separately)
            if step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0):
                tick = time.perf_counter()
                if batch is not None:
                    last = _diagnostics(agent, batch, losses)
                result = evaluate_and_record(
                    policy,
                    make_env,
                    step,
                    curve,
                    diagnostics,
                    last,
                    n_episodes=cfg.eval_episodes,
                    seed=cfg.eval_seed,
                    device=device,
                )
                if cfg.keep_best:
                    best.offer(result, step)
                eval_seconds += time.perf_counter() - tick
        env.close()
        if cfg.keep_best:  # the best snapshot, judged on episodes it was not chosen on
            tick = time.perf_counter()
            best.restore()
            result = evaluate(
                policy, make_env, cfg.eval_episodes, seed=cfg.test_seed, device=device
            )
            eval_seconds += time.perf_counter() - tick
        train_seconds = time.perf_counter() - start - eval_seconds
    finally:
        torch.set_num_threads(previous_threads)
    return DiscreteSACResult(
        policy=policy,
        q_net=q_net,
        q_target=q_target,
        alpha=agent.alpha,
        target_entropy=agent.target_entropy,
        config=cfg,
        curve=curve,
        final_eval=result,
        diagnostics=diagnostics,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        total_steps=int(total_steps),
        best_step=best.step,
    )


def _diagnostics(agent: DiscreteSACAgent, batch: Batch, losses: object) -> dict[str, float]:
    """Losses returned by the update, and entropy, alpha, mean min-Q after it, on ``batch``."""
    with torch.no_grad():
        probs, log_probs = agent.policy.probs_and_log_probs(batch.obs)
        q_min = torch.min(*agent.q_net(batch.obs))
    if isinstance(losses, (tuple, list)) and len(losses) == 3:
        q_loss, policy_loss, alpha_loss = (float(x) for x in losses)
    else:
        q_loss = policy_loss = alpha_loss = np.nan
    return {
        "q_loss": q_loss,
        "policy_loss": policy_loss,
        "alpha_loss": alpha_loss,
        "entropy": float(-(probs * log_probs).sum(-1).mean()),
        "alpha": agent.alpha,
        "q_mean": q_min.mean().item(),
    }
