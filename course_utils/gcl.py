"""Guided cost learning (Finn et al., 2016) on the 2-D point mass (slides: "Guided Cost Learning").

Sample-based MaxEnt IRL with a neural cost and a policy that is improved *while* the cost is
learned. The model of the demonstrations is the slides' ``p(tau | O, psi) ∝ p(tau) exp(r_psi(tau))``
with a state-only reward ``r_psi(s) = -c_psi(s)``, so ``r_psi(tau) = -C_psi(tau) = -sum_t c_psi(s_t)``
(s_t is the position *after* step t, as in the environment's true reward). The negative
log-likelihood of N demonstrations, with the partition function estimated by importance sampling
from M policy samples tau_j ~ pi(tau), is

    loss(psi) = 1/N sum_i C_psi(tau_i) + log( 1/M sum_j exp(-C_psi(tau_j)) / pi(tau_j) )
              = 1/N sum_i C_psi(tau_i) + logsumexp_j(log w_j) - log M,
    log w_j   = -C_psi(tau_j) - sum_t log pi(a_t | s_t)        (the sampler's log-probabilities)

and its gradient is minus the slides' IRL gradient, ``1/N sum_i grad r(tau_i) - sum_j w_j grad
r(tau_j) / sum_j w_j``. The policy approximates the soft-optimal policy for the current reward: Soft
Actor-Critic (chapter 07's losses) with temperature alpha on rewards relabelled with the current cost,
so the model is ``p(tau|O) ∝ p(tau) exp(-C_psi(tau) / alpha)`` and the loss uses ``C_psi / alpha``.
The cost is ``c_psi(s) = ||h_psi(s)||^2 / 2`` with an MLP h_psi (see :class:`CostNetwork`).
Each iteration of :func:`train_gcl`:

1. run the current policy for ``episodes_per_iter`` episodes, keeping each step's log pi(a|s);
2. take ``cost_steps`` Adam steps on ``loss(psi) + regularizers`` (below) with the samples of the last ``sample_window``
   iterations (older samples are from lagging policies: their own log-probabilities correct for it);
   after ``cost_iterations`` iterations the cost is frozen, as the average c(s) = 1/K sum_k c_k(s)
   of its versions after the last K = ``cost_average`` learning iterations, and the remaining
   iterations train the policy on it alone (while both learn, the cost and the policy chase each
   other; the average smooths out where the chase happened to stand, like Polyak averaging);
3. take ``sac_steps_per_iter`` SAC gradient steps on the replay buffer, rewards ``-c_psi(s')``.

**Regularizers of the cost** (Finn et al. 2016, section 4.2: with few demonstrations and a flexible
cost, the importance-sampled likelihood alone leaves the cost under-determined). Once the policy
imitates the demonstrations, the likelihood's gradient (demos minus weighted samples) vanishes, and
with effective sample sizes of about one trajectory the cost near the goal is whatever the last noisy
updates left there: its minimum can sit just outside the goal disc. Two terms add prior knowledge:

- ``mono_weight`` * g_mono, the paper's *monotonic decrease* along the demonstrations: the
  demonstrations make steady progress towards their goal, so their cost should not increase,
  ``g_mono = mean_i sum_t max(0, c(s_{t+1}) - c(s_t))^2`` over demonstration i (the paper also
  allows a margin; here it is 0). It pulls the cost's minimum to where the demonstrations end.
- ``cost_l2`` * (mean_t c(s_t)^2 over demos + over samples): an L2 penalty on the cost values. The
  likelihood alone is unbounded while the samples can be told apart from the demonstrations (scaling
  the cost up always helps), so the cost grows large early and keeps the shape of where the early
  policies went; the penalty keeps its scale, and thus its valley, shaped by the current samples.

**The background set and the fused sampler** (Finn et al. 2016, section 4). The cost step
(:func:`gcl_cost_update`, or the ``update=`` of :func:`train_gcl`) estimates Z from a background set of
the window's policy samples *and the demonstrations*, each trajectory weighted with the density of the
mixture of the sources, the "fused" distribution q(tau) = sum_k (n_k / n) q_k(tau) (the policies of
the window, and :class:`DemoDensity`, a rough density estimate of the demonstrations), with
``GCLConfig.importance == "fused"`` (the default). With ``"own"`` each sample keeps its own sampler and
the demonstrations get weight 0, the estimator of :func:`gcl_cost_loss`.

Measured on ``benchmarks/gcl_point_mass.py`` (seeds 0-11, before the fused sampler): without the
regularizers (and with 40 iterations, the cost frozen after 30) 2 of 12 seeds miss the goal disc; with
both but 40 iterations, 5 of 12 miss; with both and 60 iterations (cost frozen after 40) every seed
succeeded. Re-run after the background set was changed: "fused" fails seed 5 of seeds 0-8, and "own"
(the same estimator as before up to float rounding) fails seeds 2 and 5 of 0-5: the outcome of a seed
is sensitive to rounding, and the 12 of 12 was not robust.

Everything runs on the CPU in about a minute; with a fixed seed the run is deterministic.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np
import torch
from scipy.special import logsumexp
from torch import nn
from tqdm.auto import tqdm

from .envs.point_mass import PointMassEnv
from .rl import ReplayBuffer, SquashedGaussianPolicy, TwinQNetwork, mlp, relabel
from .rl.losses import polyak_update
from .rl.sac import critic_and_actor_losses, target_critics_value
from .runtime import configure_threads, seed_everything

__all__ = [
    "AveragedCost",
    "CostNetwork",
    "GCLConfig",
    "GCLResult",
    "Rollouts",
    "cost_on_grid",
    "expert_demonstrations",
    "gcl_cost_loss",
    "rollout",
    "success_rate",
    "train_gcl",
]


class CostNetwork(nn.Module):
    """A state-only cost c_psi(s): positions (..., 2) -> costs (...). The reward is -c_psi(s).

    ``out_features=None``: c_psi(s) = MLP(s), any real number. ``out_features=k``: the squared norm
    c_psi(s) = ||h(s)||^2 / 2 of a k-dimensional MLP output h (Finn et al. 2016 use a squared norm
    of learned features too). It is never negative, so no state can look better than the best
    demonstrated one; a plain MLP may extrapolate to ever lower costs where no sample has been yet.
    """

    def __init__(
        self,
        obs_dim: int = 2,
        hidden_sizes: tuple[int, ...] = (32, 32),
        out_features: int | None = None,
    ):
        super().__init__()
        self.squared = out_features is not None
        self.net = mlp(obs_dim, out_features or 1, hidden_sizes, activation=nn.Tanh)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(obs)
        return 0.5 * out.pow(2).sum(-1) if self.squared else out.squeeze(-1)


class AveragedCost(nn.Module):
    """The mean of several cost networks' outputs: c(s) = 1/K sum_k c_k(s) (a Polyak average of the function)."""

    def __init__(self, costs: list[CostNetwork]):
        super().__init__()
        self.costs = nn.ModuleList(costs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.stack([c(obs) for c in self.costs]).mean(0)


def _check_costs(demo_costs, sample_costs, sample_log_probs) -> None:
    for name, value in (
        ("demo_costs", demo_costs),
        ("sample_costs", sample_costs),
        ("sample_log_probs", sample_log_probs),
    ):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name} must be a torch tensor, got {type(value).__name__}")
        if value.ndim != 2 or value.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (trajectories, T) with at least one trajectory, "
                f"got {tuple(value.shape)}"
            )
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf")
    if sample_costs.shape != sample_log_probs.shape:
        raise ValueError(
            f"sample_costs {tuple(sample_costs.shape)} and sample_log_probs "
            f"{tuple(sample_log_probs.shape)} must have the same shape (M, T)"
        )


