"""Soft Actor-Critic on a continuous-action task, in the slides' two flavours.

``variant="v"`` is the slides' Algorithm 1 (Haarnoja et al., 2018a): a state-value network
V_psi with a Polyak-averaged target V_psibar, twin critics Q_theta1, Q_theta2, a reparameterised
tanh-Gaussian policy pi_phi, and a fixed temperature alpha. Per environment step:

    a_t ~ pi_phi(.|s_t), s_{t+1} ~ p(.|s_t, a_t), D <- D u {(s_t, a_t, r_t, s_{t+1}, terminated)}
    psi     <- psi - lr grad J_V(psi)          V_psi(s) -> min_i Q_theta_i(s, a~) - alpha log pi
    theta_i <- theta_i - lr grad J_Q(theta_i)  Q_theta_i(s, a) -> r + gamma (1 - term.) V_psibar(s')
    phi     <- phi - lr grad J_pi(phi)         minimise alpha log pi(a~|s) - min_i Q_theta_i(s, a~)
    psibar  <- tau psi + (1 - tau) psibar

``variant="auto_alpha"`` is the later version (Haarnoja et al., 2018b, "SAC algorithms and
applications"): no V network; the critics' target uses Polyak-averaged copies of the critics,
V(s') ~ min_i Q_thetabar_i(s', a') - alpha log pi(a'|s') with a' ~ pi(.|s'), and alpha is learned
by minimising J(alpha) = E[-alpha (log pi(a~|s) + H_target)] with H_target = -dim(A).

``variant="no_v"`` sits between the two: the critics' target of "auto_alpha" (no V network,
target critics) with the fixed alpha of "v", so that each change can be compared on its own.
``SACConfig(twin_q=False)`` uses the first critic alone where the others take min_i Q_theta_i
(the second critic is still trained, but never read), to measure what the minimum buys.

All losses of one gradient step are computed from the same parameters (as in the original
implementation), so the order of the optimizer steps does not matter. Variant "v"'s step is
:func:`sac_update`, on a :class:`SACAgent` (the networks and their optimizers); ``train_sac``
accepts another function with its interface (``update=``), e.g. the one chapter 07's students
write.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from ..runtime import configure_threads, get_device, seed_everything
from .buffer import Batch, ReplayBuffer, relabel
from .evaluation import LearningCurve, TrainingRun, env_factory, evaluate_and_record
from .losses import (
    polyak_update,
    sac_policy_loss,
    sac_q_loss,
    sac_value_loss,
    sac_value_target,
    temperature_loss,
)
from .networks import SquashedGaussianPolicy, TwinQNetwork, ValueNetwork

__all__ = [
    "SACAgent",
    "SACConfig",
    "SACResult",
    "critic_and_actor_losses",
    "sac_update",
    "target_critics_value",
    "train_sac",
]

Variant = Literal["v", "no_v", "auto_alpha"]
VARIANTS = ("v", "no_v", "auto_alpha")
Sampler = Callable[[SquashedGaussianPolicy, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class SACConfig:
    """Hyper-parameters of SAC (defaults: tuned on Pendulum-v1, see benchmarks/)."""

    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target network(s)
    learning_rate: float = 1e-3  # for pi, Q, V and alpha
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1_000  # uniformly random actions before the first update
    hidden_sizes: tuple[int, ...] = (64, 64)
    alpha: float = 0.1  # temperature of variants "v", "no_v"; the initial value for "auto_alpha"
    twin_q: bool = True  # False: Q_theta1 alone where the targets and J_pi take min_i Q_theta_i
    target_entropy: float | None = None  # "auto_alpha" only; None: -dim(A)
    # evaluation: mean action, eval_episodes episodes seeded eval_seed, eval_seed + 1, ...
    eval_every: int | None = 1_000  # None: evaluate only at the end
    eval_episodes: int = 10
    eval_seed: int = 10_000
    num_threads: int | None = 1  # torch threads while training (None: course default)


@dataclass(kw_only=True)
class SACResult(TrainingRun):
    """What :func:`train_sac` returns.

    ``value_net``/``value_target`` exist for variant "v", ``q_target`` for the others.
    ``curve`` holds the deterministic (mean-action) evaluation returns during training and
    ``final_eval`` the last one. ``diagnostics[name][k]`` is measured on the last mini-batch
    before ``curve.steps[k]``: "q_loss", "policy_loss", "entropy" (-mean log pi) and "alpha".
    ``train_seconds`` counts acting and learning, ``eval_seconds`` the evaluations.
    """

    policy: SquashedGaussianPolicy
    q_net: TwinQNetwork
    value_net: ValueNetwork | None
    value_target: ValueNetwork | None
    q_target: TwinQNetwork | None
    alpha: float
    variant: str
    config: SACConfig


def policy_sample(
    policy: SquashedGaussianPolicy, obs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh reparameterised actions a~ = f_phi(eps; s) (B, act_dim) and log pi(a~|s) (B,)."""
    return policy(obs)


