"""Checks for chapter 06 (soft Q-learning).

6.1 ``soft_q_target``: the soft DQN target, detached, bootstrapping through time-outs but not
terminal states; 6.2 ``boltzmann_probs``: pi = exp((Q - V) / alpha); 6.3 ``soft_dqn_loss``:
0.5 mean (Q(s, a) - y)^2 with gradient into q_net only. References: :mod:`course_utils.rl.losses`.
The batches mix terminated, truncated and ordinary transitions; the mistakes are the reference
with one knob changed.
"""

from __future__ import annotations

import copy
import math
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..rl import Batch, losses
from ..rl.soft_dqn import soft_dqn_update
from . import (
    Case,
    Exercise,
    Grad,
    Mistake,
    Output,
    flat_parameters,
    install_stale_gradients,
    messages,
    mistake_table,
)

__all__ = ["TransitionBatch", "check_boltzmann_probs", "check_soft_dqn_loss"]
__all__ += ["check_soft_q_target", "reference_boltzmann_probs", "reference_soft_dqn_loss"]
__all__ += ["check_soft_dqn_update", "reference_soft_dqn_update", "reference_soft_q_target"]

# obs (B, obs_dim), actions (B,) int64, rewards (B,), next_obs (B, obs_dim), flags (B,) 0.0 / 1.0
TransitionBatch = namedtuple("TransitionBatch", "obs actions rewards next_obs terminated truncated")
_TENSOR = "the training loop does torch arithmetic and backpropagation with it"


def reference_soft_q_target(next_q, reward, terminated, truncated, gamma, alpha):
    """y = r + gamma (1 - terminated) alpha logsumexp(next_q / alpha), detached; ``truncated`` is
    unused: a time-out is not the end of the task."""
    return losses.soft_q_target(next_q, reward, terminated, gamma, alpha)


def reference_boltzmann_probs(q, alpha):
    """pi(a|s) = exp((Q(s, a) - V(s)) / alpha) over the last axis, (..., A)."""
    return losses.boltzmann_probs(q, alpha)


def reference_soft_dqn_loss(q_net, target_net, batch, gamma, alpha):
    """0.5 mean_i (Q_phi(s_i, a_i) - y_i)^2, y the soft target from ``target_net`` (0-d tensor)."""
    with torch.no_grad():
        next_q = target_net(batch.next_obs)
        y = reference_soft_q_target(next_q, *_flags_of(batch), gamma, alpha)
    return losses.q_learning_loss(q_net(batch.obs).gather(1, batch.actions[:, None]).squeeze(1), y)


def _flags_of(batch) -> tuple:
    return batch.rewards, batch.terminated, batch.truncated


def _y(mask="terminated", value=losses.soft_value, discount=True, outer=False, r=1.0, keep=False):
    """The soft target with one knob changed (the defaults give the reference): the mask (of
    terminated, truncated), the soft value V(next_q, alpha), where gamma goes, r, keeping the graph."""

    def target(next_q, reward, terminated, truncated, gamma, alpha):
        done = {
            "terminated": terminated,
            "truncated": truncated,
            "done": torch.clamp(terminated + truncated, max=1),
            "inverted": 1 - terminated,
            "none": 0 * terminated,
        }[mask]
        future = (1 - done) * value(next_q, alpha)
        y = r * reward + (gamma if discount and not outer else 1.0) * future
        y = gamma * y if outer else y
        return y if keep else y.detach()

    return target


def _f32(x) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