def gcl_cost_loss(
    demo_costs: torch.Tensor, sample_costs: torch.Tensor, sample_log_probs: torch.Tensor
) -> torch.Tensor:
    """The importance-sampled negative MaxEnt IRL log-likelihood of guided cost learning, a scalar.

    demo_costs (N, T): c_psi(s_t) along the demonstrations; sample_costs (M, T): along the policy
    samples; sample_log_probs (M, T): log pi(a_t|s_t) of the policy that *sampled* them (recorded
    when sampling). Returns ``mean_i C(tau_i) + logsumexp_j(-C(tau_j) - sum_t log pi_j) - log M``;
    minimising it follows the slides' IRL gradient with self-normalised importance weights.
    """
    _check_costs(demo_costs, sample_costs, sample_log_probs)
    log_w = -sample_costs.sum(dim=1) - sample_log_probs.sum(dim=1)  # (M,) log importance weights
    return demo_costs.sum(dim=1).mean() + torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def gcl_cost_update(
    cost_net: nn.Module,
    optimizer: torch.optim.Optimizer,
    demo_states: torch.Tensor,
    sample_states: torch.Tensor,
    sample_log_q: torch.Tensor,
    demo_log_q: torch.Tensor,
    config: GCLConfig,
) -> float:
    """One Adam (or any optimizer) step on the guided cost learning objective; returns the loss.

    demo_states (N, T, 2) and sample_states (M, T, 2): positions s_t along the demonstrations and
    the policy samples; sample_log_q (M,) and demo_log_q (N,): log q(tau) of each trajectory under
    the *fused* sampler q = sum_k (n_k / n) q_k, the mixture of the distributions that produced the
    background set (the recent policies and a density estimate of the demonstrations). The
    background set is the samples followed by the demonstrations (n = M + N trajectories);

        log w_b = -C(tau_b) / alpha - log q(tau_b),
        loss    = mean_i C(tau_i) / alpha + logsumexp_b(log w_b) - log n
                  + mono_weight * mean_i sum_t max(0, c(s_{i,t+1}) - c(s_{i,t}))^2
                  + cost_l2 * (mean c(s)^2 over the demo steps + over the sample steps).
    """
    demo_c = cost_net(demo_states)  # (N, T)
    sample_c = cost_net(sample_states)  # (M, T)
    background_c = torch.cat([sample_c, demo_c]).sum(1) / config.alpha  # (M + N,): C(tau_b) / alpha
    log_w = -background_c - torch.cat([sample_log_q, demo_log_q]).detach()
    loss = demo_c.sum(1).mean() / config.alpha + torch.logsumexp(log_w, 0) - math.log(len(log_w))
    if config.mono_weight > 0:  # monotonic decrease along the demonstrations (Finn et al. 2016)
        rises = torch.relu(demo_c[:, 1:] - demo_c[:, :-1])
        loss = loss + config.mono_weight * rises.pow(2).sum(1).mean()
    if config.cost_l2 > 0:  # keeps the cost's scale bounded
        loss = loss + config.cost_l2 * (demo_c.pow(2).mean() + sample_c.pow(2).mean())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@dataclass
