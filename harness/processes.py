"""Services as real processes (`python -m services.<name>`, as `make run` starts them), and the
waiting that goes with them: real processes take real time to become ready."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from harness.paths import ARTIFACTS, ROOT


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a service started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2
) -> object:
    """Poll `condition` until it returns something true (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


class ServiceProcess:
    """`python -m services.<name>` as a real process, its log kept under artifacts/.

    `prefix` runs it through a command that then execs it, such as `ip netns exec <ns>` (the
    service on "another machine"): the process is the service itself, so stop() still reaches it.
    """

    def __init__(
        self, module: str, env: dict[str, str], log_name: str, *, prefix: Sequence[str] = ()
    ) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{log_name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
            [*prefix, sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode)
