"""Adversarial imitation and inverse RL (chapter 10): GAIL and AIRL with off-policy generators.

Slides, "Inverse RL as a GAN". A discriminator D_psi tells expert samples (label 1) from policy
samples (label 0) by minimising

    L_D(psi) = E_{expert}[-log D_psi] + E_{pi_theta}[-log(1 - D_psi)],          (:func:`discriminator_loss`)

and the generator (the policy) maximises the reward log D - log(1 - D) (:func:`adversarial_reward`).
Two discriminators:

* :class:`GAILDiscriminator`: a plain binary classifier of (s, a), D = sigmoid(c_psi(s, a))
  (Ho & Ermon, 2016). At convergence D = 1/2 everywhere: it "knows nothing" and its output
  cannot be re-optimised as a reward.
* :class:`AIRLDiscriminator`: the structured discriminator of the slides,
  D = (1/Z) exp(r_psi) / ((1/Z) exp(r_psi) + pi_theta(a|s)), per step (Fu et al., 2018) with
  logit f_psi(s, a, s') - log pi(a|s) and f_psi = g_psi(s) + gamma h_psi(s') - h_psi(s):
  g is a state-only reward, h a shaping potential (:func:`airl_logits`). The learned g(s) can be
  re-optimised under new dynamics (reward transfer).

:func:`train_adversarial` trains either one against an off-policy generator from chapters 06-07
(soft DQN for discrete actions, SAC for continuous ones) through the trainers' hooks: the
discriminator is updated in the ``callback`` every ``disc_every`` env steps on the most recent
policy transitions (``buffer.latest``) against expert transitions, and every critic mini-batch
is relabelled with the current discriminator's reward by ``reward_fn``. Its own hooks,
``disc_step`` and ``relabel``, take the discriminator's update and AIRL's reward from the student
(Exercise 10.4); the references are :func:`discriminator_step` and :func:`airl_reward`.

What made adversarial training work with off-policy generators (see chapter 10 and benchmarks/):
an R1 gradient penalty on the discriminator (``grad_penalty``), policy samples from the whole replay
buffer (``disc_window``), a stochastic (soft-optimal) demonstrator for AIRL, actions that need not
saturate the tanh policy (:class:`WiderActions`) with log pi clamped, the generator reward f_psi for
AIRL (SAC adds the -log pi entropy term itself), and optionally a frozen discriminator for the end of
a run (``disc_until``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .rl import Batch, ReplayBuffer, SACConfig, SoftDQNConfig, mlp, train_sac, train_soft_dqn
from .rl.evaluation import env_factory
from .rl.networks import BoltzmannPolicy, SquashedGaussianPolicy

__all__ = [
    "AIRLDiscriminator",
    "AdversarialConfig",
    "AdversarialResult",
    "GAILDiscriminator",
    "PenalisedOptimizer",
    "PolicyLogProb",
    "WiderActions",
    "adversarial_reward",
    "airl_logits",
    "airl_reward",
    "discriminator_loss",
    "discriminator_step",
    "gail_reward_fn",
    "gan_optimal_discriminator",
    "policy_log_prob",
    "r1_penalty",
    "state_reward_fn",
    "train_adversarial",
]

RewardShape = Literal["logit", "positive", "negative", "f", "g"]


# ------------------------------------------------------------------------------ checks of inputs


def _check_tensor(name: str, x, ndim: int | None = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension(s) (a batch), got shape {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _same_shape(**tensors: torch.Tensor) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"shapes must agree, got {shapes}")


# ------------------------------------------------------------------------------ the formulas


def gan_optimal_discriminator(p_data: np.ndarray, p_model: np.ndarray) -> np.ndarray:
    """Slides: D*(x) = p*(x) / (p_theta(x) + p*(x)), for densities evaluated on the same points."""
    p_data, p_model = np.asarray(p_data, float), np.asarray(p_model, float)
    if p_data.shape != p_model.shape:
        raise ValueError(
            f"densities must have the same shape, got {p_data.shape} and {p_model.shape}"
        )
    if (p_data < 0).any() or (p_model < 0).any() or not np.isfinite(p_data + p_model).all():
        raise ValueError("densities must be finite and non-negative")
    total = p_data + p_model
    return np.divide(p_data, total, out=np.full_like(total, 0.5), where=total > 0)


def airl_logits(
    g_s: torch.Tensor,
    h_s: torch.Tensor,
    h_next: torch.Tensor,
    log_pi: torch.Tensor,
    gamma: float,
    terminated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logit of the AIRL discriminator, f_psi(s, a, s') - log pi(a|s), shape (B,).

    f_psi = g_psi(s) + gamma (1 - terminated) h_psi(s') - h_psi(s), so that
    D = sigmoid(logit) = exp(f) / (exp(f) + pi(a|s)): the slides' structured discriminator per step.
    g_s, h_s, h_next, log_pi, terminated: (B,). A terminated s' has no future: its potential is 0.
    """
    for name, x in (("g_s", g_s), ("h_s", h_s), ("h_next", h_next), ("log_pi", log_pi)):
        _check_tensor(name, x)
    _same_shape(g_s=g_s, h_s=h_s, h_next=h_next, log_pi=log_pi)
    not_done = 1.0 if terminated is None else 1.0 - terminated
    f = g_s + gamma * not_done * h_next - h_s
    return f - log_pi