def _flags(rng: np.random.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """terminated, truncated (B,): one of each and an ordinary step (B >= 3), both (B >= 8)."""
    kind = rng.integers(0, 4, size=b)  # 0, 1: ordinary, 2: terminated, 3: truncated
    if b >= 3:
        kind[:3] = rng.permutation([0, 2, 3])
    terminated, truncated = (kind == 2).astype(np.float32), (kind == 3).astype(np.float32)
    if b >= 8:
        terminated[-1] = truncated[-1] = 1.0  # the pole falls on the last allowed step
    return torch.from_numpy(terminated), torch.from_numpy(truncated)


def _overflow(actual, expected, q: torch.Tensor, alpha: float) -> bool:
    """Non-finite where the reference is finite, on an input where exp(Q / alpha) overflows."""
    bad = actual.shape == expected.shape and (~np.isfinite(actual) & np.isfinite(expected)).any()
    return bool(bad and q.abs().max() / alpha > 80)


# ----------------------------------------------------------------------- Exercise 6.1

V = "V(s') = alpha * logsumexp(Q'(s', .) / alpha) over the actions (dim=-1)"
TERMINATED = (
    "your target bootstraps through TERMINATED transitions. When the episode terminated (the pole "
    "fell), there is no next state to value: y = r + gamma * (1 - terminated) * V(s')."
)
TRUNCATED = (
    "your target treats TRUNCATED transitions (time-outs) as terminal. A time limit cuts the "
    "episode, not the task: s' still has a future, so bootstrap there. Multiply by (1 - terminated) "
    "only; `truncated` must not change the target."
)
HARD_MAX = (
    "you used the hard max over next actions (the DQN target). Soft Q-learning uses the soft max "
    f"{V}, e.g. alpha * torch.logsumexp(next_q / alpha, dim=-1)."
)


def _target_cases(rng: np.random.Generator) -> list[Case]:
    one, zero, every = torch.ones(5), torch.zeros(5), ", every transition"
    not_done = torch.zeros(1), torch.zeros(1)
    cases = []
    for b, a, gamma, alpha, scale, offset, flags, note in (
        (5, 5, 0.9, 0.7, 1.0, 0.0, None, " (as many actions as transitions)"),
        (8, 3, 0.99, 0.5, 1.0, 0.0, None, ""),
        (64, 2, 0.99, 0.02, 5.0, 50.0, None, " (CartPole)"),
        (16, 4, 0.99, 1e-3, 1e3, 0.0, None, ", Q-values near 1e3"),
        (6, 7, 0.5, 10, 3.0, 0, None, ""),
        (5, 3, 0.9, 0.3, 1.0, 0.0, (zero, one), f"{every} truncated by the time limit"),
        (5, 3, 0.9, 0.3, 1.0, 0.0, (one, zero), f"{every} terminated"),
        (1, 4, 0.99, 0.1, 1.0, 0.0, not_done, " (a single transition, not done)"),
    ):
        next_q, reward = _f32(offset + scale * rng.normal(size=(b, a))), _f32(rng.normal(size=b))
        args = (next_q, reward, *(flags or _flags(rng, b)), gamma, alpha)
        cases.append(Case(f"B={b}, A={a}{note}, gamma={gamma}, alpha={alpha:g}", args))
    return cases


def _target_diagnosis(actual, expected, case: Case) -> str | None:
    if actual.shape == (*expected.shape, 1):
        return "your target has shape (B, 1); reduce over the actions without keepdim: y is (B,)."
    if _overflow(actual, expected, case.args[0], case.args[5]):
        return (
            "your soft max overflowed: exp(Q / alpha) is inf for Q-values of 1e3 and alpha = 1e-3. "
            "Use torch.logsumexp (it subtracts the maximum first), not log(sum(exp(...)))."
        )
    return None


def _lse(outside, inside, dim=-1):
    """V = alpha**outside * logsumexp(Q * alpha**inside) along ``dim`` (the reference: 1, -1)."""
    return lambda q, a: a**outside * torch.logsumexp(q * a**inside, dim=dim)


SOFT_Q_TARGET = Exercise(
    id="6.1",
    check_name="check_soft_q_target",
    reference=reference_soft_q_target,
    cases=_target_cases,
    outputs=[Output("target y", 1e-5, 1e-4, tensor=_TENSOR)],
    diagnoses=[_target_diagnosis],
    mistakes=[
        Mistake(TRUNCATED, _y(mask="done")),
        Mistake(TRUNCATED, _y(mask="truncated")),
        Mistake(TERMINATED, _y(mask="none")),
        Mistake(
            "your mask is inverted: it bootstraps only where the episode terminated. Use "
            "(1 - terminated), not terminated.",
            _y(mask="inverted"),
        ),
        Mistake(HARD_MAX, _y(value=lambda q, a: q.max(dim=-1).values)),
        Mistake(
            "your target has shape (B, B): a (B, 1) tensor was broadcast against a (B,) one. Keep "
            "every term of y with shape (B,).",
            _y(value=lambda q, a: _lse(1, -1)(q, a)[:, None]),
        ),
        Mistake(f"you took the soft max over the wrong axis: {V}.", _y(value=_lse(1, -1, dim=0))),
        Mistake(
            "your target ignores the discount: y = r + gamma * (1 - terminated) * V(s').",
            _y(discount=False),
        ),
        Mistake(
            "you discounted the reward too: y = r + gamma * (1 - terminated) * V(s'), only the "
            "future is discounted.",
            _y(outer=True),
        ),
        Mistake("your target is missing the reward r.", _y(r=0.0)),
        Mistake(
            f"you averaged Q'(s', .) over actions; V(s') is a SOFT MAX: {V}.",
            _y(value=lambda q, a: q.mean(dim=-1)),
        ),
        Mistake(
            f"you computed log-MEAN-exp: {V} (a sum over actions, not a mean).",
            _y(value=lambda q, a: _lse(1, -1)(q, a) - a * math.log(q.shape[-1])),
        ),
        Mistake(f"your soft max ignores the temperature alpha: {V}.", _y(value=_lse(0, 0))),
        Mistake(f"you forgot to divide Q' by alpha inside the exp: {V}.", _y(value=_lse(1, 0))),
        Mistake(f"you forgot to multiply by alpha outside the log: {V}.", _y(value=_lse(0, -1))),
        Mistake(f"you multiplied Q' by alpha where you should divide: {V}.", _y(value=_lse(-1, 1))),
    ],
    grad=Grad(
        track=(0,),
        detached="your target still carries gradients (requires_grad=True). The target is a fixed "
        "regression label: return it .detach()ed (or compute it under torch.no_grad()), otherwise "
        "the loss would also move the target network.",
    ),
    success="the soft target matches the reference on {n} batches (terminated and truncated "
    "transitions, alpha from 1e-3 to 10, Q-values up to 1e3).",
)
check_soft_q_target = SOFT_Q_TARGET.check


# ----------------------------------------------------------------------- Exercise 6.2

SOFTMAX = "pi(a|s) = exp((Q(s, a) - V(s)) / alpha) = torch.softmax(Q / alpha, dim=-1)"


def _probs_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, shape, alpha, scale in (
        ("(B=6, A=3)", (6, 3), 1.0, 1.0),
        ("(4, 4) (as many actions as states)", (4, 4), 0.5, 1),
        ("(B=32, A=2) (CartPole)", (32, 2), 0.02, 0.5),
        ("(8, 5) with values near 1e3", (8, 5), 1e-3, 1e3),
        ("(A=4,) (one state)", (4,), 0.1, 1),
        ("(2, 3, 5) (two leading batch axes)", (2, 3, 5), 2.0, 1.0),
        ("(3, 3) with ties [[1, 1, 0], [2, 2, 2], [0, 5, 5]]", None, 0.3, 1.0),
        ("(5, 6)", (5, 6), 10.0, 3.0),
    ):
        ties = [[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 5.0, 5.0]]
        q = _f32(ties if shape is None else scale * rng.normal(size=shape))
        cases.append(Case(f"Q of shape {name}, alpha={alpha:g}", (q, alpha)))
    return cases


def _probs_diagnosis(actual, expected, case: Case) -> str | None:
    q, alpha = case.args
    if actual.shape == tuple(q.shape[:-1]):
        return "return one probability per action, shape (..., A) like Q, not one number per state."
    if _overflow(actual, expected, q, alpha):
        return (
            "your probabilities are NaN: exp(Q / alpha) overflows for Q-values of 1e3 and alpha = "
            "1e-3 (inf / inf). Subtract V(s) = alpha * torch.logsumexp(Q / alpha, dim=-1, "
            "keepdim=True) inside the exponential, or use torch.softmax(Q / alpha, dim=-1)."
        )
    return None


BOLTZMANN_PROBS = Exercise(
    id="6.2",
    check_name="check_boltzmann_probs",
    reference=reference_boltzmann_probs,
    cases=_probs_cases,
    outputs=[Output("probabilities", 1e-4, 1e-6, tensor=_TENSOR)],
    diagnoses=[_probs_diagnosis],
    mistakes=[
        Mistake(
            "you normalised over the wrong axis: the probabilities of the ACTIONS of each state sum "
            f"to one, so reduce over the last axis (dim=-1). {SOFTMAX}.",
            lambda q, a: torch.softmax(q / a, dim=0),
        ),
        Mistake(
            "you normalised over every entry at once: each state's row must sum to one (dim=-1).",
            lambda q, a: torch.softmax((q / a).flatten(), 0).view(q.shape),
        ),
        Mistake(
            "your policy is the greedy one-hot argmax (alpha -> 0). Soft Q-learning acts with the "
            f"Boltzmann policy {SOFTMAX}.",
            lambda q, a: F.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype),
        ),
        Mistake(
            "you returned log-probabilities (Q - V) / alpha; return the probabilities "
            "exp((Q - V) / alpha).",
            lambda q, a: torch.log_softmax(q / a, dim=-1),
        ),
        Mistake(
            "your probabilities are not normalised: divide by exp(V(s) / alpha), i.e. subtract "
            "V(s) = alpha * logsumexp(Q / alpha) inside the exponential.",
            lambda q, a: torch.exp(q / a),
        ),
        Mistake(
            f"your policy ignores the temperature alpha: {SOFTMAX}.", lambda q, a: q.softmax(-1)
        ),
        Mistake(
            f"you multiplied Q by alpha where you should divide: {SOFTMAX}.",
            lambda q, a: torch.softmax(q * a, dim=-1),
        ),
        Mistake(
            "the temperature is missing in the value or the exponent: with V = alpha * logsumexp(Q "
            "/ alpha), pi = exp((Q - V) / alpha); exp(Q - V) is not normalised.",
            lambda q, a: torch.exp(q - a * torch.logsumexp(q / a, -1, keepdim=True)),
        ),
    ],
    success="the Boltzmann policy matches the reference on {n} Q-tables (1 to 3 axes, ties, alpha "
    "from 1e-3 to 10, Q-values up to 1e3).",
)
check_boltzmann_probs = BOLTZMANN_PROBS.check