class DemoDensity:
    """A rough density of the demonstrations' actions: a ~ N(m(s), diag sigma^2), m(s) the mean action
    of the ``k`` demonstration states nearest to s (a k-nearest-neighbour behaviour cloning).

    ``fit`` computes sigma from the leave-one-out residuals on the demonstrations; a query at a
    demonstration state leaves that state out too, so the demonstrations are not over-fitted.
    ``log_prob(obs (..., 2), actions (..., 2)) -> (...)``. Finn et al. (2016) need such an estimate
    to put the demonstrations into the background set; how rough it may be is measured in chapter 09.
    """

    states: np.ndarray = field(repr=False)  # (D, 2) every demonstration state s_t
    actions: np.ndarray = field(repr=False)  # (D, 2) its action a_t
    std: np.ndarray  # (2,)
    k: int = 20

    @classmethod
    def fit(cls, demos: Rollouts, k: int = 20) -> DemoDensity:
        states = demos.obs.reshape(-1, demos.obs.shape[-1]).astype(np.float64)
        actions = demos.actions.reshape(-1, demos.actions.shape[-1]).astype(np.float64)
        density = cls(states, actions, np.ones(actions.shape[-1]), k)
        density.std = np.maximum((actions - density.mean(states)).std(axis=0), 1e-3)
        return density

    def mean(self, obs: np.ndarray) -> np.ndarray:
        flat = obs.reshape(-1, obs.shape[-1])
        d2 = ((flat[:, None, :] - self.states[None]) ** 2).sum(-1)  # (B, D)
        d2[d2 < 1e-20] = np.inf  # leave the query's own demonstration state out
        nearest = np.argpartition(d2, self.k, axis=1)[:, : self.k]
        return self.actions[nearest].mean(1).reshape(obs.shape)

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        z = (actions - self.mean(obs)) / self.std
        return (-0.5 * z**2 - np.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def fused_log_density(
    samplers: list[tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]],
    obs: np.ndarray,
    actions: np.ndarray,
) -> np.ndarray:
    """log q(tau) (B,) of trajectories obs, actions (B, T, 2) under the mixture sum_k (n_k/n) q_k.

    ``samplers``: pairs (log_prob_k, n_k), where ``log_prob_k(obs, actions)`` gives the per-step
    log-density (B, T) of sampler k and n_k is how many trajectories of the background set it drew.
    The dynamics are the same for every sampler and cancel in the importance weights, so q_k(tau) is
    the product of the action densities. This is the "fused" distribution of Finn et al. (2016).
    """
    n = sum(count for _, count in samplers)
    per_sampler = np.stack(
        [log_prob(obs, actions).sum(-1) + math.log(count / n) for log_prob, count in samplers]
    )  # (K, B)
    return logsumexp(per_sampler, axis=0)