def discriminator_loss(expert_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """L_D = mean over experts of -log D + mean over policy samples of -log(1 - D), D = sigmoid(logit).

    Binary cross-entropy with label 1 for expert and 0 for policy samples, written with
    softplus: -log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x), finite for any x.
    """
    _check_tensor("expert_logits", expert_logits)
    _check_tensor("policy_logits", policy_logits)
    return F.softplus(-expert_logits).mean() + F.softplus(policy_logits).mean()


def adversarial_reward(logits: torch.Tensor, shape: RewardShape = "logit") -> torch.Tensor:
    """The generator's reward from discriminator logits (B,), detached (no gradient into psi).

    ``"logit"``: log D - log(1 - D) = logit (slides' generator objective; for AIRL f - log pi).
    ``"positive"``: -log(1 - D) = softplus(logit) > 0, a survival bonus in tasks that terminate.
    ``"negative"``: log D = -softplus(-logit) < 0, a penalty for living in tasks that terminate.
    """
    _check_tensor("logits", logits)
    with torch.no_grad():
        if shape == "logit":
            return logits.detach().clone()
        if shape == "positive":
            return F.softplus(logits.detach())
        if shape == "negative":
            return -F.softplus(-logits.detach())
    raise ValueError(f"shape must be 'logit', 'positive' or 'negative', got {shape!r}")


# ------------------------------------------------------------------------------ discriminators


class GAILDiscriminator(nn.Module):
    """D_psi(s, a) = sigmoid(c_psi(s, a)): a plain classifier. ``forward`` returns the logit (B,).

    Discrete actions (``n_actions`` given) enter one-hot; continuous ones as they are.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int = 0,
        n_actions: int | None = None,
        hidden_sizes: tuple[int, ...] = (64, 64),
    ):
        super().__init__()
        self.n_actions = n_actions
        in_dim = obs_dim + (n_actions if n_actions else act_dim)
        self.net = mlp(in_dim, 1, hidden_sizes, activation=nn.Tanh)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.n_actions:
            actions = F.one_hot(actions.long(), self.n_actions).to(obs.dtype)
        elif actions.ndim == 1:
            actions = actions[:, None]
        return self.net(torch.cat([obs, actions], dim=-1)).squeeze(-1)

    def batch_logits(self, batch: Batch, log_pi: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the transitions of ``batch`` (``log_pi`` is not used by GAIL)."""
        return self(batch.obs, batch.actions)


class AIRLDiscriminator(nn.Module):
    """The structured discriminator: logit f_psi(s, a, s') - log pi(a|s), f = g(s) + gamma h(s') - h(s).

    g_psi (the state-only reward) and h_psi (the shaping potential) are MLPs (B, obs_dim) -> (B,).
    """

    def __init__(self, obs_dim: int, gamma: float = 0.99, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.gamma = float(gamma)
        self.g = mlp(obs_dim, 1, hidden_sizes, activation=nn.Tanh)
        self.h = mlp(obs_dim, 1, hidden_sizes, activation=nn.Tanh)

    def reward(self, obs: torch.Tensor) -> torch.Tensor:
        """The learned state-only reward g_psi(s), (B,)."""
        return self.g(obs).squeeze(-1)

    def potential(self, obs: torch.Tensor) -> torch.Tensor:
        """The shaping potential h_psi(s), (B,)."""
        return self.h(obs).squeeze(-1)

    def f(
        self, obs: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor | None = None
    ) -> torch.Tensor:
        g_s, h_s, h_next = self.reward(obs), self.potential(obs), self.potential(next_obs)
        return airl_logits(g_s, h_s, h_next, torch.zeros_like(g_s), self.gamma, terminated)

    def batch_logits(self, batch: Batch, log_pi: torch.Tensor) -> torch.Tensor:
        g_s, h_s, h_next = (
            self.reward(batch.obs),
            self.potential(batch.obs),
            self.potential(batch.next_obs),
        )
        return airl_logits(g_s, h_s, h_next, log_pi, self.gamma, batch.terminated)


def policy_log_prob(
    policy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    margin: float = 0.02,
    bound: float = 20.0,
    *,
    grad: bool = False,
) -> torch.Tensor:
    """log pi(a|s) (B,) of given actions under a course policy, clamped to [-bound, bound].

    Without gradient, unless ``grad`` (then it follows the caller's grad mode and is differentiable
    w.r.t. the policy's parameters, as the ``policy`` that :func:`train_adversarial` hands to a
    ``disc_step`` hook offers it).

    BoltzmannPolicy: log softmax(Q(s, .) / alpha) at a. SquashedGaussianPolicy: the tanh-Gaussian
    density, with actions pulled inside the bounds by ``margin`` (of the half-range), because
    actions at the bounds (saturated policies, bang-bang experts) have a degenerate squashed density.
    The clamp keeps one such action from dominating the discriminator's loss: a log-density of
    -1e5 (a policy whose mean sits far outside the bounds with a tiny sigma) would otherwise make
    D = 1 for a policy sample and its gradient explode.
    """
    with contextlib.nullcontext() if grad else torch.no_grad():
        if isinstance(policy, BoltzmannPolicy):
            if policy.alpha == 0:
                raise ValueError("AIRL needs a stochastic policy (alpha > 0)")
            logp = torch.log_softmax(policy.q_net(obs) / policy.alpha, dim=-1)
            return logp.gather(1, actions.long().unsqueeze(1)).squeeze(1).clamp(-bound, bound)
        if isinstance(policy, SquashedGaussianPolicy):
            low = policy.action_center - policy.action_scale * (1 - margin)
            high = policy.action_center + policy.action_scale * (1 - margin)
            return policy.log_prob(obs, torch.max(torch.min(actions, high), low)).clamp(
                -bound, bound
            )
    raise TypeError(f"unsupported policy {type(policy).__name__}")


# ------------------------------------------------------------------------------ one update (the hooks)


def discriminator_step(
    discriminator: nn.Module, optimizer, policy, expert: Batch, samples: Batch
) -> float:
    """One gradient step of the discriminator on L_D (expert label 1, policy samples label 0).

    The reference of :func:`train_adversarial`'s ``disc_step`` hook (Exercise 10.4 for AIRL).
    ``policy.log_prob(obs, actions)`` (B,) is the generator's log pi(a|s), differentiable w.r.t. the
    policy's parameters; it enters AIRL's logit f - log pi as a fixed number (this step moves psi,
    never the policy). GAIL's logit does not use it. Returns L_D before the step.
    """
    logits = []
    for batch in (expert, samples):
        log_pi = None
        if isinstance(discriminator, AIRLDiscriminator):
            with torch.no_grad():
                log_pi = policy.log_prob(batch.obs, batch.actions)
        logits.append(discriminator.batch_logits(batch, log_pi))
    loss = discriminator_loss(logits[0], logits[1])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def airl_reward(discriminator: AIRLDiscriminator, batch: Batch) -> torch.Tensor:
    """The generator's reward f_psi(s, a, s') (B,) from the current discriminator, without gradient.

    The reference of :func:`train_adversarial`'s ``relabel`` hook (Exercise 10.4): the logit
    f - log pi without its -log pi, which SAC and soft DQN add themselves as the entropy bonus.
    """
    with torch.no_grad():
        return discriminator.f(batch.obs, batch.next_obs, batch.terminated)


class PolicyLogProb:
    """What a ``disc_step`` hook receives as ``policy``: ``log_prob(obs, actions)`` (B,), with gradient
    w.r.t. the generator's parameters, clamped and with the action margin of :func:`policy_log_prob`."""

    def __init__(self, policy, margin: float = 0.02):
        self.policy, self.margin = policy, margin

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return policy_log_prob(self.policy, obs, actions, self.margin, grad=True)

    def parameters(self):
        return self.policy.parameters()


def r1_penalty(discriminator: nn.Module, expert: Batch, discrete: bool) -> torch.Tensor:
    """Mean over expert transitions of ||grad of the logit w.r.t. (s, s'[, a])||^2 (Mescheder et al., 2018).

    AIRL's log pi term does not depend on the inputs here (it is a fixed number in L_D), so it is left out.
    """
    inputs = [expert.obs.clone().requires_grad_(True), expert.next_obs.clone().requires_grad_(True)]
    actions = expert.actions
    if not discrete:
        actions = actions.clone().requires_grad_(True)
        inputs.append(actions)
    batch = expert._replace(obs=inputs[0], next_obs=inputs[1], actions=actions)
    logits = discriminator.batch_logits(batch, torch.zeros(batch.obs.shape[0]))
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True, allow_unused=True)
    return sum(g.pow(2).sum(-1).mean() for g in grads if g is not None)


class PenalisedOptimizer:
    """The discriminator's optimizer as a ``disc_step`` hook sees it.

    ``step()`` first adds the gradient of ``weight`` * :func:`r1_penalty` on the current expert
    mini-batch (set by :func:`train_adversarial` before each hook call) to the gradients, so a hook that
    does zero_grad(), backward() and step() on L_D minimises L_D + weight * R1. Everything else is the
    wrapped optimizer's.
    """

    def __init__(self, optimizer, discriminator: nn.Module, weight: float, discrete: bool):
        self.optimizer, self.discriminator = optimizer, discriminator
        self.weight, self.discrete = float(weight), discrete
        self.expert: Batch | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        if self.weight > 0 and self.expert is not None:
            (self.weight * r1_penalty(self.discriminator, self.expert, self.discrete)).backward()
        return self.optimizer.step(closure)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["optimizer"], name)