# ----------------------------------------------------------------------- Exercise 6.3


def _loss(net="target", taken="gather", loss="half_mean", grad=True, **target_knobs):
    """The loss with one knob changed (the defaults give the reference): the network and the
    knobs of the target (:func:`_y`), which Q is regressed, the loss, torch.no_grad()."""

    def loss_fn(q_net, target_net, batch, gamma, alpha):
        with torch.set_grad_enabled(grad):
            next_q = (target_net if net == "target" else q_net)(batch.next_obs)
            y = _y(**target_knobs)(next_q, *_flags_of(batch), gamma, alpha)
            q = q_net(batch.obs)
            gathered = q.gather(1, batch.actions[:, None])  # (B, 1)
            q_taken = {"max": q.max(1).values, "soft": losses.soft_value(q, alpha)}.get(
                taken, gathered if taken == "unsqueezed" else gathered.squeeze(1)
            )
            if loss == "huber":
                return F.smooth_l1_loss(q_taken, y)
            squares = (0.5 if loss.startswith("half") else 1.0) * (q_taken - y) ** 2
            return squares.sum() if loss.endswith("sum") else squares.mean()

    return loss_fn


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k, (b, obs_dim, a, gamma, alpha, note) in enumerate(
        (
            (32, 4, 2, 0.99, 0.02, " (CartPole-like)"),
            (8, 3, 5, 0.9, 1.0, ""),
            (5, 2, 5, 0.5, 0.3, " (as many actions as transitions)"),
            (12, 4, 3, 0.99, 1e-3, ""),
        )
    ):
        terminated, truncated = _flags(rng, b)
        obs, actions = _f32(rng.normal(size=(b, obs_dim))), torch.from_numpy(rng.integers(0, a, b))
        rewards, next_obs = _f32(rng.normal(size=b)), _f32(rng.normal(size=(b, obs_dim)))
        batch = TransitionBatch(obs, actions, rewards, next_obs, terminated, truncated)
        torch.manual_seed(k)  # the notebook's torch RNG after the check depends on these calls
        q_net = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, a))
        target_net = copy.deepcopy(q_net)  # a DIFFERENT target network
        with torch.no_grad():
            for p in target_net.parameters():
                p.add_(0.3 * torch.randn_like(p))
        name = f"a batch of B={b} transitions, obs_dim={obs_dim}, A={a}{note}, gamma={gamma}"
        cases.append(Case(f"{name}, alpha={alpha:g}", (q_net, target_net, batch, gamma, alpha)))
    return cases


