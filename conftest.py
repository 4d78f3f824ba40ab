"""Repository-wide pytest setup (applies to tests/ and to the nbval run over solutions/)."""

import os

# Several pytest-xdist workers share the machine: one torch thread each is fastest.
# Notebook kernels started by nbval inherit this through the environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("COURSE_THREADS", "1")
