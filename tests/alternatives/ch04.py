"""Correct answers to chapter 04, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="4.1",
        name="explicit loops over states, actions and next states",
        code="""
        S, A = R.shape
        beta_sa = np.zeros((horizon, S, A))
        beta_s = np.zeros((horizon, S))
        for t in reversed(range(horizon)):
            for s in range(S):
                for a in range(A):
                    future = 1.0 if t == horizon - 1 else sum(
                        P[s, a, s2] * beta_s[t + 1, s2] for s2 in range(S))
                    beta_sa[t, s, a] = np.exp(R[s, a]) * future
            beta_s[t] = beta_sa[t].sum(axis=1)
        return beta_sa, beta_s
    """,
    ),
    dict(
        exercise="4.1",
        name="torch in float32",
        code="""
        import torch
        P32 = torch.as_tensor(P, dtype=torch.float32)
        factor = torch.exp(torch.as_tensor(R, dtype=torch.float32))
        beta_sa = [factor]
        for _ in range(horizon - 1):
            beta_sa.insert(0, factor * (P32 @ beta_sa[0].sum(dim=1)))
        beta_sa = torch.stack(beta_sa)
        return beta_sa, beta_sa.sum(dim=-1)
    """,
    ),
    dict(
        exercise="4.1",
        name="exp of log-space messages (scipy.special.logsumexp with weights b=P)",
        code="""
        S, A = R.shape
        Q = np.empty((horizon, S, A))
        V = np.empty((horizon, S))
        Q[-1] = R
        V[-1] = logsumexp(R, axis=1)
        for t in range(horizon - 2, -1, -1):
            Q[t] = R + logsumexp(np.broadcast_to(V[t + 1], P.shape), b=P, axis=2)
            V[t] = logsumexp(Q[t], axis=1)
        return np.exp(Q), np.exp(V)
    """,
    ),
    dict(
        exercise="4.2",
        name="torch.logsumexp in float64",
        code="""
        import torch
        P_t = torch.as_tensor(P, dtype=torch.float64)
        R_t = torch.as_tensor(R, dtype=torch.float64)
        log_P = torch.log(P_t)                       # log 0 = -inf, which logsumexp handles
        Qs = [R_t]
        Vs = [alpha * torch.logsumexp(R_t / alpha, dim=1)]
        for _ in range(horizon - 1):
            Q = R_t + alpha * torch.logsumexp(log_P + Vs[0] / alpha, dim=2)
            Qs.insert(0, Q)
            Vs.insert(0, alpha * torch.logsumexp(Q / alpha, dim=1))
        return torch.stack(Qs), torch.stack(Vs)
    """,
    ),
    dict(
        exercise="4.2",
        name="scipy.special.logsumexp with weights b=P, a loop over actions",
        code="""
        S, A = R.shape
        Q = np.empty((horizon, S, A))
        V = np.empty((horizon, S))
        Q[-1] = R
        for t in range(horizon - 1, -1, -1):
            if t < horizon - 1:
                for a in range(A):
                    Q[t, :, a] = R[:, a] + alpha * logsumexp(
                        np.tile(V[t + 1] / alpha, (S, 1)), b=P[:, a, :], axis=1)
            V[t] = alpha * logsumexp(Q[t] / alpha, axis=1)
        return Q, V
    """,
    ),
    dict(
        exercise="4.2",
        name="a hand-written stable soft max (max subtracted per row)",
        code="""
        def soft(x, axis):
            m = x.max(axis=axis, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            with np.errstate(divide="ignore"):
                return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis)

        with np.errstate(divide="ignore"):
            log_P = np.log(P)
        Q = [np.asarray(R, dtype=float)]
        V = [alpha * soft(Q[0] / alpha, 1)]
        for _ in range(horizon - 1):
            Q.insert(0, R + alpha * soft(log_P + V[0] / alpha, 2))
            V.insert(0, alpha * soft(Q[0] / alpha, 1))
        return np.array(Q), np.array(V)
    """,
    ),
    dict(
        exercise="4.3",
        name="torch.logsumexp over two dimensions",
        code="""
        import torch
        log_P = torch.log(torch.as_tensor(P, dtype=torch.float64))
        R_t = torch.as_tensor(R, dtype=torch.float64)
        log_alpha = [torch.log(torch.as_tensor(p0, dtype=torch.float64))]
        for _ in range(horizon - 1):
            scores = log_alpha[-1][:, None, None] + R_t[:, :, None] + log_P
            log_alpha.append(torch.logsumexp(scores, dim=(0, 1)))
        return torch.stack(log_alpha)
    """,
    ),
    dict(
        exercise="4.3",
        name="a loop over next states, scipy.special.logsumexp with weights b",
        code="""
        S, A = R.shape
        log_alpha = np.full((horizon, S), -np.inf)
        with np.errstate(divide="ignore"):
            log_alpha[0] = np.log(p0)
        for t in range(horizon - 1):
            w = log_alpha[t][:, None] + R               # log(alpha_t(s) exp(r(s, a))), (S, A)
            for s_next in range(S):                     # only the pairs that reach s_next
                reach = P[:, :, s_next] > 0
                log_alpha[t + 1, s_next] = logsumexp(np.where(reach, w, -np.inf), b=P[:, :, s_next])
        return log_alpha
    """,
    ),
    dict(
        exercise="4.3",
        name="torch in float32",
        code="""
        import torch
        log_P = torch.log(torch.as_tensor(P, dtype=torch.float32))
        R_t = torch.as_tensor(R, dtype=torch.float32)
        rows = [torch.log(torch.as_tensor(p0, dtype=torch.float32))]
        for _ in range(horizon - 1):
            rows.append(torch.logsumexp(rows[-1][:, None, None] + R_t[:, :, None] + log_P, dim=(0, 1)))
        return torch.stack(rows)
    """,
    ),
    dict(
        exercise="4.4",
        name="alpha_t beta_t normalised, from Exercises 4.2 and 4.3",
        code="""
        Q, V = backward_log_messages(P, R, horizon, alpha)
        log_post = forward_log_messages(P, R / alpha, p0, horizon) + V / alpha
        marginals = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        return np.exp((Q - V[..., None]) / alpha), marginals
    """,
    ),
    dict(
        exercise="4.4",
        name="torch in float32, the posterior dynamics as a softmax",
        code="""
        import torch
        Q, V = (torch.as_tensor(x, dtype=torch.float32) for x in backward_log_messages(P, R, horizon, alpha))
        log_P = torch.log(torch.as_tensor(P, dtype=torch.float32))
        pi = torch.softmax(Q / alpha, dim=-1)
        d = torch.softmax(torch.log(torch.as_tensor(p0, dtype=torch.float32)) + V[0] / alpha, dim=0)
        rows = [d]
        for t in range(horizon - 1):
            tilted = torch.softmax(log_P + V[t + 1] / alpha, dim=2)   # p(s' | s, a, O)
            rows.append(torch.einsum("s,sa,sap->p", rows[-1], pi[t], tilted))
        return pi, torch.stack(rows)
    """,
    ),
    dict(
        exercise="4.4",
        name="everything in one loop with scipy.special.softmax, the library's messages",
        code="""
        from scipy.special import softmax
        S = len(p0)
        Q, V = backward_messages(P, R, horizon, alpha=alpha, optimistic=True)
        pi = softmax(Q / alpha, axis=-1)
        with np.errstate(divide="ignore"):
            log_alpha = np.log(np.asarray(p0, dtype=float))
        marginals = np.zeros((horizon, S))
        for t in range(horizon):
            marginals[t] = softmax(log_alpha + V[t] / alpha)
            with np.errstate(divide="ignore"):
                scores = log_alpha[:, None, None] + R[:, :, None] / alpha + np.log(P)
            log_alpha = logsumexp(scores, axis=(0, 1))
        return pi, marginals
    """,
    ),
    dict(
        exercise="4.5",
        name="upper case",
        code="""
        answer_4_5 = "C"
    """,
    ),
    dict(
        exercise="4.5",
        name="with parentheses and spaces",
        code="""
        answer_4_5 = " (c) "
    """,
    ),
]
