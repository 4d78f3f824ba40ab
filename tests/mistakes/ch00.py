"""Plausible mistakes in chapter 00 (data for tests/test_mistakes.py)."""

NOTEBOOK = "solutions/00_start_here.ipynb"
MISTAKES = [
    dict(
        exercise="0.1",
        name="forgot to add the maximum back",
        old="out = m + np.log(",
        new="out = np.log(",
        feedback="forgot to add it back after the log",
    ),
    dict(
        exercise="0.1",
        name="no max subtraction (overflows)",
        old="out = m + np.log(np.sum(np.exp(x - m)",
        new="out = np.log(np.sum(np.exp(x)",
        feedback="overflow or underflow",
    ),
    dict(
        exercise="0.1",
        name="-inf maximum not replaced (NaN for all -inf rows)",
        old="    m = np.where(np.isfinite(m), m, 0.0)\n",
        new="",
        feedback="all -inf should give -inf, yours gives NaN",
    ),
    dict(
        exercise="0.1",
        name="returns the hard maximum",
        old="return out if keepdims else np.squeeze(out, axis=axis)",
        new="return m if keepdims else np.squeeze(m, axis=axis)",
        feedback="you returned the maximum",
    ),
    dict(
        exercise="0.2",
        name="multiplies by alpha instead of dividing",
        old="return np.exp((q - v) / alpha)",
        new="return np.exp((q - v) * alpha)",
        feedback="the probabilities should sum to 1",
    ),
    dict(
        exercise="0.2",
        name="ignores the temperature",
        old="v = alpha * logsumexp(q / alpha, axis=axis, keepdims=True)\n    return np.exp((q - v) / alpha)",
        new="v = logsumexp(q, axis=axis, keepdims=True)\n    return np.exp(q - v)",
        feedback="ignores the temperature alpha",
    ),
    dict(
        exercise="0.2",
        name="normalises along the wrong axis",
        old="logsumexp(q / alpha, axis=axis, keepdims=True)",
        new="logsumexp(q / alpha, axis=0, keepdims=True)",
        feedback="sum to 1 along the wrong axis",
    ),
]
