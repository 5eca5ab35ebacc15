"""Test-session set-up shared by unit tests and the nbval notebook runs.

Notebooks run under nbval in the ``smoke`` profile: the kernels inherit this environment.
"""

import os

os.environ.setdefault("ASTROGEN_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
