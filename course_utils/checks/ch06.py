"""Checks for chapter 06 (soft Q-learning).

Exercise 6.1 ``soft_q_target`` (the soft DQN target, bootstrapping through time-outs but not
through terminal states), 6.2 ``boltzmann_probs`` (the policy pi = exp((Q - V) / alpha)) and
6.3 ``soft_dqn_loss`` (the squared soft Bellman error of a mini-batch, with a detached target).

The references build on :mod:`course_utils.rl.losses` (``soft_q_target``, ``boltzmann_probs``,
``q_learning_loss``). The exercises see both flags that ``env.step`` returns, ``terminated``
and ``truncated`` (float tensors of 0.0 and 1.0), and must ignore ``truncated``: a transition
cut off by the time limit still has a future, so its target bootstraps. Every case mixes
terminated, truncated and ordinary transitions, so that both mistakes (bootstrapping through a
terminal state, stopping at a time-out) change the answer.

Every check runs the student's function on several fixed random batches: batch sizes 1 to 64,
two to seven actions (including as many actions as transitions, so that a reduction over the
wrong axis keeps the shape), temperatures from 1e-3 to 10 and Q-values up to 1e3. When an
answer is wrong, the typical mistakes are tried in turn to say which one it is.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from ..rl import losses
from . import (
    Case,
    ExerciseError,
    as_array,
    call_student,
    check_shape,
    compare_with_reference,
    passed,
)

__all__ = [
    "TransitionBatch",
    "check_soft_q_target",
    "check_boltzmann_probs",
    "check_soft_dqn_loss",
    "reference_soft_q_target",
    "reference_boltzmann_probs",
    "reference_soft_dqn_loss",
]

Mistakes = Sequence[tuple[str, Callable[[], Any]]]


class TransitionBatch(NamedTuple):
    """B transitions as tensors: obs (B, obs_dim), actions (B,) int64, rewards (B,),
    next_obs (B, obs_dim), terminated (B,) and truncated (B,) as float 0.0 / 1.0."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor


# ---------------------------------------------------------------------------------- references


