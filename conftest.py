"""Test-session set-up shared by unit tests and the nbval notebook runs.

Notebooks run under nbval in the ``smoke`` profile: the kernels inherit this environment. Every
kernel a test starts (nbval's and papermill's) talks over IPC sockets, not TCP on localhost.
"""

import os

import nbval.kernel
import nbval.plugin
import pytest

from astrogen.kernels import BlockingIPCKernelManager, IPCKernelManager

os.environ.setdefault("ASTROGEN_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# nbval builds its kernel managers from this module-level name
nbval.kernel.KernelManager = BlockingIPCKernelManager

# nbval gives a kernel 5 s to publish a cell's output after the cell finished; a kernel whose
# cell just ran worker processes on a loaded 2-core machine can take longer, and nbval then fails
# the cell although it ran. Cells still stop at nbval's cell timeout.
_nbval_cell_init = nbval.plugin.IPyNbCell.__init__


def _patient_cell_init(self, *args, **kwargs):
    _nbval_cell_init(self, *args, **kwargs)
    self.output_timeout = 120


nbval.plugin.IPyNbCell.__init__ = _patient_cell_init

# The reliability census: every test marked ``bad_input`` feeds one bad input (a value, a file, a
# table) and asserts its exact clear error or warning; every test marked ``fault`` injects one
# fault (corruption, kill, crash mid-write, a concurrent run) and asserts that nothing is lost and
# the rerun equals a clean run. ``control`` marks a well-formed input beside them (no false alarm).
CENSUS = {"bad_input": "bad inputs tried", "fault": "faults injected"}
_census = {marker: {"passed": 0, "failed": 0} for marker in CENSUS}


def pytest_configure(config):
    config.addinivalue_line("markers", "bad_input: one bad input, its exact error or warning")
    config.addinivalue_line("markers", "fault: one injected fault, survived with nothing lost")
    config.addinivalue_line("markers", "control: a well-formed input beside the bad ones")


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.failed):
        return
    for marker in CENSUS:
        if marker in report.keywords and "control" not in report.keywords:
            _census[marker]["passed" if report.passed else "failed"] += 1


def pytest_terminal_summary(terminalreporter):
    bad, fault = _census["bad_input"], _census["fault"]
    if not (sum(bad.values()) or sum(fault.values())):
        return
    terminalreporter.write_sep("-", "reliability census")
    terminalreporter.write_line(
        f"bad inputs tried: {sum(bad.values())}; a clear error or warning: {bad['passed']}; "
        f"a raw traceback or silent acceptance: {bad['failed']}"
    )
    terminalreporter.write_line(
        f"faults injected: {sum(fault.values())}; survived, nothing lost: {fault['passed']}; "
        f"not survived: {fault['failed']}"
    )


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
