"""Inverse soft-Q learning (IQ-Learn; Garg, Chakraborty, Cundy, Song & Ermon, 2021), chapter 11.

Imitation without a discriminator and without a separate reward network: learn ONE soft Q function
from expert transitions; the reward it implies is read back through the soft Bellman equation,

    r_Q(s, a, s') = Q(s, a) - gamma (1 - terminated) V(s'),                      (:func:`recovered_reward`)

with V(s) = alpha log sum_a exp(Q(s, a) / alpha) for discrete actions (the Boltzmann policy of
chapter 06) or V(s) = E_{a~pi}[Q(s, a) - alpha log pi(a|s)] with a SAC actor pi for continuous ones
(chapter 07). The inverse RL problem max_r min_pi becomes a concave maximisation over Q alone
(the paper's Theorem 3.2); with the chi^2 regulariser psi(r) the paper recommends for imitation,
the loss we *minimise* is (:func:`iq_loss`)

    L(Q) = - E_{rho_E}[r_Q]                           (expert transitions should earn a high reward)
           + E_{rho}[V(s) - gamma (1 - terminated) V(s')]      (= (1 - gamma) E_{p0}[V(s0)], telescoped)
           + 1 / (4 chi2_alpha) E[r_Q^2]                   (the chi^2 regulariser on the implied reward)

The second term is the paper's (1 - gamma) E_{p0}[V(s0)] rewritten as a telescoping sum, which holds
for the state occupancy rho of *any* policy. Which rho, and where the chi^2 term is averaged, is
the difference between the paper's two versions:

* **offline** (``IQLearnConfig(online=False)``, the default for discrete actions): expert transitions
  only, rho = rho_E, and the chi^2 term on the expert's rewards. No environment step is taken;
  ``total_steps`` counts gradient steps. With rho = rho_E the first two terms add up to
  E_E[V(s) - Q(s, a)] = -alpha E_E[log pi_Q(a|s)]: behaviour cloning of the Boltzmann policy of Q,
  with the chi^2 term keeping the implied rewards small (without it, Q could grow without bound).
* **online** (``online=True``, the default for continuous actions): the agent acts with its policy,
  stores its transitions in a replay buffer (their environment rewards are never read), and each
  gradient step uses a mini-batch of expert transitions and one of policy transitions; the
  telescoped V term and the chi^2 term are averaged over both (the paper's "chi^2 on rho_mix",
  its recommended online setting), the -E[r_Q] term over the expert half only. For continuous
  actions the actor takes a SAC policy step on Q (chapter 07's J_pi) after every critic step.
  ``target_tau`` takes V(s') from a slowly moving (Polyak) copy of Q, as the authors' code does
  online; on Pendulum that is what makes the imitation reliable (benchmarks/iq_learn.py).

Terminal states: V(s') = 0 where ``terminated`` (a time-out still bootstraps), as everywhere in the
course. :func:`train_iq_learn` is the training loop; its ``update=`` hook replaces one gradient
step of the IQ loss (the reference is :func:`iq_update`), as ``train_soft_dqn(update=)`` does for
chapter 06's exercise.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .rl import (
    Batch,
    BoltzmannPolicy,
    QNetwork,
    ReplayBuffer,
    SquashedGaussianPolicy,
    TwinQNetwork,
    mlp,
)
from .rl.evaluation import LearningCurve, TrainingRun, env_factory, evaluate_and_record
from .rl.losses import soft_value
from .runtime import configure_threads, get_device, seed_everything

__all__ = [
    "IQCritic",
    "IQLearnConfig",
    "IQLearnResult",
    "iq_loss",
    "iq_update",
    "recovered_reward",
    "train_iq_learn",
]


# ------------------------------------------------------------------------------ the formulas


def _check_vector(name: str, x, size: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), got {tuple(x.shape)}")
    if size is not None and x.shape[0] != size:
        raise ValueError(f"{name} has {x.shape[0]} entries, expected {size} (one per transition)")
    if not torch.isfinite(x.float()).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def recovered_reward(
    q: torch.Tensor, next_v: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The reward a soft Q function implies: r = Q(s, a) - gamma (1 - terminated) V(s'), shape (B,).

    q: Q(s, a) of the transitions (B,); next_v: V(s') (B,); terminated: 1.0 where s' ends the task.
    The inverse of the soft Bellman backup Q = r + gamma E[V(s')] (one sample of s').
    """
    q = _check_vector("q", q)
    _check_vector("next_v", next_v, q.shape[0])
    _check_vector("terminated", terminated, q.shape[0])
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return q - gamma * (1.0 - terminated) * next_v