def reference_soft_q_target(
    next_q: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    alpha: float,
) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * alpha * logsumexp(next_q / alpha), detached, (B,).

    ``truncated`` is deliberately unused: a time-out is not the end of the task.
    """
    del truncated
    return losses.soft_q_target(next_q, reward, terminated, gamma, alpha)


def reference_boltzmann_probs(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """pi(a|s) = exp((Q(s, a) - V(s)) / alpha) over the last axis, (..., A)."""
    return losses.boltzmann_probs(q, alpha)


def reference_soft_dqn_loss(
    q_net: nn.Module, target_net: nn.Module, batch: Any, gamma: float, alpha: float
) -> torch.Tensor:
    """0.5 * mean_i (Q_phi(s_i, a_i) - y_i)^2 with y from the target network, a 0-d tensor."""
    with torch.no_grad():
        target = reference_soft_q_target(
            target_net(batch.next_obs), batch.rewards, batch.terminated, batch.truncated, gamma, alpha
        )
    q_taken = q_net(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    return losses.q_learning_loss(q_taken, target)


# ---------------------------------------------------------------------------------- helpers


def _flags(rng: np.random.Generator, B: int) -> tuple[torch.Tensor, torch.Tensor]:
    """terminated and truncated (B,) with at least one of each (when B >= 3) and ordinary steps.

    Like gymnasium, a transition may be both (the pole falls on the last allowed step).
    """
    kind = rng.integers(0, 4, size=B)  # 0, 1: ordinary, 2: terminated, 3: truncated
    if B >= 3:
        kind[:3] = rng.permutation([0, 2, 3])
    terminated = (kind == 2).astype(np.float32)
    truncated = (kind == 3).astype(np.float32)
    if B >= 8:
        terminated[-1] = truncated[-1] = 1.0  # both at once
    return torch.from_numpy(terminated), torch.from_numpy(truncated)


def _target_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, B, A, gamma, alpha, scale=1.0, offset=0.0, terminated=None, truncated=None):
        next_q = torch.from_numpy((offset + scale * rng.normal(size=(B, A))).astype(np.float32))
        reward = torch.from_numpy(rng.normal(size=B).astype(np.float32))
        flags = _flags(rng, B)
        terminated = flags[0] if terminated is None else terminated
        truncated = flags[1] if truncated is None else truncated
        return Case(name, (next_q, reward, terminated, truncated), {"gamma": gamma, "alpha": alpha})

    ones, zeros = torch.ones(5), torch.zeros(5)
    return [
        case("B=5, A=5 (as many actions as transitions), gamma=0.9, alpha=0.7", 5, 5, 0.9, 0.7),
        case("a batch of B=8 transitions, A=3 actions, gamma=0.99, alpha=0.5", 8, 3, 0.99, 0.5),
        case("B=64, A=2 (CartPole), gamma=0.99, alpha=0.02", 64, 2, 0.99, 0.02, scale=5.0, offset=50.0),
        case("B=16, A=4, Q-values near 1e3, gamma=0.99, alpha=1e-3", 16, 4, 0.99, 1e-3, scale=1e3),
        case("B=6, A=7, gamma=0.5, alpha=10", 6, 7, 0.5, 10.0, scale=3.0),
        case("B=5, A=3, every transition truncated by the time limit (terminated=0), gamma=0.9, "
             "alpha=0.3", 5, 3, 0.9, 0.3, terminated=zeros, truncated=ones),
        case("B=5, A=3, every transition terminated, gamma=0.9, alpha=0.3", 5, 3, 0.9, 0.3,
             terminated=ones, truncated=zeros),
        case("a single transition (B=1, A=4), not done, gamma=0.99, alpha=0.1", 1, 4, 0.99, 0.1,
             terminated=torch.zeros(1), truncated=torch.zeros(1)),
    ]


def _close(actual: np.ndarray, candidate: Any, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    if candidate is None:
        return False
    if hasattr(candidate, "detach"):
        candidate = candidate.detach().cpu().numpy()
    candidate = np.asarray(candidate, dtype=float)
    if candidate.shape != actual.shape or not np.isfinite(candidate).all():
        return False
    return bool(np.allclose(actual, candidate, rtol=rtol, atol=atol))


def _first_mistake(actual: np.ndarray, mistakes: Mistakes, **tolerance) -> str | None:
    for message, make in mistakes:
        try:
            with torch.no_grad(), np.errstate(all="ignore"):
                candidate = make()
        except (TypeError, ValueError, RuntimeError, IndexError):
            continue
        if _close(actual, candidate, **tolerance):
            return message
    return None


def _require_tensor(exercise: str, value: Any, name: str, context: str) -> None:
    __tracebackhide__ = True
    if value is not None and not isinstance(value, torch.Tensor):
        raise ExerciseError(
            f"Exercise {exercise}: return the {name} as a torch tensor (the training loop does "
            f"torch arithmetic and backpropagation with it); got {type(value).__name__} "
            f"(input: {context}). Use torch functions (torch.logsumexp, torch.exp) on the tensors."
        )


def _require_callable(exercise: str, fn: Any, case: Case) -> None:
    __tracebackhide__ = True
    if not callable(fn):
        call_student(exercise, fn, case)


def _overflowed(actual: np.ndarray, expected: np.ndarray) -> bool:
    return bool((~np.isfinite(actual) & np.isfinite(expected)).any())


# ---------------------------------------------------------------------------------- Exercise 6.1

SOFT_VALUE = "V(s') = alpha * logsumexp(Q'(s', .) / alpha) over the actions (dim=-1)"
THROUGH_TERMINATED = (
    "your target bootstraps through TERMINATED transitions. When the episode terminated "
    "(the pole fell), there is no next state to value: y = r + gamma * (1 - terminated) * V(s')."
)
TRUNCATED_AS_TERMINAL = (
    "your target treats TRUNCATED transitions (time-outs) as terminal. A time limit cuts the "
    "episode, not the task: s' still has a future, so bootstrap there. Multiply by "
    "(1 - terminated) only; `truncated` must not change the target."
)
INVERTED_MASK = (
    "your mask is inverted: it bootstraps only where the episode terminated. "
    "Use (1 - terminated), not terminated."
)
HARD_MAX_TARGET = (
    "you used the hard max over next actions (the DQN target). Soft Q-learning uses the soft max "
    + SOFT_VALUE + ", e.g. alpha * torch.logsumexp(next_q / alpha, dim=-1)."
)
OVERFLOW_TARGET = (
    "your soft max overflowed: exp(Q / alpha) is inf for Q-values of 1e3 and alpha = 1e-3. "
    "Use torch.logsumexp (it subtracts the maximum first), not log(sum(exp(...)))."
)
NOT_DETACHED = (
    "your target still carries gradients (requires_grad=True). The target is a fixed regression "
    "label: return it .detach()ed (or compute it under torch.no_grad()), otherwise the loss would "
    "also move the target network."
)


def _soft_value(q: torch.Tensor, alpha: float, dim: int = -1) -> torch.Tensor:
    return alpha * torch.logsumexp(q / alpha, dim=dim)


def _target_mistakes(case: Case) -> Mistakes:
    next_q, r, term, trunc = case.args
    gamma, alpha = case.kwargs["gamma"], case.kwargs["alpha"]
    V = _soft_value(next_q, alpha)
    done = torch.clamp(term + trunc, max=1.0)
    mistakes: list[tuple[str, Callable[[], Any]]] = []
    if trunc.any():
        mistakes += [
            (TRUNCATED_AS_TERMINAL, lambda: r + gamma * (1 - done) * V),
            (TRUNCATED_AS_TERMINAL, lambda: r + gamma * (1 - trunc) * V),
        ]
    if term.any():
        mistakes += [
            (THROUGH_TERMINATED, lambda: r + gamma * V),
            (INVERTED_MASK, lambda: r + gamma * term * V),
        ]
    mistakes += [
        (HARD_MAX_TARGET, lambda: r + gamma * (1 - term) * next_q.max(dim=-1).values),
        ("you took the soft max over the wrong axis: " + SOFT_VALUE + ", not over the batch.",
         lambda: r + gamma * (1 - term) * _soft_value(next_q, alpha, dim=0)),
        ("your target ignores the discount: y = r + gamma * (1 - terminated) * V(s').",
         lambda: r + (1 - term) * V if gamma != 1 else None),
        ("you discounted the reward too: y = r + gamma * (1 - terminated) * V(s'), "
         "only the future is discounted.", lambda: gamma * (r + (1 - term) * V)),
        ("your target is missing the reward r.", lambda: gamma * (1 - term) * V),
        ("you averaged Q'(s', .) over actions; V(s') is a SOFT MAX: " + SOFT_VALUE + ".",
         lambda: r + gamma * (1 - term) * next_q.mean(dim=-1)),
        ("you computed log-MEAN-exp: " + SOFT_VALUE + " (a sum over actions, not a mean).",
         lambda: r + gamma * (1 - term) * (V - alpha * np.log(next_q.shape[-1]))),
    ]
    if alpha != 1.0:
        mistakes += [
            ("your soft max ignores the temperature alpha: " + SOFT_VALUE + ".",
             lambda: r + gamma * (1 - term) * torch.logsumexp(next_q, dim=-1)),
            ("you forgot to divide Q' by alpha inside the exponential: " + SOFT_VALUE + ".",
             lambda: r + gamma * (1 - term) * alpha * torch.logsumexp(next_q, dim=-1)),
            ("you forgot to multiply by alpha outside the log: " + SOFT_VALUE + ".",
             lambda: r + gamma * (1 - term) * torch.logsumexp(next_q / alpha, dim=-1)),
            ("you multiplied Q' by alpha where you should divide: " + SOFT_VALUE + ".",
             lambda: r + gamma * (1 - term) * torch.logsumexp(next_q * alpha, dim=-1) / alpha),
        ]
    return mistakes


def _diagnose_target(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    next_q = case.args[0]
    B, A = next_q.shape
    if actual.shape == (B, 1):
        return ("your target has shape (B, 1); reduce over the actions without keepdim so that "
                "y has shape (B,) like the rewards.")
    if actual.shape == (B, B) and B > 1:
        return ("your target has shape (B, B): a (B, 1) tensor was broadcast against a (B,) one. "
                "Keep every term of y with shape (B,).")
    if actual.shape == (A,) and A != B:
        return ("you took the soft max over the batch axis (dim=0); " + SOFT_VALUE + ".")
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        return OVERFLOW_TARGET if next_q.abs().max() / case.kwargs["alpha"] > 80 else None
    return _first_mistake(actual, _target_mistakes(case))


def check_soft_q_target(soft_q_target: Callable, seed: int = 0) -> None:
    """Exercise 6.1: ``soft_q_target(next_q, reward, terminated, truncated, gamma, alpha) -> y (B,)``."""
    __tracebackhide__ = True
    cases = _target_cases(np.random.default_rng(seed))
    _require_callable("6.1", soft_q_target, cases[0])
    for case in cases:
        compare_with_reference(
            "6.1", soft_q_target, reference_soft_q_target, [case],
            name="target y", rtol=1e-5, atol=1e-4, diagnose=_diagnose_target,
        )
        # a tensor, and no gradient through the target
        grad_case = Case(case.name, (case.args[0].clone().requires_grad_(True), *case.args[1:]), case.kwargs)
        out = call_student("6.1", soft_q_target, grad_case)
        _require_tensor("6.1", out, "target y", case.name)
        if out.requires_grad:
            raise ExerciseError(f"Exercise 6.1: {NOT_DETACHED} (input: {case.name})")
    n = len(cases)
    passed("6.1", f"the soft target matches the reference on {n} batches (terminated and "
                  "truncated transitions, alpha from 1e-3 to 10, Q-values up to 1e3).")


# ---------------------------------------------------------------------------------- Exercise 6.2


def _probs_cases(rng: np.random.Generator) -> list[Case]:
    def case(name, shape, alpha, scale=1.0):
        q = torch.from_numpy((scale * rng.normal(size=shape)).astype(np.float32))
        return Case(name, (q, alpha))

    ties = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 5.0, 5.0]])
    return [
        case("Q of shape (B=6, A=3), alpha=1", (6, 3), 1.0),
        case("Q of shape (4, 4) (as many actions as states), alpha=0.5", (4, 4), 0.5),
        case("Q of shape (B=32, A=2) (CartPole), alpha=0.02", (32, 2), 0.02, scale=0.5),
        case("Q of shape (8, 5) with values near 1e3, alpha=1e-3", (8, 5), 1e-3, scale=1e3),
        case("one state: Q of shape (A=4,), alpha=0.1", (4,), 0.1),
        case("Q of shape (2, 3, 5) (two leading batch axes), alpha=2", (2, 3, 5), 2.0),
        Case("tied Q-values [[1, 1, 0], [2, 2, 2], [0, 5, 5]], alpha=0.3", (ties, 0.3)),
        case("Q of shape (5, 6), alpha=10", (5, 6), 10.0, scale=3.0),
    ]


SOFTMAX = "pi(a|s) = exp((Q(s, a) - V(s)) / alpha) = torch.softmax(Q / alpha, dim=-1)"


def _probs_mistakes(case: Case) -> Mistakes:
    q, alpha = case.args
    mistakes: list[tuple[str, Callable[[], Any]]] = [
        ("you normalised over the wrong axis: the probabilities of the ACTIONS of each state must "
         "sum to one, so reduce over the last axis (dim=-1). " + SOFTMAX + ".",
         lambda: torch.softmax(q / alpha, dim=0) if q.ndim > 1 else None),
        ("you normalised over every entry at once: each state's row must sum to one (dim=-1).",
         lambda: torch.softmax((q / alpha).flatten(), 0).reshape(q.shape) if q.ndim > 1 else None),
        ("your policy is the greedy one-hot argmax (alpha -> 0). Soft Q-learning acts with the "
         "Boltzmann policy " + SOFTMAX + ".",
         lambda: nn.functional.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype)),
        ("you returned log-probabilities (Q - V) / alpha; return the probabilities exp((Q - V) / alpha).",
         lambda: torch.log_softmax(q / alpha, dim=-1)),
        ("your probabilities are not normalised: divide by exp(V(s) / alpha), i.e. subtract "
         "V(s) = alpha * logsumexp(Q / alpha) inside the exponential.",
         lambda: torch.exp(q / alpha)),
    ]
    if alpha != 1.0:
        mistakes += [
            ("your policy ignores the temperature alpha: " + SOFTMAX + ".",
             lambda: torch.softmax(q, dim=-1)),
            ("you multiplied Q by alpha where you should divide: " + SOFTMAX + ".",
             lambda: torch.softmax(q * alpha, dim=-1)),
            ("the temperature is missing in the value or the exponent: with V = alpha * logsumexp(Q / "
             "alpha), pi = exp((Q - V) / alpha); exp(Q - V) is not normalised.",
             lambda: torch.exp(q - alpha * torch.logsumexp(q / alpha, -1, keepdim=True))),
        ]
    return mistakes


def _diagnose_probs(actual: np.ndarray, expected: np.ndarray, case: Case) -> str | None:
    q, alpha = case.args
    if actual.shape == tuple(q.shape[:-1]):
        return ("return one probability per action, shape (..., A) like Q, not one number per state.")
    if actual.shape != expected.shape:
        return None
    if _overflowed(actual, expected):
        if q.abs().max() / alpha > 80:
            return ("your probabilities are NaN: exp(Q / alpha) overflows for Q-values of 1e3 and "
                    "alpha = 1e-3 (inf / inf). Subtract V(s) = alpha * torch.logsumexp(Q / alpha, "
                    "dim=-1, keepdim=True) inside the exponential, or use torch.softmax(Q / alpha, dim=-1).")
        return None
    return _first_mistake(actual, _probs_mistakes(case))


def check_boltzmann_probs(boltzmann_probs: Callable, seed: int = 0) -> None:
    """Exercise 6.2: ``boltzmann_probs(q, alpha) -> pi`` with the shape of ``q`` (..., A)."""
    __tracebackhide__ = True
    cases = _probs_cases(np.random.default_rng(seed))
    _require_callable("6.2", boltzmann_probs, cases[0])
    for case in cases:
        _require_tensor("6.2", call_student("6.2", boltzmann_probs, case), "probabilities", case.name)
    n = compare_with_reference(
        "6.2", boltzmann_probs, reference_boltzmann_probs, cases,
        name="probabilities", rtol=1e-4, atol=1e-6, diagnose=_diagnose_probs,
    )
    passed("6.2", f"the Boltzmann policy matches the reference on {n} Q-tables (1 to 3 axes, "
                  "ties, alpha from 1e-3 to 10, Q-values up to 1e3).")


# ---------------------------------------------------------------------------------- Exercise 6.3


def _networks(obs_dim: int, n_actions: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """A small Q-network and a DIFFERENT target network, both with requires_grad=True."""
    torch.manual_seed(seed)
    q_net = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, n_actions))
    target_net = copy.deepcopy(q_net)
    with torch.no_grad():
        for p in target_net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return q_net, target_net


def _batch(rng: np.random.Generator, B: int, obs_dim: int, n_actions: int) -> TransitionBatch:
    terminated, truncated = _flags(rng, B)
    return TransitionBatch(
        obs=torch.from_numpy(rng.normal(size=(B, obs_dim)).astype(np.float32)),
        actions=torch.from_numpy(rng.integers(0, n_actions, size=B).astype(np.int64)),
        rewards=torch.from_numpy(rng.normal(size=B).astype(np.float32)),
        next_obs=torch.from_numpy(rng.normal(size=(B, obs_dim)).astype(np.float32)),
        terminated=terminated,
        truncated=truncated,
    )


def _loss_cases(rng: np.random.Generator, seed: int) -> list[tuple[str, tuple, dict]]:
    specs = [  # name, B, obs_dim, n_actions, gamma, alpha
        ("a batch of B=32 CartPole-like transitions (obs_dim=4, A=2), gamma=0.99, alpha=0.02", 32, 4, 2, 0.99, 0.02),
        ("B=8, obs_dim=3, A=5, gamma=0.9, alpha=1", 8, 3, 5, 0.9, 1.0),
        ("B=5, obs_dim=2, A=5 (as many actions as transitions), gamma=0.5, alpha=0.3", 5, 2, 5, 0.5, 0.3),
        ("B=12, obs_dim=4, A=3, gamma=0.99, alpha=1e-3", 12, 4, 3, 0.99, 1e-3),
    ]
    out = []
    for k, (name, B, obs_dim, A, gamma, alpha) in enumerate(specs):
        out.append((name, (B, obs_dim, A, seed + k, _batch(rng, B, obs_dim, A)), {"gamma": gamma, "alpha": alpha}))
    return out


def _run_loss(fn: Callable, spec: tuple, kwargs: dict, name: str | None = None) -> tuple[Any, nn.Module, nn.Module]:
    """Call ``fn`` on fresh networks and a copy of the batch; returns (loss, q_net, target_net).

    With ``name`` (the student's function), errors are turned into feedback by ``call_student``.
    """
    B, obs_dim, A, net_seed, batch = spec
    q_net, target_net = _networks(obs_dim, A, net_seed)
    batch = TransitionBatch(*(t.clone() for t in batch))

    def run():
        return fn(q_net, target_net, batch, **kwargs)

    run.__name__ = getattr(fn, "__name__", type(fn).__name__)
    loss = run() if name is None else call_student("6.3", run, Case(name))
    return loss, q_net, target_net


def _grads(net: nn.Module) -> np.ndarray:
    return np.concatenate([
        (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten().numpy()
        for p in net.parameters()
    ])


def _loss_variants(spec: tuple, kwargs: dict) -> Mistakes:
    """Typical wrong losses, as functions of (q_net, target_net, batch) like the student's."""
    gamma, alpha = kwargs["gamma"], kwargs["alpha"]

    def variant(taken="gather", target_from="target", detach=True, reduce="half_mean", mask="terminated"):
        def loss_fn(q_net, target_net, batch, gamma=gamma, alpha=alpha):
            net = target_net if target_from == "target" else q_net
            next_q = net(batch.next_obs)
            if detach:
                next_q = next_q.detach()
            m = {"terminated": batch.terminated, "none": torch.zeros_like(batch.terminated),
                 "done": torch.clamp(batch.terminated + batch.truncated, max=1.0)}[mask]
            y = batch.rewards + gamma * (1 - m) * _soft_value(next_q, alpha)
            q = q_net(batch.obs)
            if taken == "gather":
                q_taken = q.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
                err = q_taken - y
            elif taken == "max":
                err = q.max(dim=1).values - y
            elif taken == "soft":
                err = _soft_value(q, alpha) - y
            else:  # "unsqueezed": (B, 1) - (B,) broadcasts to (B, B)
                err = q.gather(1, batch.actions.unsqueeze(1)) - y
            sq = err.pow(2)
            return {"half_mean": 0.5 * sq.mean(), "mean": sq.mean(), "half_sum": 0.5 * sq.sum(),
                    "sum": sq.sum()}[reduce]
        return loss_fn

    return [
        ("gradients flow into the target: compute the target under torch.no_grad() (or .detach() "
         "it), so that the loss trains Q_phi only.", variant(target_from="target", detach=False)),
        ("you computed the target with the ONLINE network q_net; the target uses the target network "
         "Q_phi'(s', .) = target_net(batch.next_obs), a frozen copy that changes only every N steps.",
         variant(target_from="online")),
        ("you computed the target with the online network q_net and did not detach it; use "
         "target_net(batch.next_obs) under torch.no_grad().", variant(target_from="online", detach=False)),
        ("(Q - y) has shape (B, B): your Q(s, a) has shape (B, 1) and was broadcast against the "
         "(B,) target. Squeeze it: q.gather(1, actions.unsqueeze(1)).squeeze(1).",
         variant(taken="unsqueezed")),
        ("you regressed max_a Q(s, a) onto the target; the loss uses Q(s, a) of the action a that "
         "was TAKEN (batch.actions): q.gather(1, batch.actions.unsqueeze(1)).squeeze(1).",
         variant(taken="max")),
        ("you regressed the soft value V(s) onto the target; the loss uses Q(s, a) of the action "
         "that was taken (batch.actions).", variant(taken="soft")),
        ("your loss is the mean of (Q - y)^2 without the factor 1/2 (e.g. F.mse_loss): use "
         "0.5 * ((q_taken - y) ** 2).mean().", variant(reduce="mean")),
        ("your loss SUMS over the batch; take the mean: 0.5 * ((q_taken - y) ** 2).mean().",
         variant(reduce="half_sum")),
        ("your loss SUMS over the batch and lacks the 1/2: 0.5 * ((q_taken - y) ** 2).mean().",
         variant(reduce="sum")),
        (THROUGH_TERMINATED, variant(mask="none")),
        (TRUNCATED_AS_TERMINAL, variant(mask="done")),
    ]


def check_soft_dqn_loss(soft_dqn_loss: Callable, seed: int = 0) -> None:
    """Exercise 6.3: ``soft_dqn_loss(q_net, target_net, batch, gamma, alpha) -> loss`` (0-d tensor).

    Checks the value, the gradient with respect to the Q-network's parameters, and that no
    gradient reaches the target network.
    """
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    cases = _loss_cases(rng, seed)
    _require_callable("6.3", soft_dqn_loss, Case(cases[0][0]))
    for name, spec, kwargs in cases:
        loss, q_net, target_net = _run_loss(soft_dqn_loss, spec, kwargs, name)
        _require_tensor("6.3", loss, "loss", name)
        loss_arr = as_array("6.3", loss, "loss")
        ref_loss, ref_q, ref_target = _run_loss(reference_soft_dqn_loss, spec, kwargs)
        variants = _loss_variants(spec, kwargs)

        def diagnose(check_gradients: bool) -> str | None:
            for message, fn in variants:
                try:
                    v_loss, v_q, v_target = _run_loss(fn, spec, kwargs)
                except RuntimeError:
                    continue
                if not _close(loss_arr, v_loss):
                    continue
                if check_gradients:
                    if v_loss.requires_grad:
                        v_loss.backward()
                    if not (_close(_grads(q_net), _grads(v_q)) and _close(_grads(target_net), _grads(v_target))):
                        continue
                return message
            return None

        if loss_arr.shape != ():
            if loss_arr.size == 1:
                raise ExerciseError(f"Exercise 6.3: return the loss as a 0-d tensor (a scalar), got "
                                    f"shape {tuple(loss_arr.shape)}; use .mean() over the batch. (input: {name})")
            message = diagnose(check_gradients=False)
            if message:
                raise ExerciseError(f"Exercise 6.3: {message} (input: {name})")
            check_shape("6.3", loss_arr, (), "loss", name)
        if not np.isfinite(loss_arr):
            raise ExerciseError(f"Exercise 6.3: your loss is {float(loss_arr)} (input: {name}). "
                                "If the soft max overflows, use torch.logsumexp.")
        if not loss.requires_grad:
            raise ExerciseError(
                "Exercise 6.3: your loss has no gradient (requires_grad=False): Q(s, a) must come "
                f"from q_net(batch.obs) outside torch.no_grad(); only the target is detached. (input: {name})"
            )
        loss.backward()
        ref_loss.backward()
        target_leak = np.abs(_grads(target_net)).max() > 0
        value_ok = _close(loss_arr, ref_loss, rtol=1e-5, atol=1e-6)
        grads_ok = _close(_grads(q_net), _grads(ref_q), rtol=1e-4, atol=1e-6)
        if value_ok and grads_ok and not target_leak:
            continue
        message = diagnose(check_gradients=True)
        if message is None and target_leak:
            message = ("gradients reach the target network's parameters: compute the target under "
                       "torch.no_grad() (or .detach() it), so that only q_net is trained.")
        if message is None and value_ok:
            message = ("the loss value is right but its gradient with respect to q_net is not: "
                       "is something else detached, or computed outside the graph?")
        if message is None:
            message = (f"the loss does not match the reference: yours is {float(loss_arr):.6g}, the "
                       f"reference is {ref_loss.item():.6g}. It is 0.5 * mean_i (Q(s_i, a_i) - y_i)^2 "
                       "with y from your soft_q_target on target_net(batch.next_obs).")
        raise ExerciseError(f"Exercise 6.3: {message} (input: {name})")
    passed("6.3", f"the soft DQN loss and its gradient match the reference on {len(cases)} batches, "
                  "and no gradient reaches the target network.")
