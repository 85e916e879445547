"""A spare kernel for sessions behind the Atrium gateway: the first notebook opens on a running kernel.

A Python kernel takes about a second to start (IPython, debugpy), after the server itself has started.
Jupyter runs them one after the other, so a user who opens a notebook right away waits for both. Here
the server launches one kernel of the default kind in its root directory as it makes its kernel
manager (the kernel's start then runs beside the rest of the server's), and the first request for a
kernel of that kind and directory gets it instead of starting another one (as Voila's kernel pool and
VS Code's pre-warmed kernels do). Anything else starts a kernel as usual.

The spare is not listed under /api/kernels until it is handed out, so it is neither shown in the
"running kernels" panel nor counted as activity by the gateway's idle check. Unclaimed after
ATRIUM_JUPYTER_SPARE_KERNEL_MINUTES (default 10) it is shut down, so a session used for a terminal
only does not keep its memory. ATRIUM_JUPYTER_SPARE_KERNEL=0 turns it off (atrium-jupyter then keeps
Jupyter's own kernel manager; this module's KernelSpecManager below is used either way). Not
replenished: one idle kernel per session at most.

What the first kernel lacks, compared with one started on request: JPY_SESSION_NAME (Jupyter Server 2
tells a kernel the notebook it was started for; IPython then sets __session__).
"""
import asyncio
import os
import sys
import uuid

from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, NoSuchKernel
from jupyter_client.kernelspec import KernelSpecManager as _KernelSpecManager
from tornado.ioloop import IOLoop

_ENABLED = os.environ.pop("ATRIUM_JUPYTER_SPARE_KERNEL", "1") != "0"
try:
    _MINUTES = float(os.environ.pop("ATRIUM_JUPYTER_SPARE_KERNEL_MINUTES", "10"))
except ValueError:
    _MINUTES = 10.0
# Set by the server only for the session it names (Jupyter Server 2); any other difference in the
# requested environment means the spare does not fit.
_PER_KERNEL_ENV = {"JPY_SESSION_NAME"}


def _same_dir(a, b):
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, TypeError, ValueError):
        return False


class _SpareKernel:
    """Mixed into the app's own mapping kernel manager (Notebook 6 or Jupyter Server)."""

    _atrium_spare = None  # a future of the spare's id, until it is handed out or dropped
    _atrium_spare_id = None
    _atrium_spare_dir = None
    _atrium_naming = None  # the id the next new kernel gets: the spare's

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not _ENABLED:
            return
        try:
            try:
                asyncio.get_running_loop()
                running = True
            except RuntimeError:
                running = False
            if running:
                IOLoop.current().add_callback(self._atrium_start_spare)
            else:
                # The server makes its kernel manager before its web app, extensions and socket: the
                # kernel's start (a second of its own CPU) runs beside the rest of the server's. Only
                # the launch of its process is waited for here.
                IOLoop.current().run_sync(self._atrium_start_spare, timeout=30)
        except Exception as e:  # never in the way of Jupyter's own start
            self.log.warning("atrium: no spare kernel: %s", e)

    def new_kernel_id(self, **kwargs):
        if self._atrium_naming is not None:
            kid, self._atrium_naming = self._atrium_naming, None
            return kid
        return super().new_kernel_id(**kwargs)

    async def _atrium_start_spare(self):
        spare = asyncio.get_running_loop().create_future()
        self._atrium_spare = spare
        self._atrium_spare_dir = self.cwd_for_path("")
        self._atrium_spare_id = self._atrium_naming = str(uuid.uuid4())
        try:
            # The default kernel in the root directory: what a notebook at the top of the file
            # browser, or a kernel asked for without a path, gets.
            kid = await super().start_kernel(path="")
        except Exception as e:
            self.log.warning("atrium: the spare kernel did not start: %s", e)
            kid = None
        finally:
            self._atrium_naming = None
        if not spare.done():
            spare.set_result(kid)
        if kid is not None and _MINUTES > 0:
            IOLoop.current().call_later(_MINUTES * 60, self._atrium_drop_spare, spare)

    async def _atrium_drop_spare(self, spare):
        if self._atrium_spare is not spare:
            return  # handed out
        self._atrium_spare = None
        kid = spare.result()
        if kid is not None and kid in self:
            self.log.info("atrium: shutting down the spare kernel %s, unused", kid)
            await self.shutdown_kernel(kid)

    def _atrium_fits(self, kernel_id, path, kwargs):
        if kernel_id is not None:
            return False
        if kwargs.get("kernel_name") not in (None, self.default_kernel_name):
            return False
        wanted = self.cwd_for_path(path) if path is not None else os.getcwd()
        if not _same_dir(wanted, self._atrium_spare_dir):
            return False
        env = kwargs.get("env") or {}
        return all(os.environ.get(k) == v for k, v in env.items() if k not in _PER_KERNEL_ENV)

    async def start_kernel(self, kernel_id=None, path=None, **kwargs):
        spare = self._atrium_spare
        if spare is not None and self._atrium_fits(kernel_id, path, kwargs):
            self._atrium_spare = None
            kid = await spare
            if kid is not None and kid in self:
                self.log.info("atrium: handing out the spare kernel %s", kid)
                return kid
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)

    def list_kernels(self):
        kernels = super().list_kernels()
        if self._atrium_spare is None:
            return kernels
        return [k for k in kernels if k.get("id") != self._atrium_spare_id]


