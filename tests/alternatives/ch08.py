"""Correct answers to chapter 08, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="8.1",
        name="float32 inputs through backward_messages, float32 visitation",
        code="""
        P, R, p0 = (np.asarray(x, dtype=np.float32) for x in (P, R, p0))
        Q, V = backward_messages(P, R, horizon, alpha=alpha)
        pi = np.exp((Q - V[..., None]) / alpha).astype(np.float32)
        D = np.empty((horizon, P.shape[0]), dtype=np.float32)
        D[0] = p0
        for t in range(horizon - 1):
            D[t + 1] = np.einsum("s,sa,sap->p", D[t], pi[t], P)
        return D[:, :, None] * pi
    """,
    ),
    dict(
        exercise="8.1",
        name="torch float32 backward recursion with logsumexp and softmax",
        code="""
        import torch
        P, R, p0 = (torch.as_tensor(x, dtype=torch.float32) for x in (P, R, p0))
        Q = [R]
        for _ in range(horizon - 1):  # Q_t = R + E_{s'}[V_{t+1}(s')], V = alpha logsumexp(Q / alpha)
            Q.insert(0, R + P @ (alpha * torch.logsumexp(Q[0] / alpha, dim=-1)))
        pi = torch.softmax(torch.stack(Q) / alpha, dim=-1)
        D = [p0]
        for t in range(horizon - 1):
            D.append(torch.einsum("s,sa,sap->p", D[-1], pi[t], P))
        return torch.stack(D)[:, :, None] * pi
    """,
    ),
    dict(
        exercise="8.1",
        name="soft_policy and forward_messages of course_utils.inference",
        code="""
        Q, V = backward_messages(P, R, horizon, alpha=alpha)
        pi = soft_policy(Q, V, alpha)
        return forward_messages(P, pi, p0, horizon)[:, :, None] * pi
    """,
    ),
    dict(
        exercise="8.1",
        name="plain Python loops over states and actions",
        code="""
        Q, V = backward_messages(P, R, horizon, alpha=alpha)
        S, A = R.shape
        mu = np.zeros((horizon, S, A))
        D = np.array(p0, dtype=float)
        for t in range(horizon):
            nxt = np.zeros(S)
            for s in range(S):
                for a in range(A):
                    mu[t, s, a] = D[s] * np.exp((Q[t, s, a] - V[t, s]) / alpha)
                    nxt += mu[t, s, a] * P[s, a]
            D = nxt
        return mu
    """,
    ),
    dict(
        exercise="8.2",
        name="state marginals and loops over the demonstrations",
        code="""
        N, T = expert_states.shape
        R = np.tile((features @ theta)[:, None], (1, P.shape[1]))
        D = state_action_visitation(P, R, p0, T, alpha).sum(axis=2)   # (T, S)
        expert = np.zeros(features.shape[1])
        for demo in expert_states:
            for s in demo:
                expert += features[s] / N
        return (expert - D.sum(axis=0) @ features) / alpha
    """,
    ),
    dict(
        exercise="8.2",
        name="float32 feature counts",
        code="""
        features = np.asarray(features, dtype=np.float32)
        T = expert_states.shape[1]
        R = np.repeat((features @ theta.astype(np.float32))[:, None], P.shape[1], axis=1)
        mu = state_action_visitation(P, R, p0, T, alpha).astype(np.float32)
        expert = features[expert_states].sum(axis=1).mean(axis=0)
        model = mu.sum(axis=(0, 2)) @ features
        return (expert - model) / np.float32(alpha)
    """,
    ),
    dict(
        exercise="8.2",
        name="irl.feature_expectations and tensordot",
        code="""
        R = np.broadcast_to((features @ theta)[:, None], P.shape[:2])
        mu = state_action_visitation(P, R, p0, expert_states.shape[1], alpha)
        model = np.tensordot(mu.sum(axis=(0, 2)), features, axes=1)    # sum_t sum_(s,a) mu_t(s,a) f(s)
        return (irl.feature_expectations(features, expert_states) - model) / alpha
    """,
    ),
    dict(
        exercise="8.3",
        name="a while loop with an iteration counter",
        code="""
        theta = np.zeros(features.shape[1])
        it = 0
        while it < n_iters:
            grad = irl_gradient(theta, P, features, expert_states, p0, alpha)
            if np.linalg.norm(grad, ord=np.inf) < tol:
                break
            theta = theta + lr * grad
            it += 1
        return theta
    """,
    ),
    dict(
        exercise="8.3",
        name="in-place update and an early return",
        code="""
        theta = np.zeros(features.shape[1])
        for _ in range(n_iters):
            grad = irl_gradient(theta, P, features, expert_states, p0, alpha)
            if np.all(np.abs(grad) < tol):
                return theta
            theta += lr * grad
        return theta
    """,
    ),
    dict(
        exercise="8.3",
        name="the iterates kept in a list",
        code="""
        thetas = [np.zeros(features.shape[1])]
        for _ in range(n_iters):
            grad = irl_gradient(thetas[-1], P, features, expert_states, p0, alpha)
            if abs(grad).max() < tol:
                break
            thetas.append(thetas[-1] + lr * grad)
        return thetas[-1]
    """,
    ),
]
