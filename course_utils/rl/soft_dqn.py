"""Soft DQN (slides: "Soft DQN") and, with the same code, DQN, on a discrete-action task.

Reads top to bottom: hyper-parameters, then one loop that acts, stores the transition, takes a
gradient step on the soft Bellman error and periodically copies the target network:

    take a ~ pi(.|s) = exp((Q_phi(s, .) - V(s)) / alpha), store (s, a, r, s', terminated) in D
    sample a mini-batch from D
    y = r + gamma (1 - terminated) alpha log sum_a' exp(Q_phi'(s', a') / alpha)   (target net phi')
    phi <- phi - lr grad_phi 1/2 (Q_phi(s, a) - y)^2
    every N steps: phi' <- phi

``alpha = 0`` turns this into DQN: hard max in the target and epsilon-greedy exploration
(a Boltzmann policy with alpha = 0 would never explore), with everything else unchanged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from ..runtime import configure_threads, get_device, seed_everything
from .buffer import Batch, ReplayBuffer, relabel
from .evaluation import (
    BestSnapshot,
    LearningCurve,
    TrainingRun,
    env_factory,
    evaluate,
    evaluate_and_record,
)
from .losses import boltzmann_probs, polyak_update, q_learning_loss, soft_q_target
from .networks import BoltzmannPolicy, QNetwork

__all__ = ["SoftDQNConfig", "SoftDQNResult", "soft_dqn_update", "train_dqn", "train_soft_dqn"]

# update(q_net, target_net, optimizer, batch, gamma, alpha, huber) -> the loss before the step
Update = Callable[
    [torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, Batch, float, float, bool], object
]


def soft_dqn_update(
    q_net: torch.nn.Module,
    target_net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    gamma: float,
    alpha: float,
    huber: bool = True,
) -> torch.Tensor:
    """One gradient step of soft DQN on a mini-batch (the reference of Exercise 6.4).

    y = r + gamma (1 - terminated) alpha logsumexp(Q_phi'(s', .) / alpha) from the target network
    (``alpha = 0``: the hard max), Q_phi(s, a) of the taken actions, the Huber (``huber``) or half
    squared error averaged over the batch, then zero_grad, backward and one optimizer step on
    ``q_net``. Returns the loss before the step (0-d, detached).
    """
    with torch.no_grad():
        next_q = target_net(batch.next_obs)  # Q_phi'(s', .): (B, n_actions)
        target = soft_q_target(next_q, batch.rewards, batch.terminated, gamma, alpha)
    q = q_net(batch.obs)  # (B, n_actions)
    q_taken = q.gather(1, batch.actions.unsqueeze(1)).squeeze(1)  # Q(s, a): (B,)
    loss = q_learning_loss(q_taken, target, huber=huber)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass
class SoftDQNConfig:
    """Hyper-parameters of soft DQN / DQN (defaults: tuned on CartPole-v1, see benchmarks/)."""

    gamma: float = 0.99
    learning_rate: float = 1e-3
    final_learning_rate: float | None = 0.0  # linear decay to this over the run (None: constant)
    batch_size: int = 128
    buffer_size: int = 50_000
    learning_starts: int = 1_000  # uniformly random actions before the first update
    train_every: int = 1  # env steps per gradient step
    target_update_every: int = 100  # env steps between target updates ...
    tau: float = 1.0  # ... phi' <- (1 - tau) phi' + tau phi (1.0: copy)
    hidden_sizes: tuple[int, ...] = (64, 64)
    huber: bool = True  # Huber instead of squared Bellman error (less sensitive to outliers)
    # DQN (alpha = 0) only: epsilon decays linearly from start to end over a fraction of the run
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_fraction: float = 0.2
    # evaluation: greedy policy, eval_episodes episodes seeded eval_seed, eval_seed + 1, ...
    eval_every: int | None = 2_500  # None: evaluate only at the end
    eval_episodes: int = 10
    eval_seed: int = 10_000
    # keep_best: return the Q-network of the best evaluation (ties: the later one) instead of the
    # last one, and re-evaluate it on held-out episodes seeded test_seed, test_seed + 1, ... (the
    # evaluations chose it, so their own returns would flatter it). Training is unchanged.
    keep_best: bool = False
    test_seed: int = 20_000
    num_threads: int | None = 1  # torch threads while training (None: course default)


@dataclass(kw_only=True)
class SoftDQNResult(TrainingRun):
    """What :func:`train_soft_dqn` returns.

    ``curve`` holds the greedy evaluation returns during training and ``final_eval`` the last
    one (at ``total_steps``). ``diagnostics[name][k]`` is measured on the last mini-batch
    before ``curve.steps[k]``: "loss" (before that update), "entropy" (mean entropy of pi(.|s),
    nats) and "q_mean" (both after that update).
    ``train_seconds`` counts acting and learning, ``eval_seconds`` the evaluations.
    With ``config.keep_best``, ``q_net`` and ``policy`` are the snapshot of the best evaluation
    (at ``best_step``) and ``final_eval`` is its return on the held-out episodes; the curve still
    shows every evaluation, the last one included.
    """

    q_net: QNetwork
    policy: BoltzmannPolicy
    alpha: float
    config: SoftDQNConfig
    best_step: int | None = None


def train_soft_dqn(
    env_id: str | Callable[[], gym.Env] = "CartPole-v1",
    total_steps: int = 30_000,
    seed: int = 0,
    alpha: float = 0.3,
    config: SoftDQNConfig | None = None,
    progress: bool = True,
    reward_fn: Callable[[Batch], torch.Tensor] | None = None,
    callback: Callable[[int, ReplayBuffer, object], None] | None = None,
    *,
    update: Update | None = None,
) -> SoftDQNResult:
    """Train soft DQN with temperature ``alpha`` (``alpha = 0``: DQN) for ``total_steps`` env steps.

    Deterministic on CPU for a given seed (torch, numpy, the environment and the replay
    buffer are all seeded from it).

    Hooks for learned rewards (chapters 09-10; both default to None, the plain algorithm):

    * ``env_id`` may be a function that makes the environment (custom envs, wrappers).
    * ``reward_fn(batch) -> rewards (B,)`` replaces the environment's rewards of every sampled
      mini-batch before the critic target is formed (a learned reward r_psi(s, a, s')). It is
      called under ``torch.no_grad()``: no gradient flows from the policy update into it.
      Evaluation still reports the environment's (true) return.
    * ``callback(step, buffer, policy)`` runs after every environment step and learning step,
      e.g. to update a discriminator on ``buffer.latest(n)``.

    ``update(q_net, target_net, optimizer, batch, gamma, alpha, huber)`` replaces the gradient
    step (default :func:`soft_dqn_update`; chapter 06's students plug in their own): it takes
    one optimizer step on ``q_net`` and returns the loss (a number or 0-d tensor). The loop
    still sets the learning rate, refreshes the target network and evaluates.
    """
    step_fn = soft_dqn_update if update is None else update
    if not callable(step_fn):
        raise TypeError(f"update must be a function, got {type(step_fn).__name__}")
    cfg = config or SoftDQNConfig()
    hard = alpha == 0
    previous_threads = torch.get_num_threads()
    seed_everything(seed)
    configure_threads(cfg.num_threads)
    device = get_device()
    try:
        make_env = env_factory(env_id)
        env = make_env()
        assert isinstance(env.action_space, gym.spaces.Discrete), "soft DQN needs discrete actions"
        obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)

        q_net = QNetwork(obs_dim, n_actions, cfg.hidden_sizes).to(device)
        target_net = copy.deepcopy(q_net).requires_grad_(False)  # Q_phi'
        policy = BoltzmannPolicy(q_net, alpha)
        # fused=True: one kernel updates all parameters (much less overhead on a CPU)
        optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate, fused=True)
        buffer = ReplayBuffer.for_env(env, cfg.buffer_size, device=device, seed=seed)
        rng = np.random.default_rng(seed)  # epsilon-greedy coin flips
        env.action_space.seed(seed)

        curve, diagnostics = LearningCurve(), {"loss": [], "entropy": [], "q_mean": []}
        last = {"loss": np.nan, "entropy": np.nan, "q_mean": np.nan}
        batch = loss = None  # the last update's mini-batch and loss, for the diagnostics
        best = BestSnapshot(q_net)  # keep_best: the Q-network of the best evaluation
        eval_seconds, start = 0.0, time.perf_counter()
        obs, _ = env.reset(seed=seed)
        for step in tqdm(range(1, total_steps + 1), disable=not progress, desc=_name(alpha)):
            # ---- act: random warm-up, then epsilon-greedy (DQN) or pi = exp((Q - V) / alpha)
            warm_up = step <= cfg.learning_starts
            if warm_up or (hard and rng.random() < _epsilon(cfg, step, total_steps)):
                action = int(env.action_space.sample())
            else:
                obs_t = torch.as_tensor(obs, device=device).unsqueeze(0)  # (1, obs_dim)
                action = int(policy.act(obs_t, deterministic=hard))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated)  # truncated: still bootstrap
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()

            # ---- learn: one gradient step on the (soft) Bellman error
            if step > cfg.learning_starts and step % cfg.train_every == 0:
                if cfg.final_learning_rate is not None:  # linear decay: settles the final policy
                    fraction = (step - cfg.learning_starts) / (total_steps - cfg.learning_starts)
                    lr0, lr1 = cfg.learning_rate, cfg.final_learning_rate
                    optimizer.param_groups[0]["lr"] = lr0 + fraction * (lr1 - lr0)
                batch = buffer.sample(cfg.batch_size)
                if reward_fn is not None:
                    batch = relabel(batch, reward_fn)
                loss = step_fn(q_net, target_net, optimizer, batch, cfg.gamma, alpha, cfg.huber)
            if step % cfg.target_update_every == 0:
                polyak_update(target_net, q_net, cfg.tau)

            if callback is not None:
                callback(step, buffer, policy)

            # ---- evaluate the greedy policy (timed separately)
            if step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0):
                tick = time.perf_counter()
                if batch is not None:
                    with torch.no_grad():
                        q = q_net(batch.obs)  # after the last update, on its mini-batch
                    last = _diagnostics(q, loss, alpha)
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
    return SoftDQNResult(
        q_net=q_net,
        policy=policy,
        alpha=float(alpha),
        config=cfg,
        curve=curve,
        final_eval=result,
        diagnostics=diagnostics,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        total_steps=total_steps,
        best_step=best.step,
    )


def train_dqn(
    env_id: str | Callable[[], gym.Env] = "CartPole-v1",
    total_steps: int = 30_000,
    seed: int = 0,
    config: SoftDQNConfig | None = None,
    progress: bool = True,
    reward_fn: Callable[[Batch], torch.Tensor] | None = None,
    callback: Callable[[int, ReplayBuffer, object], None] | None = None,
    *,
    update: Update | None = None,
) -> SoftDQNResult:
    """DQN: :func:`train_soft_dqn` with ``alpha = 0`` (hard max target, epsilon-greedy)."""
    return train_soft_dqn(
        env_id,
        total_steps,
        seed,
        alpha=0.0,
        config=config,
        progress=progress,
        reward_fn=reward_fn,
        callback=callback,
        update=update,
    )


def _epsilon(cfg: SoftDQNConfig, step: int, total_steps: int) -> float:
    """Linear decay from epsilon_start to epsilon_end over epsilon_fraction * total_steps."""
    progress = min(1.0, step / max(1.0, cfg.epsilon_fraction * total_steps))
    return cfg.epsilon_start + progress * (cfg.epsilon_end - cfg.epsilon_start)


def _diagnostics(q: torch.Tensor, loss: object, alpha: float) -> dict[str, float]:
    """Loss, mean policy entropy and mean Q on one mini-batch (q: (B, n_actions))."""
    if alpha == 0:
        entropy = 0.0  # the greedy policy is deterministic
    else:
        probs = boltzmann_probs(q, alpha)
        entropy = float(-(probs * torch.log(probs.clamp_min(1e-30))).sum(-1).mean())
    if not isinstance(loss, (int, float, torch.Tensor)) or torch.as_tensor(loss).numel() != 1:
        raise TypeError(
            f"the update must return the loss as a number or a 0-d tensor, got {type(loss).__name__}"
        )
    return {"loss": float(loss), "entropy": entropy, "q_mean": q.mean().item()}


def _name(alpha: float) -> str:
    return "DQN" if alpha == 0 else f"soft DQN (alpha={alpha:g})"