class KernelSpecManager(_KernelSpecManager):
    """The kernel specs as jupyter_client reads them, without importing a kernel into the server.

    jupyter_client imports IPython to find ~/.ipython/kernels, and to look up the python3 kernel
    it imports ipykernel.kernelspec (IPython and debugpy again) only to see whether the spec is
    ipykernel's bundled one, even when the kernel has its own kernel.json in a kernel directory
    (Debian's /usr/share/jupyter/kernels/python3, a conda env's), which is then read anyway. That
    is 0.35 s of the server's CPU on its event loop before its first kernel and its first kernel
    list (and, with a spare kernel, before its first answers). Here the IPython directory is found
    as IPython finds it ($IPYTHONDIR, else ~/.ipython), and a python3 spec in a kernel directory is
    read from there; ipykernel's bundled one (no kernel directory has it) is still asked of
    ipykernel. atrium_ipc_kernel builds on this class.
    """

    def _kernel_dirs_default(self):
        from jupyter_core.paths import jupyter_path

        ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
        return jupyter_path("kernels") + [os.path.join(os.path.expanduser(ipython_dir), "kernels")]

    def _get_kernel_spec_by_name(self, kernel_name, resource_dir):
        if (
            kernel_name == NATIVE_KERNEL_NAME
            and "ipykernel.kernelspec" not in sys.modules
            and self._atrium_in_kernel_dir(resource_dir)
        ):
            kspec = self.kernel_spec_class.from_resource_dir(resource_dir)
            try:
                from jupyter_client.provisioning import KernelProvisionerFactory
            except ImportError:  # jupyter_client before 7: no provisioners
                return kspec
            if not KernelProvisionerFactory.instance(parent=self.parent).is_provisioner_available(kspec):
                raise NoSuchKernel(kernel_name)
            return kspec
        return super()._get_kernel_spec_by_name(kernel_name, resource_dir)

    def _atrium_in_kernel_dir(self, resource_dir):
        if not os.path.isfile(os.path.join(resource_dir, "kernel.json")):
            return False
        parent = os.path.dirname(os.path.realpath(resource_dir))
        return any(_same_dir(parent, d) for d in self.kernel_dirs if os.path.isdir(d))


def __getattr__(name):
    # Built on first use: only the Jupyter the wrapper picked is installed, or imported.
    if name == "NotebookKernelManager":
        from notebook.services.kernels.kernelmanager import MappingKernelManager

        cls = type(name, (_SpareKernel, MappingKernelManager), {"__module__": __name__})
    elif name == "ServerKernelManager":
        from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

        cls = type(name, (_SpareKernel, AsyncMappingKernelManager), {"__module__": __name__})
    else:
        raise AttributeError(name)
    globals()[name] = cls
    return cls
