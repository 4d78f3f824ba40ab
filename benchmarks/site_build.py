"""Time the course website's build and measure its size (issue 17: <= 60 s, <= 30 MB).

Runs the documented command, `python -m course_utils.site --out DIR`, in a fresh process
(interpreter start and imports included) into a temporary folder, ``--repeat`` times, and prints
the wall-clock time of each run, the site's size and file count, and the load average before
and after (the figures are only comparable at a similar load).

    .venv/bin/python benchmarks/site_build.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS, LIMIT_BYTES = 60.0, 30e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="number of builds (default 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    times = []
    with tempfile.TemporaryDirectory(prefix="site-bench-") as tmp:
        out = Path(tmp) / "_site"
        for run in range(1, args.repeat + 1):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "course_utils.site", "--out", str(out)],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - start)
            print(f"build {run}: {times[-1]:.1f} s")
        files = [p for p in out.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    worst = max(times)
    print(
        f"build time: best {min(times):.1f} s, worst {worst:.1f} s (limit {LIMIT_SECONDS:.0f} s); "
        f"size {size / 1e6:.1f} MB in {len(files)} files (limit {LIMIT_BYTES / 1e6:.0f} MB)"
    )
    return 0 if worst <= LIMIT_SECONDS and size <= LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