def _loss_diagnosis(actual, expected, case: Case) -> str | None:
    if actual.shape != () and actual.size == 1:
        return (
            f"return the loss as a 0-d tensor (a scalar), got shape {actual.shape}; use .mean() "
            "over the batch."
        )
    if actual.shape == () and not np.isfinite(actual):
        return f"your loss is {float(actual)}. If the soft max overflows, use torch.logsumexp."
    return None


def _loss_formula(actual, expected, case: Case) -> str | None:
    if actual.shape:
        return None
    return (
        f"the loss does not match the reference: yours is {float(actual):.6g}, the reference is "
        f"{float(expected):.6g}. It is 0.5 * mean_i (Q(s_i, a_i) - y_i)^2 with y from your "
        "soft_q_target on target_net(batch.next_obs)."
    )


SQUARED = "0.5 * ((q_taken - y) ** 2).mean()"
SOFT_DQN_LOSS = Exercise(
    id="6.3",
    check_name="check_soft_dqn_loss",
    reference=reference_soft_dqn_loss,
    cases=_loss_cases,
    outputs=[Output("loss", 1e-5, 1e-6, tensor=_TENSOR)],
    diagnoses=[_loss_diagnosis],
    fallbacks=[_loss_formula],
    mistakes=[
        Mistake(
            "gradients flow into the target: compute the target under torch.no_grad() (or "
            ".detach() it), so that the loss trains Q_phi only.",
            _loss(keep=True),
        ),
        Mistake(
            "you computed the target with the ONLINE network q_net; the target uses the target "
            "network Q_phi'(s', .) = target_net(batch.next_obs), a frozen copy that changes only "
            "every N steps.",
            _loss(net="online"),
        ),
        Mistake(
            "you computed the target with the online network q_net and did not detach it; use "
            "target_net(batch.next_obs) under torch.no_grad().",
            _loss(net="online", keep=True),
        ),
        Mistake(
            "(Q - y) has shape (B, B): your Q(s, a) has shape (B, 1) and was broadcast against the "
            "(B,) target. Squeeze it: q.gather(1, actions.unsqueeze(1)).squeeze(1).",
            _loss(taken="unsqueezed"),
        ),
        Mistake(
            "you regressed max_a Q(s, a) onto the target; the loss uses Q(s, a) of the action a "
            "that was TAKEN (batch.actions): q.gather(1, actions.unsqueeze(1)).squeeze(1).",
            _loss(taken="max"),
        ),
        Mistake(
            "you regressed the soft value V(s) onto the target; the loss uses Q(s, a) of the "
            "action that was taken (batch.actions).",
            _loss(taken="soft"),
        ),
        Mistake(
            f"your loss is the mean of (Q - y)^2 without the factor 1/2 (e.g. F.mse_loss): use {SQUARED}.",
            _loss(loss="mean"),
        ),
        Mistake(
            "your loss SUMS over the batch, like the slides' update; this exercise takes the mean (so "
            f"that the learning rate does not depend on B): {SQUARED}.",
            _loss(loss="half_sum"),
        ),
        Mistake(f"your loss SUMS over the batch and lacks the 1/2: {SQUARED}.", _loss(loss="sum")),
        Mistake(
            "your loss is the Huber loss (F.smooth_l1_loss): valid in general (many DQNs use it, and "
            "so can the course's trainer), but this exercise asks for the squared soft Bellman "
            f"error L(phi) = {SQUARED}.",
            _loss(loss="huber"),
        ),
        Mistake(TERMINATED, _loss(mask="none")),
        Mistake(TRUNCATED, _loss(mask="done")),
        Mistake(HARD_MAX, _loss(value=lambda q, alpha: q.max(dim=-1).values)),
        Mistake(
            "your loss has no gradient (requires_grad=False): Q(s, a) must come from "
            "q_net(batch.obs) outside torch.no_grad(); only the target is detached.",
            _loss(grad=False),
        ),
    ],
    grad=Grad(
        track=(0, 1),
        needs={
            0: "the loss value is right but its gradient with respect to q_net is not: is "
            "something else detached, or computed outside the graph?"
        },
        leaks={
            1: "gradients reach the target network's parameters: compute the target under "
            "torch.no_grad() (or .detach() it), so that only q_net is trained."
        },
        rtol=1e-4,
        atol=1e-6,
    ),
    success="the soft DQN loss and its gradient match the reference on {n} batches, and no "
    "gradient reaches the target network.",
)
check_soft_dqn_loss = SOFT_DQN_LOSS.check