def policy_log_prob(
    policy: SquashedGaussianPolicy,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``log pi(a|s)`` of a (frozen) SAC policy as a numpy function (..., 2), (..., 2) -> (...)."""

    @torch.no_grad()
    def log_prob(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        shape = obs.shape[:-1]
        o = torch.as_tensor(obs.reshape(-1, obs.shape[-1]), dtype=torch.float32)
        a = torch.as_tensor(actions.reshape(-1, actions.shape[-1]), dtype=torch.float32)
        return policy.log_prob(o, a).double().numpy().reshape(shape)

    return log_prob


def effective_sample_size(log_w: torch.Tensor | np.ndarray) -> float:
    """(sum_j w_j)^2 / sum_j w_j^2 from log-weights."""
    log_w = torch.as_tensor(log_w, dtype=torch.float64)
    return float(torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)))


@dataclass
class Rollouts:
    """Episodes of the point mass, as numpy arrays.

    obs (M, T, 2): s_t before each action; actions (M, T, 2); next_obs (M, T, 2): s_{t+1}, where the
    reward (and the cost) is measured; log_probs (M, T): log pi(a_t|s_t) of the policy that acted
    (None for the demonstrations of a controller without a density); in_goal (M,): whether the
    final position lies in the goal disc (``info["in_goal"]`` of the last step).
    """

    obs: np.ndarray
    actions: np.ndarray
    next_obs: np.ndarray
    log_probs: np.ndarray | None
    in_goal: np.ndarray


def _run(make_env: Callable[[], PointMassEnv], act, n_episodes: int, seed: int) -> Rollouts:
    """Roll out ``act(obs (M, 2)) -> (actions (M, 2), log_probs (M,) or None)`` in M environments."""
    envs = [make_env() for _ in range(n_episodes)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]).astype(np.float64)
    T = envs[0].horizon
    all_obs, all_actions, all_next, all_log_probs = [], [], [], []
    in_goal = np.zeros(n_episodes, dtype=bool)
    for _ in range(T):
        actions, log_probs = act(obs)
        nxt = np.empty_like(obs)
        for i, env in enumerate(envs):
            nxt[i], _, _, _, info = env.step(actions[i])
            in_goal[i] = info["in_goal"]
        all_obs.append(obs)
        all_actions.append(actions)
        all_next.append(nxt)
        all_log_probs.append(log_probs)
        obs = nxt
    stack = lambda xs: np.stack(xs, axis=1)  # noqa: E731  (T lists of (M, ...)) -> (M, T, ...)
    log_probs = None if all_log_probs[0] is None else stack(all_log_probs)
    return Rollouts(stack(all_obs), stack(all_actions), stack(all_next), log_probs, in_goal)


def expert_demonstrations(
    n: int, *, noise: float = 0.3, seed: int = 0, env_kwargs: dict | None = None
) -> Rollouts:
    """``n`` episodes of the point mass expert with Gaussian action noise (std ``noise``, then clipped).

    The noise makes the demonstrations stochastic, as the MaxEnt model assumes. Starts are seeded
    ``seed, seed + 1, ...``; the noise comes from ``numpy.random.default_rng(seed)``.
    """
    if n < 1 or noise < 0:
        raise ValueError(f"need n >= 1 demonstrations and noise >= 0, got n={n}, noise={noise}")
    env_kwargs = dict(env_kwargs or {})
    rng = np.random.default_rng(seed)
    expert = PointMassEnv(**env_kwargs)

    def act(obs):
        actions = expert.expert_action(obs) + noise * rng.standard_normal(obs.shape)
        return np.clip(actions, -1.0, 1.0), None

    return _run(lambda: PointMassEnv(**env_kwargs), act, n, seed)


def rollout(
    policy: SquashedGaussianPolicy,
    n_episodes: int,
    *,
    seed: int = 0,
    deterministic: bool = False,
    env_kwargs: dict | None = None,
) -> Rollouts:
    """Run ``policy`` for ``n_episodes`` episodes (seeded starts), recording log pi(a_t|s_t) per step.

    Stochastic actions use torch's global generator (seed it for reproducible runs); the
    log-probabilities are those of the policy at sampling time: the sampler of the importance weights.
    """
    env_kwargs = dict(env_kwargs or {})
    device = next(policy.parameters()).device

    @torch.no_grad()
    def act(obs):
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
        actions, log_probs = policy(obs_t, deterministic=deterministic)
        return actions.double().cpu().numpy(), log_probs.double().cpu().numpy()

    return _run(lambda: PointMassEnv(**env_kwargs), act, n_episodes, seed)


def success_rate(
    policy: SquashedGaussianPolicy,
    n_episodes: int = 20,
    *,
    seed: int = 10_000,
    deterministic: bool = True,
    env_kwargs: dict | None = None,
) -> float:
    """Fraction of ``n_episodes`` seeded episodes whose final position is in the goal disc."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        runs = rollout(
            policy, n_episodes, seed=seed, deterministic=deterministic, env_kwargs=env_kwargs
        )
    return float(runs.in_goal.mean())