# ------------------------------------------------------------------------------ training


@dataclass
class AdversarialConfig:
    """Hyper-parameters of the discriminator and its schedule (the generator has its own config)."""

    disc_every: int = 100  # env steps between discriminator phases (from learning_starts on)
    disc_updates: int = 20  # gradient steps per phase
    disc_batch: int = 256  # policy and expert samples per gradient step (each)
    disc_window: int = 100_000  # policy samples come from the latest this many transitions
    disc_lr: float = 3e-4
    disc_hidden: tuple[int, ...] = (64, 64)
    weight_decay: float = 1e-4
    # R1 penalty (Mescheder et al., 2018): lambda * mean ||grad of the logit w.r.t. the expert's inputs||^2.
    # It keeps the discriminator smooth, hence the reward learnable; without it, on the point mass, the
    # discriminator separated the samples with sharp, changing boundaries and SAC never caught up.
    grad_penalty: float = 1.0
    # the generator's reward: "logit" = log D - log(1 - D); "f" (AIRL only) = f_psi(s, a, s'), i.e.
    # the logit without its -log pi term, which SAC/soft DQN add themselves as the entropy bonus
    reward_shape: RewardShape = "logit"
    # stop training the discriminator after this env step (None: never). With the reward frozen, the last
    # part of the run is plain RL on a fixed reward, which ends the policy/discriminator oscillations
    disc_until: int | None = None
    action_margin: float = 0.02  # see policy_log_prob
    recent: int = 1_000  # history["recent_D"]: mean D on the latest this many transitions


