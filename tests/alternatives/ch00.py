"""Correct answers to chapter 00, written differently from the solution (data for tests/test_mistakes.py)."""

ALTERNATIVES = [
    dict(
        exercise="0.1",
        name="scipy.special.logsumexp",
        code="""
        from scipy.special import logsumexp as scipy_logsumexp
        return scipy_logsumexp(x, axis=axis, keepdims=keepdims)
    """,
    ),
    dict(
        exercise="0.1",
        name="torch.logsumexp in float32",
        code="""
        import torch
        out = torch.logsumexp(torch.as_tensor(x, dtype=torch.float32), dim=axis, keepdim=keepdims)
        return out
    """,
    ),
    dict(
        exercise="0.1",
        name="a loop over the slices, math.log and math.exp",
        code="""
        import math
        x = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
        out = np.empty(x.shape[:-1])
        for index in np.ndindex(out.shape):
            row = x[index]
            m = max(row)
            if m == -math.inf:
                out[index] = -math.inf
                continue
            out[index] = m + math.log(sum(math.exp(v - m) for v in row))
        return np.expand_dims(out, axis) if keepdims else out
    """,
    ),
    dict(
        exercise="0.2",
        name="scipy.special.softmax",
        code="""
        from scipy.special import softmax
        return softmax(np.asarray(q, dtype=float) / alpha, axis=axis)
    """,
    ),
    dict(
        exercise="0.2",
        name="subtract the maximum, then normalise (float32 torch)",
        code="""
        import torch
        q = torch.as_tensor(q, dtype=torch.float32) / alpha
        e = torch.exp(q - q.max(dim=axis, keepdim=True).values)
        return e / e.sum(dim=axis, keepdim=True)
    """,
    ),
]