@torch.no_grad()
def cost_on_grid(cost_net: CostNetwork, n: int = 41) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """c_psi on an n x n grid over [-1, 1]^2: X, Y (n, n) coordinates and C (n, n) costs."""
    xs = np.linspace(-1.0, 1.0, n)
    X, Y = np.meshgrid(xs, xs)
    device = next(cost_net.parameters()).device
    points = torch.as_tensor(np.stack([X, Y], axis=-1), dtype=torch.float32, device=device)
    return X, Y, cost_net(points).double().cpu().numpy()


@dataclass
class GCLConfig:
    """Hyper-parameters of :func:`train_gcl` (defaults: see benchmarks/gcl_point_mass.py)."""

    iterations: int = 60
    cost_iterations: int = (
        40  # the cost learns in the first 40 iterations; then the policy trains on it alone
    )
    cost_average: int = 10  # ... on the average of the costs after the last 10 learning iterations
    episodes_per_iter: int = 4  # policy samples per iteration (T = 50 steps each)
    sample_window: int = 5  # cost updates use the samples of the last iterations (lagging policies)
    cost_steps: int = 10  # Adam steps on the cost per iteration
    cost_lr: float = 3e-3
    cost_hidden: tuple[int, ...] = (32, 32)
    cost_features: int | None = 4  # c = ||MLP(s)||^2 / 2 with 4 outputs; None: c = MLP(s)
    sac_steps_per_iter: int = 200  # SAC gradient steps per iteration (on the replay buffer)
    warmup_episodes: int = 4  # uniformly random episodes before the first iteration
    gamma: float = 0.98
    tau: float = 0.01
    alpha: float = 0.2  # SAC temperature; the model is p(tau|O) ∝ p(tau) exp(-C(tau) / alpha)
    sac_lr: float = 1e-3
    batch_size: int = 128
    hidden_sizes: tuple[int, ...] = (64, 64)
    num_threads: int | None = 1
    mono_weight: float = (
        1.0  # weight of g_mono: the cost should not increase along the demonstrations
    )
    cost_l2: float = (
        0.01  # weight of the L2 penalty on the cost values (demos and samples, per step)
    )
    demo_neighbours: int = 20  # k of the demonstrations' density estimate (DemoDensity)
    importance: str = "fused"  # "fused": the mixture of the samplers of the window and of the demos
    # (Finn et al. 2016); "own": each policy sample weighted with its own sampler, the demos with
    # weight 0 (the estimator of gcl_cost_loss). Benchmark, seeds 0-5: "fused" fails seed 5, "own"
    # seeds 2 and 5 (see benchmarks/gcl_point_mass.py and chapter 09).


