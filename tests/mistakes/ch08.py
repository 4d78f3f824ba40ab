"""Plausible mistakes in chapter 08 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/08_maxent_irl.ipynb"
MISTAKES = [
    dict(
        exercise="8.1",
        name="first step's policy at every step",
        old='np.einsum("s,sa,sap->p", D[t], pi[t], P)',
        new='np.einsum("s,sa,sap->p", D[t], pi[0], P)',
        feedback="you used the first step's policy pi_0 at every step",
    ),
    dict(
        exercise="8.1",
        name="policy one step ahead",
        old='np.einsum("s,sa,sap->p", D[t], pi[t], P)',
        new='np.einsum("s,sa,sap->p", D[t], pi[t + 1], P)',
        feedback="your policy is one step ahead",
    ),
    dict(
        exercise="8.1",
        name="uniform start instead of p0",
        old="D[0] = p0",
        new="D[0] = 1.0 / P.shape[0]",
        feedback="your visitation starts from the uniform distribution",
    ),
    dict(
        exercise="8.1",
        name="slide-literal: policy exp(r) instead of exp(Q - V)",
        old="pi = np.exp((Q - V[..., None]) / alpha)",
        new="pi = np.broadcast_to(np.exp(R / alpha) / np.exp(R / alpha).sum(axis=1, keepdims=True), Q.shape)",
        feedback="Slide erratum",
    ),
    dict(
        exercise="8.1",
        name="policy not weighted in the forward recursion",
        old='np.einsum("s,sa,sap->p", D[t], pi[t], P)',
        new='np.einsum("s,sap->p", D[t], P)',
        feedback="sums to A^t",
    ),
    dict(
        exercise="8.2",
        name="gradient with the wrong sign",
        old="return (expert - model) / alpha",
        new="return (model - expert) / alpha",
        feedback="your gradient has the wrong sign",
    ),
    dict(
        exercise="8.2",
        name="temperature forgotten",
        old="return (expert - model) / alpha",
        new="return expert - model",
        feedback="you forgot to divide by the temperature alpha",
    ),
    dict(
        exercise="8.2",
        name="expert counts summed over demonstrations",
        old="features[expert_states].sum(axis=1).mean(axis=0)",
        new="features[expert_states].sum(axis=1).sum(axis=0)",
        feedback="you summed the expert's feature counts over the demonstrations",
    ),
    dict(
        exercise="8.3",
        name="gradient descent instead of ascent",
        old="theta = theta + lr * grad",
        new="theta = theta - lr * grad",
        feedback="you stepped *down* the gradient",
    ),
    dict(
        exercise="8.3",
        name="no early stopping",
        old="        if np.max(np.abs(grad)) < tol:\n            break\n",
        new="",
        feedback="you did not stop early",
    ),
    dict(
        exercise="8.3",
        name="gradient always evaluated at theta = 0",
        old="grad = irl_gradient(theta, P,",
        new="grad = irl_gradient(np.zeros(features.shape[1]), P,",
        feedback="you evaluated the gradient at theta = 0 every time",
    ),
    dict(
        exercise="8.3",
        name="one iteration too many",
        old="for _ in range(n_iters):",
        new="for _ in range(n_iters + 1):",
        feedback="you took one gradient step too many",
    ),
]
