"""Test-session set-up shared by unit tests and the nbval notebook runs.

Notebooks run under nbval in the ``smoke`` profile: the kernels inherit this environment. Every
kernel a test starts (nbval's and papermill's) talks over IPC sockets, not TCP on localhost.
"""

import os

import nbval.kernel
import pytest

from astrogen.kernels import BlockingIPCKernelManager, IPCKernelManager

os.environ.setdefault("ASTROGEN_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# nbval builds its kernel managers from this module-level name
nbval.kernel.KernelManager = BlockingIPCKernelManager


@pytest.fixture
def run_smoke_notebooks(tmp_path):
    """Execute numbered notebooks in order with papermill, smoke profile, from the notebook folder;
    extra keyword arguments become notebook parameters. Executed copies land in ``tmp_path``."""
    import papermill as pm

    from astrogen import paths

    def run(names: list[str], **parameters) -> None:
        for name in names:
            pm.execute_notebook(
                paths.NOTEBOOKS / f"{name}.ipynb", tmp_path / f"{name}.ipynb",
                parameters={"profile": "smoke", **parameters}, progress_bar=False,
                cwd=str(paths.NOTEBOOKS), kernel_manager_class=IPCKernelManager,
            )  # fmt: skip

    return run