# ----------------------------------------------------------------------- Exercise 6.4


def reference_soft_dqn_update(q_net, target_net, optimizer, batch, gamma, alpha, huber):
    """One soft DQN gradient step on ``batch`` (a :class:`course_utils.rl.Batch`); returns the loss
    before the step. The reference is :func:`course_utils.rl.soft_dqn.soft_dqn_update`."""
    return soft_dqn_update(q_net, target_net, optimizer, batch, gamma, alpha, huber)


def _huber(error: torch.Tensor) -> torch.Tensor:
    return torch.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5)


def _update(
    *,
    net="target",
    keep=False,
    value=losses.soft_value,
    mask=True,
    taken="gather",
    loss=None,
    order="zbs",
    returns="before",
):
    """The reference update with one knob changed (the defaults give the reference): which network
    gives the target and whether it is detached, the soft value, the (1 - terminated) mask, which Q
    is regressed, the loss (None: Huber or half squared as ``huber`` says), the order of
    zero_grad (z), backward (b) and step (s), and which loss is returned."""

    def update(q_net, target_net, optimizer, batch, gamma, alpha, huber):
        with torch.set_grad_enabled(keep):
            next_q = (target_net if net == "target" else q_net)(batch.next_obs)
            done = batch.terminated if mask else torch.zeros_like(batch.terminated)
            y = batch.rewards + gamma * (1.0 - done) * value(next_q, alpha)
        q = q_net(batch.obs)
        gathered = q.gather(1, batch.actions[:, None])
        q_taken = {"max": q.max(1).values, "soft": losses.soft_value(q, alpha)}.get(
            taken, gathered if taken == "unsqueezed" else gathered.squeeze(1)
        )
        error = q_taken - y
        kind = loss or ("huber" if huber else "half_mean")
        out = {
            "huber": lambda: _huber(error).mean(),
            "half_mean": lambda: 0.5 * (error**2).mean(),
            "mean": lambda: (error**2).mean(),
            "half_sum": lambda: 0.5 * (error**2).sum(),
            "huber_sum": lambda: _huber(error).sum(),
        }[kind]()
        for action in order:
            {"z": optimizer.zero_grad, "b": out.backward, "s": optimizer.step}[action]()
        return out.detach()

    return update if returns == "before" else _loss_after(update)


