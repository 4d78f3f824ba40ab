"""Exercise checks: every exercise is declared as data and run by one harness.

An :class:`Exercise` says what its check needs: the exercise id, the reference implementation,
a case builder (random and edge-case inputs, each named in words a student understands), the
outputs with their tolerances, the typical mistakes (each "the reference with one knob
changed", with the feedback that names it), which inputs must and must not receive gradient,
and the few diagnoses that need code. Its check function (``check_<name>`` in the notebooks)
runs the student's function and the reference on every case and prints the one deterministic
success line that nbval compares, or raises :class:`ExerciseError` with feedback that names
the input and, when the harness recognises it, the mistake.

The same semantics hold for every exercise:

* arguments are passed positionally, as fresh copies (a student may rename the parameters);
* numbers, lists, numpy arrays and torch tensors are all read as values (unless an output must
  be a torch tensor, because the course backpropagates through it);
* the tolerance follows the student's dtype: a float32 answer is compared, at float32
  precision, with the reference run on the inputs rounded to float32, allowing for how far
  that rounding alone moves the reference; unless the exercise needs float64, and then the
  feedback says why;
* NaN and infinities are reported as such, with where the first one is;
* a function that changes its inputs in place is told so (unless changing one is its job);
* when the student's code raises, the notebook shows the student's own frames and the
  feedback, never the checker's frames (:meth:`ExerciseError._render_traceback_`).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "Case",
    "Exercise",
    "ExerciseError",
    "ExerciseNotAttempted",
    "Grad",
    "Mistake",
    "Output",
    "Question",
    "exercise_of_check",
    "flat_parameters",
    "install_stale_gradients",
    "knobbed",
    "messages",
    "mistake_table",
]

_HERE = str(Path(__file__).resolve().parent)
_CHECKS: dict[str, Exercise] = {}  # check function name -> its exercise


class ExerciseError(AssertionError):
    """A student's answer is wrong; the message says what to fix.

    In IPython the error shows as its message alone, or, when the student's own code raised
    (the error's ``__cause__``), as that exception's traceback limited to the student's
    frames, followed by the message.
    """

    def _render_traceback_(self) -> list[str]:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - only IPython calls this hook
            return [f"{type(self).__name__}: {self}"]
        shell = get_ipython()
        formatter = getattr(shell, "InteractiveTB", None)
        if formatter is None:
            return [f"{type(self).__name__}: {self}"]
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None:
            frames = _student_frames(cause.__traceback__)
            lines += formatter.structured_traceback(type(cause), cause, frames)
            lines.append("")
        return lines + formatter.get_exception_only(type(self), self)


class ExerciseNotAttempted(ExerciseError):
    """The exercise still raises ``NotImplementedError``."""


def _student_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without its leading frames in this package (the harness that called the student)."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_HERE):
        tb = tb.tb_next
    return tb


# ------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Case:
    """One input: ``args`` are passed positionally; ``name`` appears in the feedback."""

    name: str
    args: tuple = ()


@dataclass(frozen=True)
class Output:
    """One output of the exercise's function and its tolerance (relative, absolute).

    ``tensor``: the output must be a torch tensor (the course computes or backpropagates with
    it), with ``tensor`` as the reason given to the student.
    """

    name: str
    rtol: float = 1e-6
    atol: float = 1e-8
    tensor: str = ""


@dataclass(frozen=True)
class Grad:
    """Gradient expectations.

    ``track``: argument positions made leaves that require grad (tensors, or modules whose
    parameters are tracked). The outputs are reduced to a number with fixed random weights,
    and its gradient with respect to each tracked argument is compared with the reference's:
    ``needs[i]`` is the feedback when argument ``i`` receives no (or a wrong) gradient,
    ``leaks[i]`` the feedback when it receives any. ``detached``: the feedback when an output
    still requires grad (a regression target, a reward).
    """

    track: tuple[int, ...] = ()
    needs: Mapping[int, str] = field(default_factory=dict)
    leaks: Mapping[int, str] = field(default_factory=dict)
    detached: str = ""
    rtol: float = 1e-5
    atol: float = 1e-8


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``fn`` takes the reference's arguments and returns what the
    mistake returns (``None`` where the mistake does not apply); ``message`` names it."""

    message: str
    fn: Callable


Diagnosis = Callable[[Any, Any, Case], "str | None"]


def knobbed(variant: Callable | None, table: Mapping[str, Any]) -> list[Mistake]:
    """Mistakes from a table {feedback: knobs}: ``variant`` (the reference with keyword knobs)
    called with those knobs (a dict), or a function used as it is, or a list of either."""
    mistakes = []
    for message, entries in table.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            fn = (lambda *args, k=entry: variant(*args, **k)) if isinstance(entry, dict) else entry
            mistakes.append(Mistake(message, fn))
    return mistakes


def messages(text: str) -> dict[str, str]:
    """A table of feedback: one ``name: message`` entry per unindented line of ``text``, continued
    on the indented lines below it."""
    entries = (entry.split(": ", 1) for entry in re.split(r"\n(?=\S)", text.strip()))
    return {name: " ".join(message.split()) for name, message in entries}


def mistake_table(text: str, **fns: Callable | tuple) -> list[Mistake]:
    """``Mistake(message, fn)`` for each ``name=fn`` (or tuple of fns), messages from ``text``."""
    table = messages(text)
    return [
        Mistake(table[name], fn)
        for name, some in fns.items()
        for fn in (some if isinstance(some, tuple) else (some,))
    ]


@dataclass
class Answer:
    """What one function returned on one case: the outputs, their values and gradients."""

    outputs: tuple
    values: tuple  # numpy arrays (float64 for floats), one per output
    grads: tuple = ()  # one per tracked argument: a numpy array, or None when none arrived
    dtype: np.dtype | None = None  # the least precise float dtype among the outputs
    spread: tuple = ()  # per output: how far input rounding alone moves it (see _at_precision)


# ------------------------------------------------------------------------- conversions


def as_array(value: Any) -> np.ndarray | None:
    """A number, list, numpy array or torch tensor as a numpy array; None when it is not numeric."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.double() if value.dtype in (torch.bfloat16, torch.float16) else value
        value = value.numpy()
    if value is None or isinstance(value, (str, bytes, dict, set, nn.Module)):
        return None
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array


def flat_parameters(module: nn.Module) -> np.ndarray:
    """All parameters of ``module`` as one flat float64 numpy array."""
    return torch.cat([p.detach().reshape(-1).double().cpu() for p in module.parameters()]).numpy()


def install_stale_gradients(parameters, stale) -> None:
    """Leave gradients in ``.grad`` as an earlier loss would (a step must zero them first):
    copies of the tensors ``stale``, or, for an int, standard normal noise from a generator
    seeded with it, drawn parameter by parameter."""
    parameters = list(parameters)
    if isinstance(stale, int):
        generator = torch.Generator().manual_seed(stale)
        stale = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in parameters]
    for p, g in zip(parameters, stale, strict=False):
        p.grad = g.clone()


def _snapshot(value: Any) -> Any:
    """A comparable copy of an argument (to detect in-place changes)."""
    if isinstance(value, nn.Module):
        return flat_parameters(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return None


def _changed(before: Any, after: Any) -> bool:
    if before is None:
        return False
    now = _snapshot(after)
    if isinstance(before, torch.Tensor):
        return now.shape != before.shape or not torch.equal(
            torch.nan_to_num(now), torch.nan_to_num(before)
        )
    return now.shape != before.shape or not np.array_equal(before, now, equal_nan=True)


def close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Entry-wise agreement: within tolerance, equal infinities, or NaN where both are NaN."""
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    with np.errstate(all="ignore"):
        return np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True) | (np.isinf(e) & (a == e))