@dataclass
class SACAgent:
    """The networks of SAC's Algorithm 1 and their optimizers, as one update step sees them.

    ``policy`` pi_phi, ``q_net`` (Q_theta1, Q_theta2): ``q_net(obs, actions) -> (q1, q2)``, each
    (B,); ``value_net`` V_psi and ``value_target`` V_psibar: ``(B, obs_dim) -> (B,)``;
    ``policy_opt``, ``q_opt``, ``value_opt`` optimise phi, theta and psi (V_psibar has none: it
    moves by Polyak averaging only). ``sample(obs)`` draws fresh reparameterised actions a~ and
    their log pi(a~|s) with ``sampler(policy, obs)`` (by default the policy's own forward pass).
    """

    policy: SquashedGaussianPolicy
    q_net: TwinQNetwork
    value_net: ValueNetwork
    value_target: ValueNetwork
    policy_opt: torch.optim.Optimizer
    q_opt: torch.optim.Optimizer
    value_opt: torch.optim.Optimizer
    sampler: Sampler = policy_sample

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh reparameterised actions a~ (B, act_dim) at ``obs`` and log pi(a~|s) (B,)."""
        return self.sampler(self.policy, obs)


def sac_update(
    agent: SACAgent, batch: Batch, alpha: float, gamma: float, tau: float
) -> tuple[float, float, float]:
    """One gradient step of Algorithm 1 on ``batch``; returns (J_Q, J_V, J_pi) as floats.

    J_Q trains theta towards r + gamma (1 - terminated) V_psibar(s'); J_V trains psi towards
    min_i Q_theta_i(s, a~) - alpha log pi(a~|s); J_pi trains phi (a~ reparameterised, the critics
    frozen); all three from the same parameters, then psibar <- tau psi + (1 - tau) psibar.
    """
    return _update_v(agent, batch, alpha, gamma, tau)[:3]


def _update_v(agent: SACAgent, batch: Batch, alpha: float, gamma: float, tau: float, twin=True):
    with torch.no_grad():
        next_value = agent.value_target(batch.next_obs)  # V_psibar(s'), (B,)
    q_loss, policy_loss, log_probs, (q1_new, q2_new) = critic_and_actor_losses(
        agent.policy, agent.q_net, batch, next_value, alpha, gamma, sample=agent.sample, twin=twin
    )
    v = agent.value_net(batch.obs)  # (B,)
    value_loss = sac_value_loss(v, q1_new, q2_new, log_probs, alpha)
    updates = [
        (agent.q_opt, q_loss),
        (agent.policy_opt, policy_loss),
        (agent.value_opt, value_loss),
    ]
    # every backward pass before any step: all losses see the same parameters
    for optimizer, loss in updates:
        optimizer.zero_grad()
        loss.backward()
    for optimizer, _ in updates:
        optimizer.step()
    polyak_update(agent.value_target, agent.value_net, tau)
    return q_loss.item(), value_loss.item(), policy_loss.item(), log_probs


def train_sac(
    env_id: str | Callable[[], gym.Env] = "Pendulum-v1",
    total_steps: int = 15_000,
    seed: int = 0,
    variant: Variant = "v",
    config: SACConfig | None = None,
    progress: bool = True,
    reward_fn: Callable[[Batch], torch.Tensor] | None = None,
    callback: Callable[[int, ReplayBuffer, object], None] | None = None,
    *,
    update: Callable[[SACAgent, Batch, float, float, float], object] | None = None,
    sampler: Sampler | None = None,
    probe: Callable[[dict[str, torch.nn.Module], float], dict[str, float]] | None = None,
) -> SACResult:
    """Train SAC (``variant`` "v", "no_v" or "auto_alpha", see the module docstring) for ``total_steps``.

    Deterministic on CPU for a given seed.

    Hooks for learned rewards (chapters 09-10; both default to None, the plain algorithm):

    * ``env_id`` may be a function that makes the environment (custom envs, wrappers).
    * ``reward_fn(batch) -> rewards (B,)`` replaces the environment's rewards of every sampled
      mini-batch before the critic target is formed (a learned reward r_psi(s, a, s')). It is
      called under ``torch.no_grad()``: no gradient flows from the policy update into it.
      Evaluation still reports the environment's (true) return.
    * ``callback(step, buffer, policy)`` runs after every environment step and learning step,
      e.g. to update a discriminator on ``buffer.latest(n)``.

    Hooks for the update step (variant "v" only; chapter 07's exercise):

    * ``update(agent, batch, alpha, gamma, tau)`` replaces :func:`sac_update`: one gradient
      step on a :class:`SACAgent` and a mini-batch. If it returns three numbers (J_Q, J_V, J_pi),
      the first and the last are recorded as "q_loss" and "policy_loss".
    * ``sampler(policy, obs) -> (actions, log_probs)`` draws the fresh actions of
      ``agent.sample`` (default: the policy's forward pass).

    ``probe(networks, alpha) -> {name: value}`` runs at every evaluation point (after the warm-up)
    with the networks by name ("policy", "q_net", and "value_net" or "q_target"); its values
    are recorded in ``diagnostics[name]`` (e.g. the critics' over-estimation, chapter 07). It is
    timed with the evaluations and must not touch the global random generators.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if (update is not None or sampler is not None) and variant != "v":
        raise ValueError("update= and sampler= need variant='v' (the step of Algorithm 1)")
    if update is not None and not callable(update):
        raise TypeError(f"update must be a function, got {type(update).__name__}")
    cfg = config or SACConfig()
    previous_threads = torch.get_num_threads()
    seed_everything(seed)
    configure_threads(cfg.num_threads)
    device = get_device()
    try:
        make_env = env_factory(env_id)
        env = make_env()
        assert isinstance(env.action_space, gym.spaces.Box), "SAC needs continuous actions"
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        low, high = env.action_space.low, env.action_space.high

        policy = SquashedGaussianPolicy(obs_dim, act_dim, low, high, cfg.hidden_sizes).to(device)
        q_net = TwinQNetwork(obs_dim, act_dim, cfg.hidden_sizes).to(device)
        q_opt = torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate, fused=True)
        policy_opt = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, fused=True)
        value_net = value_target = q_target = None
        if variant == "v":
            value_net = ValueNetwork(obs_dim, cfg.hidden_sizes).to(device)
            value_target = copy.deepcopy(value_net).requires_grad_(False)  # V_psibar
            value_opt = torch.optim.Adam(value_net.parameters(), lr=cfg.learning_rate, fused=True)
            agent = SACAgent(policy, q_net, value_net, value_target, policy_opt, q_opt, value_opt)
            if sampler is not None:
                agent.sampler = sampler
        else:
            q_target = copy.deepcopy(q_net).requires_grad_(False)  # Q_thetabar_1, Q_thetabar_2
        log_alpha = torch.tensor(np.log(cfg.alpha), dtype=torch.float32, device=device)
        if variant == "auto_alpha":
            log_alpha.requires_grad_(True)
            alpha_opt = torch.optim.Adam([log_alpha], lr=cfg.learning_rate, fused=True)
            target_entropy = -float(act_dim) if cfg.target_entropy is None else cfg.target_entropy
        alpha = float(cfg.alpha)
        buffer = ReplayBuffer.for_env(env, cfg.buffer_size, device=device, seed=seed)
        env.action_space.seed(seed)

        curve = LearningCurve()
        names = ("q_loss", "policy_loss", "entropy", "alpha")
        diagnostics: dict[str, list[float]] = {name: [] for name in names}
        last = dict.fromkeys(names, np.nan)
        eval_seconds, start = 0.0, time.perf_counter()
        q_loss = policy_loss = np.nan
        log_probs = None
        obs, _ = env.reset(seed=seed)
        for step in tqdm(range(1, total_steps + 1), disable=not progress, desc=f"SAC ({variant})"):
            # ---- act: random warm-up, then a ~ pi(.|s)
            if step <= cfg.learning_starts:
                action = env.action_space.sample()
            else:
                obs_t = torch.as_tensor(obs, device=device).unsqueeze(0)  # (1, obs_dim)
                action = policy.act(obs_t, deterministic=False)[0].cpu().numpy()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated)  # truncated: still bootstrap
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()
            # ---- learn: one gradient step on each loss
            if step > cfg.learning_starts:
                batch = buffer.sample(cfg.batch_size)
                if reward_fn is not None:
                    batch = relabel(batch, reward_fn)
                if variant == "v":
                    if update is None:
                        q_loss, _, policy_loss, log_probs = _update_v(
                            agent, batch, alpha, cfg.gamma, cfg.tau, twin=cfg.twin_q
                        )
                    else:
                        losses = update(agent, batch, alpha, cfg.gamma, cfg.tau)
                        q_loss, policy_loss = _first_and_last(losses)
                else:
                    # critic target r + gamma (1 - terminated) V(s'), V from the target critics
                    next_value = target_critics_value(
                        policy, q_target, batch.next_obs, alpha, twin=cfg.twin_q
                    )
                    # J_Q, and J_pi with fresh reparameterised actions a~ (shared by J(alpha))
                    q_loss_t, policy_loss_t, log_probs, _ = critic_and_actor_losses(
                        policy, q_net, batch, next_value, alpha, cfg.gamma, twin=cfg.twin_q
                    )
                    updates = [(q_opt, q_loss_t), (policy_opt, policy_loss_t)]
                    if variant == "auto_alpha":
                        alpha_loss = temperature_loss(log_alpha, log_probs, target_entropy)
                        updates.append((alpha_opt, alpha_loss))
                    # every backward pass before any step: all losses see the same parameters
                    for optimizer, loss in updates:
                        optimizer.zero_grad()
                        loss.backward()
                    for optimizer, _ in updates:
                        optimizer.step()
                    polyak_update(q_target, q_net, cfg.tau)
                    if variant == "auto_alpha":
                        alpha = log_alpha.exp().item()
                    q_loss, policy_loss = q_loss_t.item(), policy_loss_t.item()

            if callback is not None:
                callback(step, buffer, policy)

            # ---- evaluate the mean action (timed separately)
            if step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0):
                tick = time.perf_counter()
                if step > cfg.learning_starts:
                    last = {
                        "q_loss": q_loss,
                        "policy_loss": policy_loss,
                        "entropy": np.nan if log_probs is None else -log_probs.mean().item(),
                        "alpha": alpha,
                    }
                    if probe is not None:
                        networks = {"policy": policy, "q_net": q_net}
                        networks.update(
                            {"value_net": value_net} if variant == "v" else {"q_target": q_target}
                        )
                        last.update(probe(networks, alpha))
                        for name in last:
                            diagnostics.setdefault(name, [np.nan] * len(curve.steps))
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
                eval_seconds += time.perf_counter() - tick
        env.close()
        train_seconds = time.perf_counter() - start - eval_seconds
    finally:
        torch.set_num_threads(previous_threads)
    return SACResult(
        policy=policy,
        q_net=q_net,
        value_net=value_net,
        value_target=value_target,
        q_target=q_target,
        alpha=alpha,
        variant=variant,
        config=cfg,
        curve=curve,
        final_eval=result,
        diagnostics=diagnostics,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        total_steps=total_steps,
    )


def _first_and_last(losses) -> tuple[float, float]:
    """(J_Q, J_pi) from what an ``update=`` hook returned, NaN where it returned none."""
    if isinstance(losses, (tuple, list)) and len(losses) == 3:
        return float(losses[0]), float(losses[2])
    return np.nan, np.nan


def _critics(q1: torch.Tensor, q2: torch.Tensor, twin: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Both critics, or the first twice: min(q1, q1) = q1 (a single critic)."""
    return (q1, q2) if twin else (q1, q1)


def target_critics_value(
    policy: SquashedGaussianPolicy,
    q_target: TwinQNetwork,
    next_obs: torch.Tensor,
    alpha: float,
    twin: bool = True,
) -> torch.Tensor:
    """V(s') = min_i Q_thetabar_i(s', a') - alpha log pi(a'|s') with a' ~ pi(.|s'), shape (B,), no gradient.

    ``twin=False``: Q_thetabar_1(s', a') alone instead of the minimum.
    """
    with torch.no_grad():
        next_actions, next_log_probs = policy(next_obs)
        next_q1, next_q2 = _critics(*q_target(next_obs, next_actions), twin)
        return sac_value_target(next_q1, next_q2, next_log_probs, alpha)


def critic_and_actor_losses(
    policy: SquashedGaussianPolicy,
    q_net: TwinQNetwork,
    batch: Batch,
    next_value: torch.Tensor,
    alpha: float,
    gamma: float,
    sample: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    twin: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """J_Q(theta) on ``batch`` against the target r + gamma (1 - terminated) ``next_value``, and
    J_pi(phi) with fresh reparameterised actions a~ = f_phi(eps; s) (no gradient into theta).

    Returns (q_loss, policy_loss, log pi(a~|s) (B,), (Q_theta1(s, a~), Q_theta2(s, a~))); the last
    two are what J_V and J(alpha) need. ``sample(obs)`` draws a~ (default: ``policy(obs)``);
    ``twin=False`` reads Q_theta1 alone where J_pi (and J_V) take the minimum (both critics are
    still trained by J_Q; the second is returned as a copy of the first).
    """
    q1, q2 = q_net(batch.obs, batch.actions)  # (B,), (B,)
    q_loss = sac_q_loss(q1, q2, batch.rewards, batch.terminated, next_value, gamma)
    new_actions, log_probs = (sample or policy)(batch.obs)  # (B, act_dim), (B,)
    q_net.requires_grad_(False)  # J_pi trains pi only: no gradient into theta
    q1_new, q2_new = _critics(*q_net(batch.obs, new_actions), twin)
    q_net.requires_grad_(True)
    policy_loss = sac_policy_loss(log_probs, q1_new, q2_new, alpha)
    return q_loss, policy_loss, log_probs, (q1_new, q2_new)
