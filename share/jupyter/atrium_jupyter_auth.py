"""Jupyter sign-in for sessions behind the Atrium gateway.

The gateway adds `Authorization: token <secret>` to every request it forwards; the browser never
holds the secret. Jupyter's own token is left empty so that its pages do not embed it (Notebook 6
writes its token into every page it renders). Without the header nothing gets in.
"""
import hmac
import os

_SECRET = os.environ.pop("ATRIUM_JUPYTER_TOKEN", "")
# The Unix socket the wrapper asked for (atrium-jupyter --sock): Jupyter must listen there and only there.
_SOCK = os.environ.pop("ATRIUM_JUPYTER_SOCK", "")
# The wrapper had the server take Python's own distutils (a faster start, see atrium-jupyter); this
# module is loaded before any kernel starts, so kernels get setuptools' default again.
if os.environ.pop("ATRIUM_JUPYTER_UNSET_DISTUTILS", ""):
    os.environ.pop("SETUPTOOLS_USE_DISTUTILS", None)


def _validate(app):
    if not _SECRET:
        raise SystemExit("ATRIUM_JUPYTER_TOKEN is not set: refusing to run without authentication")
    # A Jupyter too old to know `sock` (Notebook < 6.1, early Jupyter Server) only warns about the
    # option and listens on TCP instead: refuse, rather than open a port.
    if _SOCK and getattr(app, "sock", None) != _SOCK:
        raise SystemExit(
            "this Jupyter cannot listen on a Unix socket (Notebook 6.1 or later, or a Jupyter Server "
            "with ServerApp.sock, is needed); refusing to listen on TCP instead"
        )


def _check(handler):
    auth = handler.request.headers.get("Authorization", "")
    if _SECRET and auth.startswith("token ") and hmac.compare_digest(auth[6:].strip(), _SECRET):
        # Treated like Jupyter's own token auth: the gateway checks origin and CSRF for the browser.
        handler._token_authenticated = True
        return "atrium"
    return None


try:
    from notebook.auth.login import LoginHandler as _NotebookLogin

    class NotebookLoginHandler(_NotebookLogin):
        @classmethod
        def get_user(cls, handler):
            return _check(handler)

        @classmethod
        def get_login_available(cls, settings):
            return True

        @classmethod
        def validate_security(cls, app, ssl_options=None):
            _validate(app)

except ImportError:  # Jupyter Notebook not installed
    pass

try:
    from jupyter_server.auth.login import LoginHandler as _ServerLogin

    class ServerLoginHandler(_ServerLogin):
        @classmethod
        def get_user(cls, handler):
            return _check(handler)

        @classmethod
        def get_login_available(cls, settings):
            return True

        @classmethod
        def validate_security(cls, app, ssl_options=None):
            _validate(app)

except ImportError:  # Jupyter Server not installed
    pass