def _agrees(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """Same shape, and every entry agrees (an all-NaN ``expected`` agrees with nothing)."""
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if a.shape != e.shape or (e.size and np.isnan(e).all()):
        return False
    return bool(close(a, e, rtol, atol).all())


def _where(flat_index: int, shape: tuple) -> str:
    if not shape:
        return ""
    return " at index " + str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


# ------------------------------------------------------------------------- the exercise


@dataclass
class Exercise:
    """One exercise and its check. See the module docstring for the semantics.

    ``call(fn, *args)`` replaces the plain ``fn(*args)`` when an exercise observes something
    else than the return value (the parameters of a network updated in place, say).
    ``mutates``: argument positions the function is meant to change in place.
    ``diagnoses(actual, expected, case)`` run when a case fails, before the mistakes; they get
    the output arrays (one array for a one-output exercise, else a tuple; of any shape, possibly
    not finite) and return feedback or None; ``fallbacks`` run after the mistakes, when none
    matched. ``crashes`` maps a piece of the text of an exception the student's code raises to a
    hint added to the feedback.
    ``accept``: published variants that are correct too (functions like the reference).
    ``after(fn, cases)``: checks of the function as a whole, run once every case passed
    (statistics of a sampler, hidden state); they return feedback, (feedback, case) or None.
    ``float64``: why float64 is needed; empty when a float32 answer is acceptable.
    """

    id: str
    check_name: str
    reference: Callable
    cases: Callable[[np.random.Generator], Sequence[Case]]
    success: str
    outputs: Sequence[Output] = (Output("result"),)
    mistakes: Sequence[Mistake] = ()
    diagnoses: Sequence[Diagnosis] = ()
    grad: Grad | None = None
    call: Callable | None = None
    mutates: tuple[int, ...] = ()
    accept: Sequence[Callable] = ()
    fallbacks: Sequence[Diagnosis] = ()
    crashes: Mapping[str, str] = field(default_factory=dict)
    after: Sequence[Callable[[Callable, Sequence[Case]], str | None]] = ()
    float64: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        self.outputs = tuple(Output(o) if isinstance(o, str) else o for o in self.outputs)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.params = tuple(
            name
            for name, p in inspect.signature(self.reference).parameters.items()
            if p.kind in positional
        )  # keyword-only knobs are not the student's
        self.passed = False  # set by run(): has the check passed in this session?
        _CHECKS[self.check_name] = self

    # ---- the check function of the notebooks

    @property
    def check(self) -> Callable:
        """``check_<name>(fn, seed=None)``: the function the notebook's check cell calls."""

        def check(fn: Callable, seed: int | None = None) -> None:
            __tracebackhide__ = True
            self.run(fn, self.seed if seed is None else seed)

        check.__name__ = check.__qualname__ = self.check_name
        check.__doc__ = (
            f"Check Exercise {self.id}: prints 'Exercise {self.id} passed: ...', or raises "
            "ExerciseError with feedback on what to fix."
        )
        check.exercise = self
        check.or_reference = self.or_reference
        return check

    def or_reference(self, fn: Callable) -> Callable:
        """``fn`` once this exercise's check has passed in this session, else the reference.

        The cell after a check cell writes ``f = check_f.or_reference(f)``, so that a student who
        skipped the exercise (or has not solved it yet) can run the rest of the chapter; a
        one-line note says when the reference stands in.
        """
        if self.passed:
            return fn
        print(
            f"Note: Exercise {self.id} has not passed its check yet, so the cells below use the "
            f"course's reference instead of your `{_name(fn)}`."
        )
        return self.reference

    def run(self, fn: Callable, seed: int = 0) -> None:
        __tracebackhide__ = True
        if not callable(fn) or isinstance(fn, type):
            raise self.error(
                f"expected a function, got {type(fn).__name__}. Pass the function itself, without "
                "calling it (no parentheses)."
            )
        self.passed = False
        cases = list(self.cases(np.random.default_rng(seed)))
        for case in cases:
            self._check_case(fn, case, cases)
        for check in self.after:
            message = check(fn, cases)  # feedback, or (feedback, the case it shows on), or None
            if message:
                raise self.error(*((message,) if isinstance(message, str) else message))
        print(f"Exercise {self.id} passed: " + self.success.format(n=len(cases)))
        self.passed = True

    def error(
        self, message: str, case: Case | None = None, cls: type = ExerciseError
    ) -> ExerciseError:
        where = f" (input: {case.name})" if case is not None else ""
        return cls(f"Exercise {self.id}: {message}{where}")

    # ---- running functions

    def _fresh_args(self, case: Case) -> tuple:
        args = list(copy.deepcopy(case.args))
        for i in self.grad.track if self.grad else ():
            if i >= len(args):
                continue
            if isinstance(args[i], nn.Module):
                args[i].requires_grad_(True)
            elif isinstance(args[i], torch.Tensor) and args[i].is_floating_point():
                args[i] = args[i].detach().clone().requires_grad_(True)
        return tuple(args)

    def _invoke(self, fn: Callable, args: tuple) -> Any:
        return self.call(fn, *args) if self.call else fn(*args)

    def call_student(
        self, fn: Callable, case: Case, args: tuple | None = None
    ) -> tuple[Any, tuple]:
        """``fn`` on fresh copies of the case's arguments; its exceptions become feedback."""
        __tracebackhide__ = True
        args = self._fresh_args(case) if args is None else args
        before = [_snapshot(a) for a in args]
        try:
            out = self._invoke(fn, args)
        except NotImplementedError as exc:
            other = re.match(r"Exercise (\d+\.\d+):", str(exc))
            if other and other.group(1) != self.id:
                raise self.error(
                    f"`{_name(fn)}` calls the function of Exercise {other.group(1)}, which still raises "
                    "NotImplementedError. Solve that exercise first, run its cell, then run this "
                    "check again.",
                    cls=ExerciseNotAttempted,
                ) from None
            raise ExerciseNotAttempted(
                f"Exercise {self.id} is not attempted yet: `{_name(fn)}` still raises "
                "NotImplementedError. Replace `# YOUR CODE HERE` and the `raise` line with your "
                "solution, run that cell, then run this check again."
            ) from None
        except ExerciseError:
            raise
        except Exception as exc:  # the student's code crashed: show their frames and the input
            hints = [hint for text, hint in self.crashes.items() if text in str(exc)]
            if isinstance(exc, TypeError) and "positional argument" in str(exc):
                hints.append(
                    f"The check passes the exercise's arguments in order, "
                    f"({', '.join(self.params)}): keep them all in your function's signature."
                )
            raise self.error(
                f"`{_name(fn)}` raised {type(exc).__name__}: "
                + (f"{str(exc).rstrip('.')}. {hints[0]}" if hints else str(exc)),
                case,
            ) from exc
        for i, (old, new) in enumerate(zip(before, args, strict=True)):
            if i not in self.mutates and _changed(old, new):
                raise self.error(
                    f"your function changed its argument `{self._param(i)}` in place. Work on a "
                    "copy (e.g. x = x.copy(), or x.clone() for a tensor, or non-in-place operations) "
                    "instead of modifying the caller's data",
                    case,
                )
        return out, args

    def _param(self, i: int) -> str:
        return self.params[i] if i < len(self.params) else f"#{i + 1}"

    def observe(self, fn: Callable, case: Case, *, student: bool = False) -> Answer | None:
        """Run ``fn`` (the student's, the reference or a mistake) on ``case``.

        Returns None when a mistake does not apply (returns None or raises). The student's
        answer is validated: the number of outputs, None, non-numeric values, tensors required.
        """
        __tracebackhide__ = True
        if student:
            raw, args = self.call_student(fn, case)
        else:
            args = self._fresh_args(case)
            raw = self._invoke(fn, args)
            if raw is None:
                return None
        outputs = self._split(raw, case, student)
        if outputs is None:
            return None
        values, dtype = [], None
        for out, spec in zip(outputs, self.outputs, strict=True):
            array = as_array(out)
            if array is None:
                if not student:
                    if out is None and isinstance(raw, dict):
                        values.append(None)  # not part of this mistake
                        continue
                    return None
                if out is None:
                    raise self.error(
                        f"your function returned None for the {spec.name}. Did you forget the "
                        "`return` statement?",
                        case,
                    )
                raise self.error(
                    f"the {spec.name} should be numeric, got {type(out).__name__}", case
                )
            if spec.tensor and student and not isinstance(out, torch.Tensor):
                raise self.error(
                    f"return the {spec.name} as a torch tensor ({spec.tensor}); got "
                    f"{type(out).__name__}. Use torch operations on the given tensors",
                    case,
                )
            if array.dtype.kind == "f" and (dtype is None or array.dtype.itemsize < dtype.itemsize):
                dtype = array.dtype
            values.append(array.astype(float) if array.dtype.kind == "f" else array)
        grads = self._gradients(outputs, args) if self.grad else ()
        return Answer(tuple(outputs), tuple(values), grads, dtype)

    def _split(self, raw: Any, case: Case, student: bool) -> tuple | None:
        n = len(self.outputs)
        if isinstance(raw, dict) and not student:  # a mistake that concerns some outputs only
            return tuple(raw.get(k, raw.get(o.name)) for k, o in enumerate(self.outputs))
        if n == 1:
            return (raw,)
        names = ", ".join(o.name for o in self.outputs)
        if isinstance(raw, (tuple, list)) and len(raw) == n:
            return tuple(raw)
        if not student:
            return None
        got = type(raw).__name__ + (
            f" of length {len(raw)}" if isinstance(raw, (tuple, list)) else ""
        )
        if hasattr(raw, "shape"):
            got += f" of shape {tuple(raw.shape)}"
        raise self.error(
            f"return the tuple ({names}) (`return {names}`); your function returned a {got}", case
        )

    def _gradients(self, outputs: tuple, args: tuple) -> tuple:
        """Gradients of sum_k <w_k, output_k> (fixed random weights) w.r.t. the tracked arguments.

        One flat numpy array per tracked argument (a module's parameters concatenated), or None
        where no gradient arrived.
        """
        groups = []
        for i in self.grad.track:
            arg = args[i] if i < len(args) else None
            params = list(arg.parameters()) if isinstance(arg, nn.Module) else [arg]
            groups.append([p for p in params if isinstance(p, torch.Tensor) and p.requires_grad])
        probe = None
        for k, out in enumerate(outputs):
            if isinstance(out, torch.Tensor) and out.requires_grad:
                weight = (
                    np.random.default_rng(1000 + k).normal(size=tuple(out.shape))
                    if out.ndim
                    else 1.0
                )
                term = (out * torch.as_tensor(weight, dtype=out.dtype, device=out.device)).sum()
                probe = term if probe is None else probe + term
        leaves = [p for group in groups for p in group]
        if probe is None or not leaves:
            return tuple(None for _ in groups)
        grads = iter(torch.autograd.grad(probe, leaves, allow_unused=True, retain_graph=True))
        result = []
        for group in groups:
            part = [next(grads) for _ in group]
            if all(g is None for g in part):
                result.append(None)
                continue
            result.append(
                np.concatenate(
                    [
                        np.zeros(p.numel())
                        if g is None
                        else g.detach().double().cpu().numpy().ravel()
                        for g, p in zip(part, group, strict=True)
                    ]
                )
            )
        return tuple(result)

    # ---- judging one case

    def _tolerance(
        self, spec: Output, answer: Answer, expected: Answer, k: int
    ) -> tuple[float, float]:
        """The output's tolerance, loosened to the student's float precision when it is lower."""
        rtol, atol = spec.rtol, spec.atol
        if _less_precise(answer, expected) and not self.float64:
            eps = float(np.finfo(answer.dtype).eps)
            finite = np.abs(expected.values[k][np.isfinite(expected.values[k])])
            scale = max(1.0, float(finite.max())) if finite.size else 1.0
            spread = expected.spread[k] if expected.spread else 0.0
            rtol, atol = max(rtol, 100 * eps), max(atol, 10 * eps * scale, 4 * spread)
        return rtol, atol

    def _at_precision(self, case: Case, dtype: np.dtype, expected: Answer) -> Answer:
        """The reference for an answer of a lower precision: run on the inputs rounded to
        ``dtype``, with ``spread`` the largest change of each output when those inputs move by a
        few rounding steps (how much the input precision alone can move the answer)."""
        try:
            rounded = self.observe(self.reference, Case(case.name, _round(case.args, dtype)))
            moved = [
                self.observe(self.reference, Case(case.name, _round(case.args, dtype, k)))
                for k in (1, 2)
            ]
        except Exception:  # a reference that refuses rounded inputs: judge on the originals
            return expected
        if rounded is None or any(m is None for m in moved):
            return expected
        with np.errstate(all="ignore"):
            rounded.spread = tuple(
                max(float(np.nanmax(np.abs(m.values[k] - v), initial=0.0)) for m in moved)
                for k, v in enumerate(rounded.values)
            )
        rounded.dtype = expected.dtype
        return rounded

    def _value_problem(self, answer: Answer, expected: Answer, case: Case) -> str | None:
        """The generic feedback on the first output that differs from the reference, or None."""
        where = f" (input: {case.name})"
        for k, (spec, a, e) in enumerate(
            zip(self.outputs, answer.values, expected.values, strict=True)
        ):
            if a.shape != e.shape:
                return _shape_feedback(spec.name, a.shape, e.shape, where)
            rtol, atol = self._tolerance(spec, answer, expected, k)
            bad = ~np.isfinite(a.astype(float)) & ~(np.isinf(e.astype(float)) & (a == e))
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                value = a.ravel()[first]
                kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
                hint = (
                    " NaN usually comes from inf - inf, 0 * inf, 0 / 0 or the log of a negative number."
                    if kind == "NaN"
                    else " An infinity usually means exp overflowed or log got 0."
                )
                return (
                    f"the {spec.name} contains {int(bad.sum())} non-finite value(s); the first is "
                    f"{kind}{_where(first, a.shape)}{where}.{hint}"
                )
            ok = close(a, e, rtol, atol)
            if ok.all():
                continue
            diff = np.where(ok, -np.inf, np.abs(a.astype(float) - e.astype(float)))
            worst = int(np.argmax(diff))
            count = f"{int((~ok).sum())} of {ok.size} entries differ; " if ok.size > 1 else ""
            message = (
                f"the {spec.name} does not match the reference{where}: {count}the largest difference is "
                f"{diff.ravel()[worst]:.3g}{_where(worst, a.shape)}, where yours is {a.ravel()[worst]:.6g} "
                f"and the reference is {e.ravel()[worst]:.6g} (tolerance rtol={rtol:g}, atol={atol:g})."
            )
            return message + self._dtype_note(spec, answer, expected, a, e)
        return None

    def _dtype_note(self, spec: Output, answer: Answer, expected: Answer, a, e) -> str:
        if answer.dtype is None or expected.dtype is None:
            return ""
        if _less_precise(answer, expected):
            if self.float64:
                return (
                    f" Your {spec.name} is {answer.dtype}, and this exercise needs float64: "
                    f"{self.float64}. Compute in float64 (np.float64 or torch.float64)."
                )
            return (
                f" (Your {spec.name} is {answer.dtype}; the comparison already allows for "
                f"{answer.dtype} round-off, so this is a real difference.)"
            )
        with np.errstate(all="ignore"):
            relative = np.nanmax(np.abs(a - e) / np.maximum(np.abs(e), 1e-300)) if a.size else 0.0
        if relative < 1e-4:
            return (
                " The difference is small: if you computed in float32, return the float32 "
                "result as it is (the check then allows float32 round-off), or compute in float64."
            )
        return ""

    def _same(self, a: Answer, b: Answer, expected: Answer, grads: bool) -> bool:
        """Do answers ``a`` and ``b`` agree (values, and gradients where both have them)?"""
        for k, spec in enumerate(self.outputs):
            if a.values[k] is None or b.values[k] is None:  # a mistake silent on this output
                continue
            rtol, atol = self._tolerance(spec, a, expected, k)
            if not _agrees(a.values[k], b.values[k], rtol, atol):
                return False
        if grads and self.grad:
            for g, h in zip(a.grads, b.grads, strict=True):
                if (g is None) != (h is None):
                    return False
                if g is not None and not _agrees(g, h, self.grad.rtol, self.grad.atol):
                    return False
        return True

    def _matching_mistake(self, answer: Answer, expected: Answer, case: Case) -> str | None:
        """The message of the first mistake whose answer on ``case`` equals the student's.

        First with gradients compared too, then on values alone (a student may have made two
        mistakes, one of them in the gradient). A mistake that equals the reference on this
        input proves nothing here and is skipped.
        """
        candidates = []
        for mistake in self.mistakes:
            try:
                with np.errstate(all="ignore"):
                    candidate = self.observe(mistake.fn, case)
            except Exception:  # a mistake that cannot be computed on this input
                continue
            if candidate is not None and len(candidate.values) == len(answer.values):
                candidates.append((mistake.message, candidate))
        for grads in (True, False) if self.grad else (False,):
            for message, candidate in candidates:
                if self._same(candidate, expected, expected, grads=grads):
                    continue
                if self._same(answer, candidate, expected, grads=grads):
                    return message
        return None

    def _explain(self, answer: Answer, expected: Answer, case: Case) -> str | None:
        one = len(self.outputs) == 1
        actual = answer.values[0] if one else answer.values
        reference = expected.values[0] if one else expected.values
        for diagnose in self.diagnoses:
            with np.errstate(all="ignore"):
                message = diagnose(actual, reference, case)
            if message:
                return message
        if not one:
            shapes = [v.shape for v in answer.values]
            wanted = [v.shape for v in expected.values]
            if shapes != wanted and sorted(map(str, shapes)) == sorted(map(str, wanted)):
                names = ", ".join(o.name for o in self.outputs)
                return f"you returned the outputs in the wrong order; return ({names})."
        return self._matching_mistake(answer, expected, case)

    def _fallback(self, answer: Answer, expected: Answer, case: Case) -> str | None:
        one = len(self.outputs) == 1
        for fallback in self.fallbacks:
            with np.errstate(all="ignore"):
                message = fallback(
                    answer.values[0] if one else answer.values,
                    expected.values[0] if one else expected.values,
                    case,
                )
            if message:
                return message
        return None

    def _accepted(self, answer: Answer, case: Case) -> Answer | None:
        """The published variant (or None) whose answer on ``case`` equals the student's."""
        for variant in self.accept:
            other = self.observe(variant, case)
            if other is not None and self._same(answer, other, other, grads=False):
                return other
        return None

    def _check_case(self, fn: Callable, case: Case, cases: Sequence[Case]) -> None:
        __tracebackhide__ = True
        expected = self.observe(self.reference, case)
        answer = self.observe(fn, case, student=True)
        if _less_precise(answer, expected) and not self.float64:
            expected = self._at_precision(case, answer.dtype, expected)
        problem = self._value_problem(answer, expected, case)
        if problem:
            variant = self._accepted(answer, case)
            if variant is None:
                specific = self._explain(answer, expected, case)
                if specific:
                    raise self.error(specific, case)
                elsewhere = self._explain_elsewhere(fn, case, cases)
                if elsewhere:
                    raise self.error(*elsewhere)
                fallback = self._fallback(answer, expected, case)
                raise self.error(fallback, case) if fallback else self.error(problem)
            expected = variant
        if self.grad:
            problem = self._gradient_problem(answer, expected)
            if problem:
                specific = self._matching_mistake(answer, expected, case)
                raise self.error(specific or problem, case)

    def _explain_elsewhere(
        self, fn: Callable, failing: Case, cases: Sequence[Case]
    ) -> tuple | None:
        """A mistake may be invisible on the failing input (sigma = 1, say): try the others."""
        for case in cases:
            if case is failing:
                continue
            try:
                answer = self.observe(fn, case, student=True)
            except ExerciseError:
                continue
            expected = self.observe(self.reference, case)
            if self._value_problem(answer, expected, case):
                message = self._matching_mistake(answer, expected, case)
                if message:
                    return message, case
        return None

    def _gradient_problem(self, answer: Answer, expected: Answer) -> str | None:
        grad = self.grad
        tensors = [o for o in answer.outputs if isinstance(o, torch.Tensor)]
        if grad.detached and any(t.requires_grad for t in tensors):
            return grad.detached
        if grad.needs and not any(t.requires_grad for t in tensors):
            names = " and ".join(o.name for o in self.outputs)
            return (
                f"the {names} carries no gradient: compute it with torch operations on the given "
                "tensors, without .detach(), .item(), numpy or torch.no_grad()."
            )
        for k, i in enumerate(grad.track):
            g = answer.grads[k]
            if i in grad.leaks and g is not None and np.abs(g).max() > 0:
                return grad.leaks[i]
        for k, i in enumerate(grad.track):
            if i not in grad.needs:
                continue
            g, want = answer.grads[k], expected.grads[k]
            want = np.zeros(1) if want is None else want
            if g is None or not _agrees(g, np.broadcast_to(want, g.shape), grad.rtol, grad.atol):
                return grad.needs[i]
        return None


@dataclass
class Question:
    """A checked conceptual question ("predict, then run"): the student's answer is a value.

    ``answer``: the right choice (a string such as "b", compared case-insensitively) or number
    (compared with ``rtol``/``atol``). ``feedback`` maps each wrong choice to why it is wrong;
    ``hint`` is the feedback for any other wrong value; ``success`` the line printed after
    "Exercise N.M passed: " (it should say why the answer is right).
    """

    id: str
    check_name: str
    answer: Any
    success: str
    feedback: Mapping[Any, str] = field(default_factory=dict)
    hint: str = ""
    rtol: float = 1e-3
    atol: float = 1e-8

    def __post_init__(self) -> None:
        _CHECKS[self.check_name] = self

    @property
    def check(self) -> Callable:
        def check(value: Any) -> None:
            __tracebackhide__ = True
            self.run(value)

        check.__name__ = check.__qualname__ = self.check_name
        check.__doc__ = f"Check the answer to Exercise {self.id} (a value, not a function)."
        check.exercise = self
        return check

    def run(self, value: Any) -> None:
        __tracebackhide__ = True
        if isinstance(self.answer, str):
            if not isinstance(value, str):
                raise ExerciseError(
                    f"Exercise {self.id}: answer with one of the choices as a string (e.g. "
                    f'"a"); got {type(value).__name__}.'
                )
            key = value.strip().strip("()").lower()
            right = key == self.answer.lower()
            wrong = {str(k).lower(): v for k, v in self.feedback.items()}.get(key)
        else:
            number = as_array(value)
            if number is None or number.size != 1:
                raise ExerciseError(f"Exercise {self.id}: answer with one number; got {value!r}.")
            number = float(number.reshape(()))
            right = bool(np.isclose(number, float(self.answer), rtol=self.rtol, atol=self.atol))
            wrong = next(
                (
                    v
                    for k, v in self.feedback.items()
                    if np.isclose(number, float(k), rtol=self.rtol, atol=self.atol)
                ),
                None,
            )
        if not right:
            raise ExerciseError(
                f"Exercise {self.id}: {wrong or self.hint or 'not quite: think again.'}"
            )
        print(f"Exercise {self.id} passed: {self.success}")


def _less_precise(answer: Answer, expected: Answer) -> bool:
    return (
        answer.dtype is not None
        and expected.dtype is not None
        and answer.dtype.itemsize < expected.dtype.itemsize
    )


def _round(args: tuple, dtype: np.dtype, nudge: int = 0) -> tuple:
    """The floating-point arguments in ``dtype``; with ``nudge``, first moved by up to 4 rounding
    steps (random signs, seeded by ``nudge``)."""
    rng = np.random.default_rng(nudge)
    step = 4 * float(np.finfo(dtype).eps) if nudge else 0.0

    def one(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return (a * (1 + step * rng.choice([-1.0, 1.0], size=a.shape))).astype(dtype)
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            sign = torch.as_tensor(rng.choice([-1.0, 1.0], size=tuple(a.shape)), dtype=a.dtype)
            return (a.detach() * (1 + step * sign)).to(getattr(torch, dtype.name))
        if isinstance(a, float):
            return float(dtype.type(a * (1 + step * rng.choice([-1.0, 1.0]))))
        if isinstance(a, tuple) and hasattr(a, "_fields"):  # a named tuple of tensors
            return type(a)(*(one(x) for x in a))
        return a

    return tuple(one(a) for a in args)


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _shape_feedback(name: str, shape: tuple, expected: tuple, where: str = "") -> str:
    """The generic shape message, with a hint for the usual axis mistakes."""
    hint = ""
    if expected == () and len(shape) == 1 and shape[0] > 1:
        hint = " Expected a single number: reduce it, e.g. with .mean() over the batch."
    elif len(shape) == len(expected) + 1 and 1 in shape:
        hint = (
            " An extra axis of size 1: did you keep a dimension you should have reduced (keepdims)?"
        )
    elif len(shape) + 1 == len(expected) and 1 in expected:
        hint = " One axis of size 1 is missing: this case asks you to keep the reduced dimension."
    elif len(shape) < len(expected):
        hint = " Did you reduce over too many axes (or over all of them)?"
    elif len(shape) == len(expected):
        hint = " Did you reduce over the wrong axis, or transpose something?"
    return f"the {name} has shape {tuple(shape)}, expected {tuple(expected)}{where}.{hint}"


def exercise_of_check(name: str) -> str | None:
    """The exercise id of the check function called ``name`` (for the grader), or None."""
    for module in pkgutil.iter_modules([_HERE]):  # importing a module registers its exercises
        importlib.import_module(f"{__name__}.{module.name}")
    exercise = _CHECKS.get(name)
    return exercise.id if exercise else None