@dataclass(kw_only=True)
class AdversarialResult:
    """What :func:`train_adversarial` returns: the generator's run, the discriminator, and a log.

    ``history[name][k]`` after the k-th discriminator phase, at env step ``history["step"][k]``:
    "loss" (L_D of the phase's last mini-batch, before its step), "expert_D" and "policy_D" (mean D,
    after the phase, on the last expert mini-batch and the last mini-batch of policy samples, which
    come from the latest ``disc_window`` transitions, by default the whole replay buffer), and
    "recent_D" (mean D on the latest ``config.recent`` transitions: the current policy's samples).
    ``buffer``: the generator's replay buffer at the end.
    """

    method: str
    run: object  # SACResult or SoftDQNResult (its curve holds the TRUE returns)
    discriminator: nn.Module
    reward_fn: Callable[[Batch], torch.Tensor]
    history: dict[str, list[float]] = field(default_factory=dict)
    buffer: ReplayBuffer | None = None


def train_adversarial(
    method: Literal["gail", "airl"],
    env_id: str | Callable[[], gym.Env],
    expert: Batch,
    total_steps: int,
    seed: int = 0,
    config: AdversarialConfig | None = None,
    rl_config: SACConfig | SoftDQNConfig | None = None,
    alpha: float = 0.3,
    sac_variant: str = "v",
    progress: bool = False,
    *,
    disc_step: Callable | None = None,
    relabel: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
) -> AdversarialResult:
    """GAIL or AIRL: a discriminator against soft DQN (discrete actions) or SAC (continuous).

    expert: expert transitions (e.g. ``generate_demonstrations(...).transitions``).
    alpha: soft DQN's temperature (discrete actions only); SAC's is in ``rl_config``.
    Deterministic on CPU for a given seed. The learning curve in ``result.run.curve`` reports the
    environment's true return, which the agent never sees.

    Hooks (the student's functions of Exercise 10.4 plug in here; both default to the references):

    * ``disc_step(discriminator, optimizer, policy, expert, samples) -> loss`` takes one gradient
      step of the discriminator on a mini-batch of expert transitions and one of policy samples
      (:func:`discriminator_step`). ``policy.log_prob(obs, actions)`` is log pi(a|s) with gradient
      (:class:`PolicyLogProb`); ``optimizer.step()`` adds the R1 penalty (:class:`PenalisedOptimizer`).
    * ``relabel(discriminator, batch) -> rewards (B,)`` is the generator's reward of every critic
      mini-batch, from the discriminator as it is now (:func:`airl_reward`; AIRL with
      ``reward_shape="f"`` only, the other shapes use the library's).
    """
    if method not in ("gail", "airl"):
        raise ValueError(f"method must be 'gail' or 'airl', got {method!r}")
    cfg = config or AdversarialConfig()
    if cfg.reward_shape in ("f", "g") and method != "airl":
        raise ValueError("reward_shape='f' needs the AIRL discriminator (GAIL has no f)")
    if relabel is not None and (method != "airl" or cfg.reward_shape != "f"):
        raise ValueError(
            "relabel replaces AIRL's reward f: it needs method='airl', reward_shape='f'"
        )
    for name, hook in (("disc_step", disc_step), ("relabel", relabel)):
        if hook is not None and not callable(hook):
            raise ValueError(f"{name} must be a function, got {type(hook).__name__}")
    disc_step = disc_step or discriminator_step
    make_env = env_factory(env_id)
    env = make_env()
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    obs_dim = env.observation_space.shape[0]
    env.close()
    for name in ("obs", "next_obs", "actions"):
        _check_tensor(f"expert.{name}", getattr(expert, name).float(), ndim=None)
    if expert.obs.shape[-1] != obs_dim:
        raise ValueError(
            f"expert observations have {expert.obs.shape[-1]} features, the env has {obs_dim}"
        )
    if rl_config is None:
        rl_config = SoftDQNConfig() if discrete else SACConfig()
    gamma = rl_config.gamma

    torch.manual_seed(seed)  # the discriminator's initialisation (the trainer reseeds its own)
    if method == "gail":
        if discrete:
            disc: nn.Module = GAILDiscriminator(
                obs_dim, n_actions=int(env.action_space.n), hidden_sizes=cfg.disc_hidden
            )
        else:
            disc = GAILDiscriminator(
                obs_dim, act_dim=env.action_space.shape[0], hidden_sizes=cfg.disc_hidden
            )
    else:
        disc = AIRLDiscriminator(obs_dim, gamma=gamma, hidden_sizes=cfg.disc_hidden)
    adam = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, weight_decay=cfg.weight_decay)
    optimizer = PenalisedOptimizer(adam, disc, cfg.grad_penalty, discrete)
    rng = np.random.default_rng(seed + 12345)
    state: dict[str, object] = {"policy": None, "buffer": None}
    history: dict[str, list[float]] = {
        "step": [],
        "loss": [],
        "expert_D": [],
        "policy_D": [],
        "recent_D": [],
    }

    def log_pi(policy, batch: Batch) -> torch.Tensor | None:
        if method == "gail":
            return None
        return policy_log_prob(policy, batch.obs, batch.actions, cfg.action_margin)

    def mean_D(batch: Batch, policy) -> float:
        with torch.no_grad():
            return torch.sigmoid(disc.batch_logits(batch, log_pi(policy, batch))).mean().item()

    def reward_fn(batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            if cfg.reward_shape == "f":
                return (relabel or airl_reward)(disc, batch)
            if cfg.reward_shape == "g":
                return disc.reward(batch.obs)
            logits = disc.batch_logits(batch, log_pi(state["policy"], batch))
        return adversarial_reward(logits, cfg.reward_shape)

    def take(source: Batch, n: int) -> Batch:
        idx = torch.as_tensor(rng.integers(0, source.obs.shape[0], size=n))
        return Batch(*(x[idx] for x in source))

    def callback(step: int, buffer: ReplayBuffer, policy) -> None:
        state["policy"], state["buffer"] = policy, buffer
        if step < rl_config.learning_starts or step % cfg.disc_every != 0:
            return
        if cfg.disc_until is not None and step > cfg.disc_until:
            return
        recent = buffer.latest(cfg.disc_window)
        hook_policy = PolicyLogProb(policy, cfg.action_margin)
        for _ in range(cfg.disc_updates):
            pol, exp = take(recent, cfg.disc_batch), take(expert, cfg.disc_batch)
            optimizer.expert = exp
            loss = disc_step(disc, optimizer, hook_policy, exp, pol)
        optimizer.expert = None
        history["step"].append(step)
        history["loss"].append(float(loss))
        history["expert_D"].append(mean_D(exp, policy))
        history["policy_D"].append(mean_D(pol, policy))
        history["recent_D"].append(mean_D(buffer.latest(cfg.recent), policy))

    if discrete:
        run = train_soft_dqn(
            make_env,
            total_steps,
            seed,
            alpha=alpha,
            config=rl_config,
            progress=progress,
            reward_fn=reward_fn,
            callback=callback,
        )
    else:
        run = train_sac(
            make_env,
            total_steps,
            seed,
            variant=sac_variant,
            config=rl_config,
            progress=progress,
            reward_fn=reward_fn,
            callback=callback,
        )
    return AdversarialResult(
        method=method,
        run=run,
        discriminator=disc,
        reward_fn=reward_fn,
        history=history,
        buffer=state["buffer"],
    )


# ------------------------------------------------------------------------------ learned rewards


class WiderActions(gym.ActionWrapper):
    """Expose an action box ``factor`` times wider than the environment's; clip before stepping.

    A tanh-squashed policy reaches the bound of its box only as |u| -> infinity. Many tasks want
    full-range actions (bang-bang swing-ups, full speed), which drives u, and the density of the
    saturated action, to extremes, and AIRL's discriminator divides by that density. With a wider
    box, the environment's bounds are reached at finite u (tanh(u) = 1 / factor) and actions
    beyond them change nothing, so the policy has no reason to saturate.
    """

    def __init__(self, env: gym.Env, factor: float = 1.25):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box) or factor < 1:
            raise ValueError("WiderActions needs a Box action space and factor >= 1")
        space = env.action_space
        center, half = (space.high + space.low) / 2, (space.high - space.low) / 2
        self.action_space = gym.spaces.Box(
            center - factor * half, center + factor * half, dtype=space.dtype
        )

    def action(self, action):
        return np.clip(action, self.env.action_space.low, self.env.action_space.high)


def state_reward_fn(disc: AIRLDiscriminator) -> Callable[[Batch], torch.Tensor]:
    """AIRL's transferable reward: r(s, a, s') = g_psi(s), for re-optimisation with ``reward_fn``."""

    def reward_fn(batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return disc.reward(batch.obs)

    return reward_fn


def gail_reward_fn(
    disc: GAILDiscriminator, shape: RewardShape = "logit"
) -> Callable[[Batch], torch.Tensor]:
    """GAIL's "reward" log D(s, a) - log(1 - D(s, a)) from a trained classifier (frozen)."""

    def reward_fn(batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return adversarial_reward(disc(batch.obs, batch.actions), shape)

    return reward_fn