def iq_loss(
    q: torch.Tensor,
    v: torch.Tensor,
    next_v: torch.Tensor,
    terminated: torch.Tensor,
    is_expert: torch.Tensor,
    gamma: float,
    chi2_alpha: float = 0.5,
) -> torch.Tensor:
    """The IQ-Learn loss with the chi^2 regulariser (to minimise), a 0-d tensor.

    Per transition i of a mini-batch (all (B,)): q = Q(s_i, a_i), v = V(s_i), next_v = V(s'_i),
    terminated (1.0: V(s') counts as 0), is_expert (bool: an expert transition, else a policy one).

        r_i  = q_i - gamma (1 - terminated_i) next_v_i                   (the implied reward)
        loss = - mean_{expert i} r_i                                     (expert rewards up)
               + mean_{all i} [v_i - gamma (1 - terminated_i) next_v_i]  ((1 - gamma) E[V(s0)], telescoped)
               + 1 / (4 chi2_alpha) mean_{all i} r_i^2                   (chi^2 regulariser)

    Offline, every row is an expert row. Needs at least one expert row.
    """
    r = recovered_reward(q, next_v, terminated, gamma)
    _check_vector("v", v, q.shape[0])
    _check_vector("is_expert", is_expert, q.shape[0])
    if is_expert.dtype != torch.bool:
        raise ValueError(f"is_expert must be a bool tensor, got {is_expert.dtype}")
    if not is_expert.any():
        raise ValueError("is_expert marks no expert transition: the loss needs at least one")
    if chi2_alpha <= 0:
        raise ValueError(f"chi2_alpha must be positive, got {chi2_alpha}")
    expert_term = -r[is_expert].mean()
    value_term = (v - gamma * (1.0 - terminated) * next_v).mean()
    chi2_term = (r**2).mean() / (4.0 * chi2_alpha)
    return expert_term + value_term + chi2_term


# ------------------------------------------------------------------------------ the critic


