"""Correct answers to chapter 05, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="5.2",
        name="torch in float64",
        code="""
        import torch
        Q = torch.as_tensor(R, dtype=torch.float64) + gamma * (
            torch.as_tensor(P, dtype=torch.float64) @ torch.as_tensor(V_next, dtype=torch.float64))
        return Q, alpha * torch.logsumexp(Q / alpha, dim=1)
    """,
    ),
    dict(
        exercise="5.2",
        name="loops over states and actions, a hand-written stable soft max",
        code="""
        S, A = R.shape
        Q = np.empty((S, A))
        V = np.empty(S)
        for s in range(S):
            for a in range(A):
                Q[s, a] = R[s, a] + gamma * np.dot(P[s, a], V_next)
            m = Q[s].max()
            V[s] = m + alpha * np.log(np.sum(np.exp((Q[s] - m) / alpha)))
        return Q, V
    """,
    ),
    dict(
        exercise="5.2",
        name="numpy in float32",
        code="""
        Q = (R + gamma * P @ V_next).astype(np.float32)
        return Q, (alpha * logsumexp(Q / np.float32(alpha), axis=1)).astype(np.float32)
    """,
    ),
    dict(
        exercise="5.3",
        name="its own backup and scipy.special.softmax for the policy",
        code="""
        from scipy.special import softmax
        V = np.zeros(len(P))
        for _ in range(max_iter):
            Q = R + gamma * np.einsum("sap,p->sa", P, V)
            V_new = alpha * logsumexp(Q / alpha, axis=1)
            done = np.abs(V_new - V).max() < tol
            V = V_new
            if done:
                break
        return Q, V, softmax(Q / alpha, axis=1)
    """,
    ),
    dict(
        exercise="5.3",
        name="a while loop in torch (float64), the policy as exp(log-softmax)",
        code="""
        import torch
        P_t = torch.as_tensor(P, dtype=torch.float64)
        R_t = torch.as_tensor(R, dtype=torch.float64)
        V = torch.zeros(P_t.shape[0], dtype=torch.float64)
        change, iterations = float("inf"), 0
        while change >= tol and iterations < max_iter:
            Q = R_t + gamma * P_t @ V
            V_new = alpha * torch.logsumexp(Q / alpha, dim=1)
            change, V, iterations = (V_new - V).abs().max().item(), V_new, iterations + 1
        return Q, V, torch.exp(torch.log_softmax(Q / alpha, dim=1))
    """,
    ),
    dict(
        exercise="5.3",
        name="the soft_bellman_backup of 5.1 with log-policy normalisation",
        code="""
        V = np.zeros(P.shape[0])
        for _ in range(max_iter):
            Q, V_new = soft_bellman_backup(P, R, V, gamma=gamma, alpha=alpha)
            if np.max(np.abs(V_new - V)) < tol:
                V = V_new
                break
            V = V_new
        log_pi = Q / alpha - logsumexp(Q / alpha, axis=1, keepdims=True)
        return Q, V, np.exp(log_pi)
    """,
    ),
    dict(
        exercise="5.4",
        name="matrix inverse and np.where for 0 log 0",
        code="""
        P_pi = (pi[:, :, None] * P).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            H = -np.where(pi > 0, pi * np.log(pi), 0.0).sum(axis=1)
        r_pi = (pi * R).sum(axis=1) + alpha * H
        return np.linalg.inv(np.eye(len(r_pi)) - gamma * P_pi) @ r_pi
    """,
    ),
    dict(
        exercise="5.4",
        name="iterative policy evaluation until convergence",
        code="""
        from scipy.special import xlogy
        r_pi = np.sum(pi * R, axis=1) - alpha * xlogy(pi, pi).sum(axis=1)
        P_pi = np.einsum("sa,sap->sp", pi, P)
        V = np.zeros(len(r_pi))
        for _ in range(100_000):
            V_new = r_pi + gamma * P_pi @ V
            if np.max(np.abs(V_new - V)) < 1e-12 * max(1.0, np.max(np.abs(V_new))):
                return V_new
            V = V_new
        return V
    """,
    ),
    dict(
        exercise="5.4",
        name="torch.linalg.solve in float64",
        code="""
        import torch
        pi_t = torch.as_tensor(pi, dtype=torch.float64)
        P_pi = torch.einsum("sa,sap->sp", pi_t, torch.as_tensor(P, dtype=torch.float64))
        H = torch.special.entr(pi_t).sum(dim=1)
        r_pi = (pi_t * torch.as_tensor(R, dtype=torch.float64)).sum(dim=1) + alpha * H
        return torch.linalg.solve(torch.eye(len(r_pi), dtype=torch.float64) - gamma * P_pi, r_pi)
    """,
    ),
    dict(
        exercise="5.4",
        name="numpy in float32",
        code="""
        pi32 = pi.astype(np.float32)
        P_pi = np.einsum("sa,sap->sp", pi32, P.astype(np.float32))
        r_pi = (pi32 * R.astype(np.float32)).sum(axis=1) + np.float32(alpha) * entr(pi32).sum(axis=1)
        return np.linalg.solve(np.eye(len(P), dtype=np.float32) - np.float32(gamma) * P_pi, r_pi)
    """,
    ),
    dict(
        exercise="5.1",
        name="the state marginals as a (T, S) table, then one sum",
        code="""
        S, A = R.shape
        pi = np.asarray(pi, dtype=float)
        pis = np.stack([pi] * horizon) if pi.ndim == 2 else pi[:horizon]
        marginals = np.zeros((horizon, S))
        marginals[0] = p0
        for t in range(horizon - 1):
            P_pi = np.einsum("sa,sap->sp", pis[t], P)   # the state-to-state matrix of step t
            marginals[t + 1] = marginals[t] @ P_pi
        log_pi = np.log(np.where(pis > 0, pis, 1.0))     # 0 log 0 = 0
        per_state = np.sum(pis * (R - alpha * log_pi), axis=2)
        return np.sum(marginals * per_state)
    """,
    ),
    dict(
        exercise="5.1",
        name="torch in float32, a backward recursion over values instead of a forward pass",
        code="""
        import torch
        P_t = torch.as_tensor(P, dtype=torch.float32)
        R_t = torch.as_tensor(R, dtype=torch.float32)
        pi_t = torch.as_tensor(np.asarray(pi), dtype=torch.float32)
        V = torch.zeros(R_t.shape[0])
        for t in reversed(range(horizon)):
            p = pi_t if pi_t.ndim == 2 else pi_t[t]
            H = -torch.special.xlogy(p, p).sum(dim=1)
            V = (p * (R_t + P_t @ V)).sum(dim=1) + alpha * H   # value of the remaining steps
        return torch.dot(torch.as_tensor(p0, dtype=torch.float32), V)
    """,
    ),
    dict(
        exercise="5.1",
        name="the library's forward messages",
        rename={"pi": "policy"},
        code="""
        D = inference.forward_messages(P, policy, p0, horizon)
        total = 0.0
        for t in range(horizon):
            p = policy if np.ndim(policy) == 2 else policy[t]
            total += D[t] @ (np.sum(p * R, axis=1) + alpha * entr(p).sum(axis=1))
        return total
    """,
    ),
    dict(
        exercise="5.5",
        name="a number typed with two digits",
        code="""
        answer_5_5 = 4.8
    """,
    ),
    dict(
        exercise="5.5",
        name="a numpy float32",
        code="""
        answer_5_5 = np.float32(0.3) * np.float32(np.log(5)) / np.float32(0.1)
    """,
    ),
]
