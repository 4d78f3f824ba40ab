"""Per-chapter run time of the solution notebooks on the CPU and on CUDA, and the test suite on CUDA.

Usage (from the repository root, on a machine with a GPU; see ../shared/gpu/README.md for an
offline one)::

    python benchmarks/device_times.py                      # every chapter, cpu then cuda
    python benchmarks/device_times.py --chapters 03 07     # some chapters
    python benchmarks/device_times.py --devices cpu        # only the CPU (any machine)
    python benchmarks/device_times.py --suite              # also `pytest` with COURSE_DEVICE=cuda

Each notebook runs under nbval (`--nbval-lax`, one process, one torch thread) once per device,
with ``COURSE_DEVICE`` set to that device; the table gives the wall-clock seconds and whether
nbval passed. ``--suite`` then runs the whole `pytest` with ``COURSE_DEVICE=cuda`` and prints its
summary line. The CPU is the course's default device (docs/determinism.md): a chapter should use
CUDA by default only where this table shows it faster.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path, device: str) -> tuple[float, bool, str]:
    env = {**os.environ, "COURSE_DEVICE": device, "COURSE_THREADS": "1"}
    command = [
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"),
        *("-o", "addopts=--nbval-lax --nbval-cell-timeout=600", str(path)),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return seconds, done.returncode == 0, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 03 07 (default: all)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    parser.add_argument(
        "--suite", action="store_true", help="also run pytest with COURSE_DEVICE=cuda"
    )
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "solutions").glob("*.ipynb"))
    if args.chapters:
        notebooks = [p for p in notebooks if p.name[:2] in args.chapters]
    print(f"{'chapter':<28}" + "".join(f"{d + ' s':>10}{'ok':>5}" for d in args.devices))
    failed = False
    for path in notebooks:
        row = f"{path.stem:<28}"
        for device in args.devices:
            seconds, ok, last = run_notebook(path, device)
            row += f"{seconds:>10.0f}{'yes' if ok else 'NO':>5}"
            failed |= not ok
            if not ok:
                print(f"  {path.name} on {device}: {last}", file=sys.stderr)
        print(row, flush=True)
    if args.suite:
        env = {**os.environ, "COURSE_DEVICE": "cuda"}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print("pytest with COURSE_DEVICE=cuda:", done.stdout.strip().splitlines()[-1:])
        failed |= done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
