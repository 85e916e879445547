"""Kernels that listen on no TCP port, for sessions on nodes that must accept no inbound connection.

With `--KernelManager.transport=ipc` a kernel's channels are Unix sockets, but ipykernel 6 still binds
one loopback TCP port itself (hard-coded): the pipe that carries the output of forked subprocesses to
the IOPub thread. Run as a script in place of `-m ipykernel_launcher`, this module binds that pipe on
a Unix socket in a directory only the user can enter (the connection file's, or a private temporary
one) and then starts ipykernel as usual; the pipe's UUID authentication is ipykernel's own.

`KernelSpecManager` (configured by atrium-jupyter as the app's kernel_spec_manager_class, the same
class for Notebook 6 and Jupyter Server) makes every ipykernel_launcher kernel start through this
script. Other kernels are left as they are.
"""
import os
import sys

# The python3 kernel found without importing ipykernel into the server (atrium_jupyter_kernels).
from atrium_jupyter_kernels import KernelSpecManager as _Base

_SCRIPT = os.path.abspath(__file__)


class KernelSpecManager(_Base):
    def get_kernel_spec(self, kernel_name):
        spec = super().get_kernel_spec(kernel_name)
        argv = list(spec.argv)
        for i in range(1, len(argv) - 1):
            if argv[i] == "-m" and argv[i + 1] == "ipykernel_launcher":
                # A script path rather than `-m atrium_ipc_kernel`: nothing to add to the kernel's
                # PYTHONPATH, which a kernel spec's own env may set.
                spec.argv = argv[:i] + [_SCRIPT] + argv[i + 2 :]
                break
        return spec


def _connection_file(argv):
    for i, a in enumerate(argv):
        for flag in ("-f", "--f", "--IPKernelApp.connection_file", "--connection-file"):
            if a == flag and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(flag + "="):
                return a[len(flag) + 1 :]
    return None


def _private_dir(connection_file):
    """The connection file's directory if only its owner can enter it (Jupyter's runtime dir is
    created 700), else a new temporary one; a Unix socket's path must stay under ~104 bytes."""
    if connection_file:
        d = os.path.dirname(os.path.realpath(connection_file))
        try:
            st = os.stat(d)
            if st.st_uid == os.getuid() and st.st_mode & 0o077 == 0 and len(d) < 80:
                return d, False
        except OSError:
            pass
    import tempfile

    return tempfile.mkdtemp(prefix="atrium-kernel-"), True


def _patch_iostream(pipe_dir):
    import atexit
    import warnings

    import ipykernel
    import zmq
    from ipykernel import iostream
    from zmq.eventloop.zmqstream import ZMQStream

    thread = getattr(iostream, "IOPubThread", None)
    # The methods replaced here are ipykernel 6's; another version keeps its own (and its TCP pipe).
    if ipykernel.version_info[0] != 6 or not all(
        hasattr(thread, m) for m in ("_setup_pipe_in", "_setup_pipe_out", "_handle_pipe_msg")
    ):
        return False
    master = os.getpid()

    def _setup_pipe_in(self):
        ctx = self.socket.context
        self._pipe_uuid = os.urandom(16)
        pipe_in = ctx.socket(zmq.PULL)
        pipe_in.linger = 0
        path = os.path.join(pipe_dir, "pipe-%s" % os.urandom(8).hex())
        try:
            pipe_in.bind("ipc://" + path)
        except zmq.ZMQError as e:
            warnings.warn(
                "Couldn't bind IOPub Pipe to %s: %s\nsubprocess output will be unavailable." % (path, e)
            )
            self._pipe_flag = False
            pipe_in.close()
            return
        os.chmod(path, 0o600)
        self._atrium_pipe = "ipc://" + path
        # A forked child that exits through sys.exit must not remove its parent's socket.
        atexit.register(lambda: os.getpid() == master and _unlink(path))
        self._pipe_in = ZMQStream(pipe_in, self.io_loop)
        self._pipe_in.on_recv(self._handle_pipe_msg)

    def _setup_pipe_out(self):
        # A new context after fork, as ipykernel does.
        ctx = zmq.Context()
        pipe_out = ctx.socket(zmq.PUSH)
        pipe_out.linger = 3000
        pipe_out.connect(self._atrium_pipe)
        return ctx, pipe_out

    thread._setup_pipe_in = _setup_pipe_in
    thread._setup_pipe_out = _setup_pipe_out
    return True


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def main():
    # The path a kernel started with `-m ipykernel_launcher` has: the working directory (the
    # notebook's) first, not this script's directory.
    if sys.path and sys.path[0] == os.path.dirname(_SCRIPT):
        sys.path[0] = os.getcwd()
    pipe_dir, temporary = _private_dir(_connection_file(sys.argv[1:]))
    if temporary:
        import atexit
        import shutil

        master = os.getpid()
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(pipe_dir, ignore_errors=True))
    _patch_iostream(pipe_dir)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
