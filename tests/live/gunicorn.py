"""gunicorn as deployed (gunicorn.conf.py), started on a socket bound here and handed over (``fd://``): no
other process can take the port between choosing it and serving on it, and a request sent before the workers
are up waits in the backlog. Used by the live tests (conftest.py) and the CI's schemathesis step."""
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120


@dataclass
class Gunicorn:
    process: subprocess.Popen
    listener: socket.socket
    url: str  # http://127.0.0.1:<port>, no trailing slash
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.listener.close()


def start_gunicorn(env: dict[str, str], log: Path) -> Gunicorn:
    """gunicorn serving with ``env``, its output in ``log``; returns once health answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    with log.open("w") as output:
        process = subprocess.Popen(
            # No control socket: its one path per user would be another server's too.
            [sys.executable, "-m", "gunicorn", "--bind", f"fd://{listener.fileno()}", "--no-control-socket"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()])
    server = Gunicorn(process, listener, f"http://127.0.0.1:{listener.getsockname()[1]}", log)
    try:
        _wait_until_serving(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_serving(server: Gunicorn) -> None:
    """Health answers once a worker is up; until then the request waits in the socket's backlog."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log.read_text()}")
        try:
            requests.get(f"{server.url}/api/v1/health", timeout=deadline - time.monotonic(), allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT_SECONDS} s:\n{server.log.read_text()}")
