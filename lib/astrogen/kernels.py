"""Notebook kernels reached over Unix-domain (IPC) sockets rather than unencrypted TCP.

Pass :class:`IPCKernelManager` as papermill's / nbclient's ``kernel_manager_class``: the kernel's
sockets are files in Jupyter's runtime folder (beside its connection file, never in ``/tmp`` or
the notebook's folder), readable by this user only, and removed when the kernel shuts down.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from jupyter_client.localinterfaces import localhost
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, default

PREFIX = "astrogen-"


class IPCKernelManager(AsyncKernelManager):
    """An :class:`~jupyter_client.manager.AsyncKernelManager` whose transport is ``ipc``."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return localhost()
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(runtime / f"{PREFIX}{uuid.uuid4().hex[:12]}-ipc")