class IQCritic(nn.Module):
    """The soft Q function of IQ-Learn with its soft value, for discrete or continuous actions.

    Discrete (``actor`` None): ``q_net`` is a :class:`~course_utils.rl.QNetwork` (B, obs_dim) ->
    (B, n_actions); V(s) = alpha logsumexp(Q(s, .) / alpha). Continuous: ``q_net`` maps the
    concatenation (B, obs_dim + act_dim) -> (B, 1), or is a :class:`~course_utils.rl.TwinQNetwork`
    (Q is then the smaller of its two critics), and V(s) = Q(s, a~) - alpha log pi(a~|s) with
    a~ ~ pi(.|s) from ``actor`` (a :class:`~course_utils.rl.SquashedGaussianPolicy`), averaged over
    ``n_samples`` draws; the actor enters V as a fixed sampler (no gradient into it).
    """

    def __init__(self, q_net: nn.Module, alpha: float, actor: SquashedGaussianPolicy | None = None):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be positive (a soft value), got {alpha}")
        self.q_net, self.alpha = q_net, float(alpha)
        self.actor = actor
        self.target_q_net: nn.Module | None = None  # set by train_iq_learn(target_tau=...)
        self.fresh_policy_actions = False  # set by train_iq_learn(fresh_policy_actions=...)

    @property
    def discrete(self) -> bool:
        return self.actor is None

    def q_all(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, .) (B, n_actions), discrete actions only."""
        if not self.discrete:
            raise ValueError("q_all needs discrete actions")
        return self.q_net(obs)

    def q_heads(self, obs: torch.Tensor, actions: torch.Tensor) -> list[torch.Tensor]:
        """Q(s, a) (B,) of the given actions ((B,) int64 or (B, act_dim)), one entry per critic."""
        return self._heads(self.q_net, obs, actions)

    def _heads(self, net: nn.Module, obs: torch.Tensor, actions: torch.Tensor):
        if self.discrete:
            return [net(obs).gather(1, actions.long().unsqueeze(1)).squeeze(1)]
        if isinstance(net, TwinQNetwork):
            return list(net(obs, actions))
        return [net(torch.cat([obs, actions], dim=-1)).squeeze(-1)]

    def q(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q(s, a) (B,); with twin critics the smaller of the two (clipped double Q, chapter 07)."""
        return self._q(self.q_net, obs, actions)

    def _q(self, net: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        heads = self._heads(net, obs, actions)
        return heads[0] if len(heads) == 1 else torch.min(heads[0], heads[1])

    def v(self, obs: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """The soft value V(s) (B,)."""
        return self._v(self.q_net, obs, n_samples)

    def next_v(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s') as the loss uses it: :meth:`v` (with gradient), or, when the critic has a
        Polyak-averaged copy ``target_q_net`` (``IQLearnConfig(target_tau=...)``), V of that copy
        without gradient (the authors' ``use_target``)."""
        if self.target_q_net is None:
            return self.v(obs)
        with torch.no_grad():
            return self._v(self.target_q_net, obs, 1)

    def _v(self, net: nn.Module, obs: torch.Tensor, n_samples: int) -> torch.Tensor:
        if self.discrete:
            return soft_value(net(obs), self.alpha)
        values = []
        for _ in range(n_samples):
            with torch.no_grad():
                actions, log_pi = self.actor(obs)
            values.append(self._q(net, obs, actions) - self.alpha * log_pi)
        return torch.stack(values).mean(0)

    def reward(self, batch: Batch, gamma: float, n_samples: int = 8) -> torch.Tensor:
        """The recovered reward r = Q(s, a) - gamma (1 - terminated) V(s') (B,), without gradient.

        Continuous actions: V(s') from ``n_samples`` actor draws, taken from a private generator
        (seeded 0) so that the reward of a batch is deterministic and the caller's random stream
        is left alone.
        """
        device = batch.obs.device
        with (
            torch.no_grad(),
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        ):
            torch.manual_seed(0)
            next_v = self.v(batch.next_obs, n_samples)
            return recovered_reward(
                self.q(batch.obs, batch.actions), next_v, batch.terminated, gamma
            )


# ------------------------------------------------------------------------------ one update (the hook)


def _concat(expert: Batch, policy: Batch | None) -> tuple[Batch, torch.Tensor]:
    n = expert.obs.shape[0]
    if policy is None:
        return expert, torch.ones(n, dtype=torch.bool, device=expert.obs.device)
    batch = Batch(*(torch.cat([e, p.to(e.dtype)]) for e, p in zip(expert, policy, strict=True)))
    is_expert = torch.zeros(batch.obs.shape[0], dtype=torch.bool, device=expert.obs.device)
    is_expert[:n] = True
    return batch, is_expert


def iq_update(
    critic: IQCritic,
    optimizer: torch.optim.Optimizer,
    expert: Batch,
    policy: Batch | None,
    gamma: float,
    chi2_alpha: float,
) -> torch.Tensor:
    """One gradient step of the critic on :func:`iq_loss` (the reference of ``update=``).

    expert: a mini-batch of expert transitions; policy: one of the agent's own transitions
    (online), or None (offline). Q(s, a), V(s) and V(s') all come from ``critic`` with gradient
    (V(s') included: the loss is a function of Q, the paper's objective, not a bootstrapped target),
    unless the critic carries a Polyak target copy (``critic.target_q_net``, set by
    ``IQLearnConfig(target_tau=...)``): V(s') then comes from that copy, without gradient.
    With ``critic.fresh_policy_actions`` the policy rows' Q (used by the chi^2 term only) is taken
    at actions drawn from the current actor. Twin critics (continuous actions): each is trained
    on its own loss, with V from their minimum.
    Returns the loss before the step (0-d, detached).
    """
    batch, is_expert = _concat(expert, policy)
    v = critic.v(batch.obs)
    next_v = critic.next_v(batch.next_obs)
    heads = critic.q_heads(
        batch.obs, batch.actions
    )  # one Q, or twin critics: the mean of their losses
    if policy is not None and critic.fresh_policy_actions and not critic.discrete:
        # the authors' ``regularize``: the policy rows' Q (it enters the chi^2 term only) at
        # actions drawn afresh from the current actor instead of the replay buffer's old ones
        with torch.no_grad():
            fresh, _ = critic.actor(batch.obs[~is_expert])
        fresh_heads = critic.q_heads(batch.obs[~is_expert], fresh)
        heads = [torch.cat([q[is_expert], qf]) for q, qf in zip(heads, fresh_heads, strict=True)]
    loss = sum(
        iq_loss(q, v, next_v, batch.terminated, is_expert, gamma, chi2_alpha) for q in heads
    ) / len(heads)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


# ------------------------------------------------------------------------------ training


@dataclass
class IQLearnConfig:
    """Hyper-parameters of IQ-Learn (defaults: see benchmarks/iq_learn.py for what was measured).

    ``online=None`` picks offline for discrete and online for continuous actions.
    """

    online: bool | None = None
    gamma: float = 0.99
    alpha: float = 0.01  # temperature of the soft value V (and of the Boltzmann / SAC policy)
    chi2_alpha: float = 0.5  # the regulariser's weight is 1 / (4 chi2_alpha)
    learning_rate: float = 3e-4  # critic
    actor_learning_rate: float = 3e-4  # continuous actions only
    lr_decay: bool = False  # decay both learning rates linearly to 0 over the run (settles the end)
    twin_q: bool = False  # continuous: twin critics, V and the actor from their minimum
    # Polyak rate of a target copy of Q for V(s') (no gradient through V(s')); None: V(s') from Q
    # itself, with gradient (the paper's objective). The authors' code uses 0.005 online.
    target_tau: float | None = None
    # online, continuous: the policy rows' Q in the chi^2 term at fresh actor actions (authors'
    # ``regularize``) instead of the buffer's actions
    fresh_policy_actions: bool = False
    log_std_bounds: tuple[float, float] = (-5.0, 2.0)  # the actor's log sigma (continuous)
    batch_size: int = 128  # expert transitions per step (and as many policy transitions online)
    hidden_sizes: tuple[int, ...] = (64, 64)
    buffer_size: int = 100_000  # online only
    learning_starts: int = 1_000  # online only: random actions before the first update
    n_value_samples: int = 8  # actor draws per V(s') in ``reward_fn`` (continuous)
    # evaluation: greedy / mean action, eval_episodes episodes seeded eval_seed, eval_seed + 1, ...
    eval_every: int | None = (
        1_000  # env steps online, gradient steps offline (None: only at the end)
    )
    eval_episodes: int = 10
    eval_seed: int = 10_000
    num_threads: int | None = 1


@dataclass(kw_only=True)
class IQLearnResult(TrainingRun):
    """What :func:`train_iq_learn` returns.

    ``critic``: the learned :class:`IQCritic` (``critic.q_net`` Q, ``critic.actor`` the SAC actor or
    None); ``policy``: what acts (a :class:`~course_utils.rl.BoltzmannPolicy` of Q, or the actor);
    ``reward_fn(batch) -> (B,)``: the recovered reward r = Q(s, a) - gamma (1 - terminated) V(s'),
    frozen, ready for ``train_sac(reward_fn=)`` / ``train_soft_dqn(reward_fn=)``.
    ``curve``: the TRUE returns (never seen in training) every ``eval_every`` steps;
    ``total_steps``: gradient steps offline, environment steps online (``env_steps`` says which).
    ``diagnostics[name][k]`` at ``curve.steps[k]``, on the last mini-batch: "loss",
    "expert_reward" and "policy_reward" (mean recovered reward of the expert and of the policy
    transitions; NaN offline), "q_mean", "entropy" (of the policy, nats).
    """

    critic: IQCritic
    policy: nn.Module
    reward_fn: Callable[[Batch], torch.Tensor]
    online: bool
    env_steps: int
    config: IQLearnConfig
    buffer: ReplayBuffer | None = None


def _check_expert(expert: Batch, env: gym.Env, discrete: bool) -> None:
    if not isinstance(expert, Batch):
        raise ValueError(
            f"expert must be a Batch of transitions (generate_demonstrations(...).transitions), "
            f"got {type(expert).__name__}"
        )
    n = expert.obs.shape[0]
    if n == 0:
        raise ValueError("expert holds no transition")
    obs_dim = env.observation_space.shape[0]
    if expert.obs.ndim != 2 or expert.obs.shape[1] != obs_dim:
        raise ValueError(
            f"expert.obs must have shape (N, {obs_dim}) for this env, got {tuple(expert.obs.shape)}"
        )
    for name in ("obs", "next_obs", "rewards", "terminated"):
        x = getattr(expert, name)
        if x.shape[0] != n:
            raise ValueError(f"expert.{name} has {x.shape[0]} rows, expert.obs has {n}")
        if not torch.isfinite(x.float()).all():
            raise ValueError(f"expert.{name} contains NaN or infinite values")
    if discrete:
        n_actions = int(env.action_space.n)
        if expert.actions.ndim != 1 or expert.actions.is_floating_point():
            raise ValueError(
                f"discrete actions must be integers of shape (N,), got {expert.actions.dtype} "
                f"{tuple(expert.actions.shape)}"
            )
        if expert.actions.min() < 0 or expert.actions.max() >= n_actions:
            raise ValueError(f"expert actions must lie in 0..{n_actions - 1}")
    else:
        act_dim = env.action_space.shape[0]
        if expert.actions.shape != (n, act_dim):
            raise ValueError(
                f"expert.actions must have shape ({n}, {act_dim}), got {tuple(expert.actions.shape)}"
            )


def train_iq_learn(
    env_id: str | Callable[[], gym.Env],
    expert: Batch,
    total_steps: int,
    seed: int = 0,
    config: IQLearnConfig | None = None,
    progress: bool = False,
    *,
    update: Callable | None = None,
) -> IQLearnResult:
    """Imitate the expert transitions ``expert`` with IQ-Learn; deterministic on CPU for a seed.

    env_id: a gymnasium id or a function making the env (used to act online and to evaluate).
    total_steps: gradient steps (offline) or environment steps (online, one gradient step each
    after ``learning_starts``). The expert's rewards are never read.

    ``update(critic, optimizer, expert, policy, gamma, chi2_alpha) -> loss`` replaces one gradient
    step of the critic on the IQ loss (default :func:`iq_update`): ``expert`` and ``policy`` are
    mini-batches (``policy`` is None offline); it must take one ``optimizer`` step and return the
    loss (a number or 0-d tensor). The loop still samples, steps the actor and evaluates.
    """
    step_fn = iq_update if update is None else update
    if not callable(step_fn):
        raise TypeError(f"update must be a function, got {type(step_fn).__name__}")
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    cfg = config or IQLearnConfig()
    previous_threads = torch.get_num_threads()
    seed_everything(seed)
    configure_threads(cfg.num_threads)
    device = get_device()
    try:
        make_env = env_factory(env_id)
        env = make_env()
        space = env.action_space
        discrete = isinstance(space, gym.spaces.Discrete)
        if not discrete and not isinstance(space, gym.spaces.Box):
            raise ValueError(f"unsupported action space {space}")
        _check_expert(expert, env, discrete)
        online = (not discrete) if cfg.online is None else bool(cfg.online)
        if online and total_steps <= cfg.learning_starts:
            raise ValueError(
                f"online IQ-Learn needs total_steps > learning_starts ({cfg.learning_starts})"
            )
        obs_dim = env.observation_space.shape[0]
        expert = Batch(*(x.to(device) for x in expert))

        if discrete:
            q_net = QNetwork(obs_dim, int(space.n), cfg.hidden_sizes).to(device)
            critic = IQCritic(q_net, cfg.alpha)
            policy: nn.Module = BoltzmannPolicy(q_net, cfg.alpha)
            actor_opt = None
        else:
            act_dim = space.shape[0]
            if cfg.twin_q:
                q_net = TwinQNetwork(obs_dim, act_dim, cfg.hidden_sizes).to(device)
            else:
                q_net = mlp(obs_dim + act_dim, 1, cfg.hidden_sizes).to(device)
            actor = SquashedGaussianPolicy(
                obs_dim, act_dim, space.low, space.high, cfg.hidden_sizes, cfg.log_std_bounds
            ).to(device)
            critic = IQCritic(q_net, cfg.alpha, actor)
            if cfg.target_tau is not None:
                if not 0.0 < cfg.target_tau <= 1.0:
                    raise ValueError(f"target_tau must lie in (0, 1], got {cfg.target_tau}")
                critic.target_q_net = copy.deepcopy(q_net).requires_grad_(False)
            critic.fresh_policy_actions = cfg.fresh_policy_actions
            policy = actor
            actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_learning_rate)
        optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate)
        rng = np.random.default_rng(seed)  # expert mini-batches
        buffer = (
            ReplayBuffer.for_env(env, cfg.buffer_size, device=device, seed=seed) if online else None
        )
        space.seed(seed)

        curve = LearningCurve()
        names = ("loss", "expert_reward", "policy_reward", "q_mean", "entropy")
        diagnostics: dict[str, list[float]] = {name: [] for name in names}
        last = dict.fromkeys(names, np.nan)
        loss, exp_batch, pol_batch = None, None, None
        eval_seconds, start = 0.0, time.perf_counter()
        obs, _ = env.reset(seed=seed)
        desc = f"IQ-Learn ({'online' if online else 'offline'})"
        for step in tqdm(range(1, total_steps + 1), disable=not progress, desc=desc):
            if online:  # ---- act with the current policy, store the transition
                if step <= cfg.learning_starts:
                    action = space.sample()
                else:
                    obs_t = torch.as_tensor(obs, device=device).unsqueeze(0)
                    action = policy.act(obs_t, deterministic=False)[0].cpu().numpy()
                    action = int(action) if discrete else action
                next_obs, reward, terminated, truncated, _ = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated)  # reward: never read
                obs = next_obs
                if terminated or truncated:
                    obs, _ = env.reset()

            if not online or step > cfg.learning_starts:  # ---- learn
                if cfg.lr_decay:
                    first = cfg.learning_starts if online else 0
                    keep = 1.0 - (step - first - 1) / (total_steps - first)
                    optimizer.param_groups[0]["lr"] = keep * cfg.learning_rate
                    if actor_opt is not None:
                        actor_opt.param_groups[0]["lr"] = keep * cfg.actor_learning_rate
                idx = torch.as_tensor(rng.integers(0, expert.obs.shape[0], cfg.batch_size))
                exp_batch = Batch(*(x[idx] for x in expert))
                pol_batch = buffer.sample(cfg.batch_size) if online else None
                loss = step_fn(critic, optimizer, exp_batch, pol_batch, cfg.gamma, cfg.chi2_alpha)
                if critic.target_q_net is not None:
                    with torch.no_grad():
                        for p_targ, p in zip(
                            critic.target_q_net.parameters(), q_net.parameters(), strict=True
                        ):
                            p_targ.lerp_(p, cfg.target_tau)
                if actor_opt is not None:  # SAC's policy step on Q (chapter 07's J_pi)
                    states = (
                        exp_batch.obs
                        if pol_batch is None
                        else torch.cat([exp_batch.obs, pol_batch.obs])
                    )
                    actions, log_pi = critic.actor(states)
                    q_net.requires_grad_(False)
                    actor_loss = (cfg.alpha * log_pi - critic.q(states, actions)).mean()
                    q_net.requires_grad_(True)
                    actor_opt.zero_grad()
                    actor_loss.backward()
                    actor_opt.step()

            if step == total_steps or (cfg.eval_every and step % cfg.eval_every == 0):
                tick = time.perf_counter()
                if exp_batch is not None:
                    last = _diagnostics(critic, exp_batch, pol_batch, loss, cfg.gamma)
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

    frozen = copy.deepcopy(critic).requires_grad_(False)

    def reward_fn(batch: Batch) -> torch.Tensor:
        return frozen.reward(batch, cfg.gamma, cfg.n_value_samples)

    return IQLearnResult(
        critic=critic,
        policy=policy,
        reward_fn=reward_fn,
        online=online,
        env_steps=total_steps if online else 0,
        config=cfg,
        buffer=buffer,
        curve=curve,
        final_eval=result,
        diagnostics=diagnostics,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        total_steps=total_steps,
    )


def _diagnostics(critic: IQCritic, expert: Batch, policy: Batch | None, loss, gamma: float):
    if not isinstance(loss, (int, float, torch.Tensor)) or torch.as_tensor(loss).numel() != 1:
        raise TypeError(
            f"the update must return the loss as a number or a 0-d tensor, got {type(loss).__name__}"
        )
    with torch.no_grad():
        r_exp = critic.reward(expert, gamma, 1).mean().item()
        r_pol = np.nan if policy is None else critic.reward(policy, gamma, 1).mean().item()
        if critic.discrete:
            q = critic.q_all(expert.obs)
            logp = torch.log_softmax(q / critic.alpha, -1)
            entropy = float(-(logp.exp() * logp).sum(-1).mean())
            q_mean = q.mean().item()
        else:
            _, log_pi = critic.actor(expert.obs)
            entropy = float(-log_pi.mean())
            q_mean = critic.q(expert.obs, expert.actions).mean().item()
    return {
        "loss": float(loss),
        "expert_reward": r_exp,
        "policy_reward": r_pol,
        "q_mean": q_mean,
        "entropy": entropy,
    }
