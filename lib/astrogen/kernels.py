"""Notebook kernels reached over Unix-domain (IPC) sockets rather than unencrypted TCP.

Pass :class:`IPCKernelManager` as papermill's / nbclient's ``kernel_manager_class``
(:class:`BlockingIPCKernelManager` where a synchronous manager is wanted, e.g. nbval's): the
kernel's sockets are files in Jupyter's runtime folder (beside its connection file, never in
``/tmp`` or the notebook's folder), readable by this user only, and removed when the kernel
shuts down.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from jupyter_client.localinterfaces import localhost
from jupyter_client.manager import AsyncKernelManager, KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, HasTraits, default

PREFIX = "astrogen-"


class _IPCTransport(HasTraits):
    """The ``transport`` and ``ip`` defaults of a kernel manager that talks over IPC."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return localhost()
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(runtime / f"{PREFIX}{uuid.uuid4().hex[:12]}-ipc")


class IPCKernelManager(_IPCTransport, AsyncKernelManager):
    """An :class:`~jupyter_client.manager.AsyncKernelManager` whose transport is ``ipc``."""


class BlockingIPCKernelManager(_IPCTransport, KernelManager):
    """A :class:`~jupyter_client.manager.KernelManager` whose transport is ``ipc``."""