def _loss_after(update):
    """The update, returning the loss recomputed after the step."""

    def fn(q_net, target_net, optimizer, batch, gamma, alpha, huber):
        update(q_net, target_net, optimizer, batch, gamma, alpha, huber)
        with torch.no_grad():
            next_q = target_net(batch.next_obs)
            y = losses.soft_q_target(next_q, batch.rewards, batch.terminated, gamma, alpha)
            q_taken = q_net(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
            return losses.q_learning_loss(q_taken, y, huber=huber)

    return fn


def _net(rng: np.random.Generator, obs_dim: int, a: int, hidden: int) -> nn.Module:
    torch.manual_seed(int(rng.integers(1 << 30)))
    return nn.Sequential(
        nn.Linear(obs_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, a),
    )


def _batch(rng: np.random.Generator, b: int, obs_dim: int, a: int, reward_scale: float) -> Batch:
    terminated, _ = _flags(rng, b)
    return Batch(
        _f32(rng.normal(size=(b, obs_dim))),
        torch.from_numpy(rng.integers(0, a, b)),
        _f32(reward_scale * rng.normal(size=b)),
        _f32(rng.normal(size=(b, obs_dim))),
        terminated,
    )


def _update_cases(rng: np.random.Generator) -> list[Case]:
    """Small Q-networks with a different target network and an optimizer; most hold the gradients
    of an earlier step in .grad (``stale_grads``, installed again after each copy), as in a loop.
    The notebook's torch random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _make_update_cases(rng)


def _make_update_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, b, obs_dim, a, gamma, alpha, huber, make, earlier, stale, scale in (
        (
            "CartPole-like, B=32, A=2, SGD(lr=0.1), Huber",
            32,
            4,
            2,
            0.99,
            0.3,
            True,
            lambda p: torch.optim.SGD(p, lr=0.1),
            0,
            True,
            3.0,
        ),
        (
            "B=16, A=3, SGD(lr=0.05), squared error",
            16,
            3,
            3,
            0.9,
            1.0,
            False,
            lambda p: torch.optim.SGD(p, lr=0.05),
            0,
            True,
            1.0,
        ),
        (
            "B=8, A=4, SGD(lr=0.05, momentum=0.9) after 2 steps, Huber, alpha=0.05",
            8,
            3,
            4,
            0.99,
            0.05,
            True,
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
            2,
            True,
            5.0,
        ),
        (
            "B=64, A=2, Adam(lr=1e-3) after 3 steps, Huber",
            64,
            4,
            2,
            0.99,
            0.3,
            True,
            lambda p: torch.optim.Adam(p, lr=1e-3),
            3,
            True,
            3.0,
        ),
        (
            "B=12, A=5, Adam(lr=1e-2) after 2 steps, squared error, alpha=2",
            12,
            2,
            5,
            0.95,
            2.0,
            False,
            lambda p: torch.optim.Adam(p, lr=1e-2),
            2,
            True,
            1.0,
        ),
        (
            "B=5, A=2, a new SGD(lr=0.1) (no gradients yet), squared error",
            5,
            4,
            2,
            0.5,
            0.3,
            False,
            lambda p: torch.optim.SGD(p, lr=0.1),
            0,
            False,
            1.0,
        ),
    ):
        q_net = _net(rng, obs_dim, a, 16)
        target_net = _net(rng, obs_dim, a, 16).requires_grad_(False)  # a DIFFERENT network
        optimizer = make(q_net.parameters())
        for _ in range(earlier):
            losses_batch = _batch(rng, b, obs_dim, a, scale)
            soft_dqn_update(q_net, target_net, optimizer, losses_batch, gamma, alpha, huber)
        if stale:  # the gradients of a step on another batch, left in .grad
            other = _batch(rng, b, obs_dim, a, scale)
            q_net.zero_grad()
            q_net(other.obs).pow(2).mean().backward()
            q_net.stale_grads = [p.grad.clone() for p in q_net.parameters()]
        suffix = "; .grad holds an earlier step's gradients" if stale else ""
        args = (
            q_net,
            target_net,
            optimizer,
            _batch(rng, b, obs_dim, a, scale),
            gamma,
            alpha,
            huber,
        )
        cases.append(Case(f"{name}, gamma={gamma}, alpha={alpha:g}, huber={huber}{suffix}", args))
    return cases


def _observe_update(fn, q_net, target_net, optimizer, batch, gamma, alpha, huber):
    """Run one update; returns (loss, change of q_net's parameters, change of target_net's)."""
    install_stale_gradients(q_net.parameters(), getattr(q_net, "stale_grads", None) or [])
    before = flat_parameters(q_net), flat_parameters(target_net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        loss = fn(q_net, target_net, optimizer, batch, gamma, alpha, huber)
    if isinstance(loss, torch.Tensor):
        loss = loss.detach().double().numpy() if loss.numel() == 1 else loss.detach().numpy()
    elif loss is not None and not isinstance(loss, (int, float, np.ndarray, np.floating)):
        loss = np.asarray(np.nan)
    return loss, flat_parameters(q_net) - before[0], flat_parameters(target_net) - before[1]


_UPDATE = """
target_moved: your update changed the target network's parameters. The target network Q_phi' is a
    frozen copy: the training loop refreshes it every N steps; the update must only read it (under
    torch.no_grad()) and step the optimizer of q_net.
hard_max: you used the hard max over next actions (the DQN target). Soft DQN bootstraps from the
    soft value V(s') = alpha * logsumexp(Q_phi'(s', .) / alpha).
online: you computed the target with the ONLINE network q_net; use the target network,
    target_net(batch.next_obs), a frozen copy that changes only every N steps.
residual: your target is computed with q_net and not detached, so the gradient also flows through
    y (a "residual gradient"). Compute y from target_net(batch.next_obs) under torch.no_grad().
no_mask: your target bootstraps through TERMINATED transitions: y = r + gamma * (1 - terminated) *
    V(s'); where the pole fell there is no future to value.
no_div: the temperature is misplaced: V(s') = alpha * logsumexp(Q'(s', .) / alpha); you did not
    divide Q' by alpha inside the logsumexp.
no_mul: the temperature is misplaced: V(s') = alpha * logsumexp(Q'(s', .) / alpha); you did not
    multiply by alpha outside the logsumexp.
inverted: the temperature is inverted: V(s') = alpha * logsumexp(Q'(s', .) / alpha), you multiplied
    Q' by alpha inside and divided outside.
max_taken: you regressed max_a Q(s, a) onto the target; the loss uses Q(s, a) of the action TAKEN
    in the transition: q.gather(1, batch.actions.unsqueeze(1)).squeeze(1).
soft_taken: you regressed the soft value V(s) onto the target; the loss uses Q(s, a) of the action
    taken (batch.actions).
unsqueezed: (Q - y) has shape (B, B): your Q(s, a) has shape (B, 1) and was broadcast against the
    (B,) target. Squeeze it: q.gather(1, actions.unsqueeze(1)).squeeze(1).
ignores_huber: your loss ignores the `huber` argument: with huber=True use the Huber loss (0.5 e^2
    for |e| < 1, |e| - 0.5 otherwise, e.g. F.smooth_l1_loss), with huber=False 0.5 * mean(e^2).
mse: your squared loss lacks the factor 1/2 (F.mse_loss is mean(e^2)): with huber=False the loss is
    0.5 * ((q_taken - y) ** 2).mean().
sum: your loss SUMS over the batch; take the mean, so that the step size does not depend on B.
no_zero_grad: you did not clear the gradients before loss.backward(): backward ADDS to .grad, so
    your step used this batch's gradient plus the earlier one. Call optimizer.zero_grad() first.
no_update: your update did not move q_net by this loss's gradient: call optimizer.zero_grad(),
    loss.backward() and optimizer.step(), in this order (zero_grad() between backward() and step()
    throws the gradient away; step() before backward() has none yet).
loss_after: return the loss of the batch BEFORE the step (the one you called backward on), not the
    loss recomputed after it.
"""
_U = messages(_UPDATE)


def _update_structure(actual, expected, case: Case) -> str | None:
    loss, _, target_change = actual
    if isinstance(target_change, np.ndarray) and np.abs(target_change).max() > 0:
        return _U["target_moved"]
    if isinstance(loss, np.ndarray) and loss.shape != ():
        return f"return the loss as one number (a 0-d tensor or a float), got shape {loss.shape}."
    return None


def _update_fallback(actual, expected, case: Case) -> str | None:
    loss = actual[0]
    if loss.shape == () and not np.isclose(loss, expected[0], rtol=1e-5, atol=1e-6):
        return (
            f"your loss is {float(loss):.6g}, the reference's {float(expected[0]):.6g}: y = r + gamma "
            "* (1 - terminated) * alpha * logsumexp(target_net(s') / alpha), Q(s, a) of the taken "
            "actions, then the Huber loss (huber=True) or 0.5 * mean((Q(s, a) - y)^2)."
        )
    return (
        "your loss is right, but q_net's parameters did not change as one step of the given "
        "optimizer on it changes them: call optimizer.zero_grad(), loss.backward() and "
        "optimizer.step() on the optimizer you were given (a new optimizer would lose Adam's or "
        "momentum's state), and keep the target out of the graph."
    )


SOFT_DQN_UPDATE = Exercise(
    id="6.4",
    check_name="check_soft_dqn_update",
    reference=reference_soft_dqn_update,
    cases=_update_cases,
    call=_observe_update,
    mutates=(0, 1, 2),
    outputs=[
        Output("loss", 1e-5, 1e-6),
        Output("change of q_net's parameters", 1e-4, 1e-7),
        Output("change of target_net's parameters", 0.0, 0.0),
    ],
    diagnoses=[_update_structure],
    mistakes=mistake_table(
        _UPDATE,
        hard_max=_update(value=lambda q, a: q.max(dim=-1).values),
        online=_update(net="online"),
        residual=_update(net="online", keep=True),
        no_mask=_update(mask=False),
        no_div=_update(value=_lse(1, 0)),
        no_mul=_update(value=_lse(0, -1)),
        inverted=_update(value=_lse(-1, 1)),
        max_taken=_update(taken="max"),
        soft_taken=_update(taken="soft"),
        unsqueezed=_update(taken="unsqueezed"),
        ignores_huber=(_update(loss="huber"), _update(loss="half_mean")),
        mse=_update(loss="mean"),
        sum=(_update(loss="half_sum"), _update(loss="huber_sum")),
        no_zero_grad=_update(order="bs"),
        no_update=(_update(order="zsb"), _update(order="bzs"), _update(order="zb")),
        loss_after=_update(returns="after"),
    ),
    fallbacks=[_update_fallback],
    success="one update matches the reference on {n} small Q-networks (SGD, momentum and Adam "
    "with state, stale gradients, Huber and squared error, alpha from 0.05 to 2); the target "
    "network is left alone.",
)
check_soft_dqn_update = SOFT_DQN_UPDATE.check