@dataclass
class GCLResult:
    """What :func:`train_gcl` learned: the cost, the policy (SAC actor) and per-iteration histories.

    history["loss"], ["ess"] (effective sample size of the last cost step, out of the samples in the
    window), ["demo_cost"], ["sample_cost"] (mean C per trajectory), ["sample_in_goal"] (fraction of
    this iteration's policy samples ending in the goal).
    """

    cost_net: nn.Module  # the final (averaged) cost: positions (..., 2) -> costs (...)
    policy: SquashedGaussianPolicy
    q_net: TwinQNetwork
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    config: GCLConfig | None = None


def train_gcl(
    demos: Rollouts,
    *,
    config: GCLConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    env_kwargs: dict | None = None,
    update: Callable | None = None,
) -> GCLResult:
    """Guided cost learning on the point mass from the demonstrations ``demos`` (see the module doc).

    ``update``: the cost step, called ``cost_steps`` times per learning iteration as
    ``update(cost_net, optimizer, demo_states, sample_states, sample_log_q, demo_log_q, config)``
    (the signature of :func:`gcl_cost_update`, the default). With ``config.importance == "own"``
    each policy sample is weighted with its own sampler's log-probabilities and the demonstrations
    get ``demo_log_q = +inf`` (weight 0), which is the estimator of :func:`gcl_cost_loss` (the
    background set is then the samples alone; only the constant -log n differs).
    """
    cfg = config or GCLConfig()
    update = update or gcl_cost_update
    if cfg.importance not in ("fused", "own"):
        raise ValueError(f"config.importance must be 'fused' or 'own', got {cfg.importance!r}")
    if demos.next_obs.ndim != 3 or demos.next_obs.shape[-1] != 2:
        raise ValueError(f"demos.next_obs must have shape (N, T, 2), got {demos.next_obs.shape}")
    previous_threads = torch.get_num_threads()
    seed_everything(seed)
    configure_threads(cfg.num_threads)
    device = torch.device("cpu")  # tiny networks: the CPU is faster than a GPU round trip
    env_kwargs = dict(env_kwargs or {})
    try:
        env = PointMassEnv(**env_kwargs)
        cost_net = CostNetwork(2, cfg.cost_hidden, cfg.cost_features)
        cost_opt = torch.optim.Adam(cost_net.parameters(), lr=cfg.cost_lr)
        policy = SquashedGaussianPolicy(2, 2, -1.0, 1.0, cfg.hidden_sizes)
        q_net = TwinQNetwork(2, 2, cfg.hidden_sizes)
        q_target = copy.deepcopy(q_net).requires_grad_(False)
        q_opt = torch.optim.Adam(q_net.parameters(), lr=cfg.sac_lr)
        policy_opt = torch.optim.Adam(policy.parameters(), lr=cfg.sac_lr)
        capacity = (cfg.warmup_episodes + cfg.iterations * cfg.episodes_per_iter) * env.horizon
        buffer = ReplayBuffer(capacity, (2,), (2,), device=device, seed=seed)
        demo_states = torch.as_tensor(demos.next_obs, dtype=torch.float32)  # (N, T, 2)
        rng = np.random.default_rng(seed)

        def add(runs: Rollouts) -> None:
            for i in range(runs.obs.shape[0]):
                for t in range(runs.obs.shape[1]):
                    buffer.add(runs.obs[i, t], runs.actions[i, t], 0.0, runs.next_obs[i, t], False)

        def uniform(obs):
            return rng.uniform(-1, 1, size=obs.shape), np.full(obs.shape[0], -math.log(4.0))

        start = time.perf_counter()
        add(_run(lambda: PointMassEnv(**env_kwargs), uniform, cfg.warmup_episodes, seed + 50_000))
        window: list[Rollouts] = []
        samplers: list[
            Callable
        ] = []  # log pi_k(a|s) of the policies that drew the window's samples
        demo_density = DemoDensity.fit(demos, cfg.demo_neighbours)
        snapshots: list[CostNetwork] = []
        history: dict[str, list[float]] = {
            k: []
            for k in (
                "loss",
                "ess",
                "ess_own",
                "ess_fused",
                "demo_cost",
                "sample_cost",
                "sample_in_goal",
            )
        }
        for it in tqdm(range(cfg.iterations), disable=not progress, desc="GCL"):
            # 1. samples of the current policy, with the sampler's log-probabilities
            runs = rollout(
                policy, cfg.episodes_per_iter, seed=seed + 1000 * (it + 1), env_kwargs=env_kwargs
            )
            add(runs)
            window = ([*window, runs])[-cfg.sample_window :]
            samplers = ([*samplers, policy_log_prob(copy.deepcopy(policy))])[-cfg.sample_window :]
            sample_states = torch.as_tensor(
                np.concatenate([r.next_obs for r in window]), dtype=torch.float32
            )
            own_log_q = torch.as_tensor(  # log pi_k(tau) of the sampler that drew each sample
                np.concatenate([r.log_probs.sum(1) for r in window]), dtype=torch.float32
            )
            # the fused sampler: the mixture of the recent policies and the demos' density estimate
            sources = [
                (log_prob, len(r.in_goal)) for log_prob, r in zip(samplers, window, strict=True)
            ]
            sources.append((demo_density.log_prob, len(demos.in_goal)))
            obs = np.concatenate([*(r.obs for r in window), demos.obs])
            actions = np.concatenate([*(r.actions for r in window), demos.actions])
            fused = torch.as_tensor(fused_log_density(sources, obs, actions), dtype=torch.float32)
            if cfg.importance == "fused":
                sample_log_q, demo_log_q = fused[: len(sample_states)], fused[len(sample_states) :]
            else:  # the estimator of Exercise 9.4: log q = +inf gives the demos weight 0
                sample_log_q = own_log_q
                demo_log_q = torch.full((len(demo_states),), math.inf)
            # 2. cost: importance-sampled MaxEnt IRL; then frozen, as the average of its last versions
            if it < cfg.cost_iterations:
                for _ in range(cfg.cost_steps):
                    update(
                        cost_net,
                        cost_opt,
                        demo_states,
                        sample_states,
                        sample_log_q,
                        demo_log_q,
                        cfg,
                    )
                if it >= cfg.cost_iterations - cfg.cost_average:
                    snapshots.append(copy.deepcopy(cost_net).requires_grad_(False))
                if it == cfg.cost_iterations - 1:
                    cost_net = AveragedCost(snapshots)
            with torch.no_grad():
                demo_c, sample_c = cost_net(demo_states), cost_net(sample_states)
                background_c = torch.cat([sample_c, demo_c]).sum(1)
                log_w = -background_c / cfg.alpha - torch.cat([sample_log_q, demo_log_q])
                demo_term = demo_c.sum(1).mean() / cfg.alpha
                loss = demo_term + torch.logsumexp(log_w, 0) - math.log(len(log_w))
                history["loss"].append(float(loss))
                history["ess"].append(effective_sample_size(log_w))
                history["ess_own"].append(
                    effective_sample_size(-sample_c.sum(1) / cfg.alpha - own_log_q)
                )
                history["ess_fused"].append(
                    effective_sample_size(-background_c / cfg.alpha - fused)
                )
                history["demo_cost"].append(float(demo_c.sum(1).mean()))
                history["sample_cost"].append(
                    float(sample_c[-cfg.episodes_per_iter :].sum(1).mean())
                )
                history["sample_in_goal"].append(float(runs.in_goal.mean()))
            # 3. policy: SAC on the learned reward r = -c_psi(s')
            for _ in range(cfg.sac_steps_per_iter):
                batch = relabel(
                    buffer.sample(cfg.batch_size), lambda b, net=cost_net: -net(b.next_obs)
                )
                next_value = target_critics_value(policy, q_target, batch.next_obs, cfg.alpha)
                q_loss, policy_loss, _, _ = critic_and_actor_losses(
                    policy, q_net, batch, next_value, cfg.alpha, cfg.gamma
                )
                for opt, sac_loss in ((q_opt, q_loss), (policy_opt, policy_loss)):
                    opt.zero_grad()
                    sac_loss.backward()
                q_opt.step()
                policy_opt.step()
                polyak_update(q_target, q_net, cfg.tau)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    return GCLResult(cost_net, policy, q_net, history, seconds, cfg)
