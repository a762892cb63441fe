"""A RabbitMQ cluster of local nodes for a test: each node a `rabbitmq-server` of this machine on
ports of its own, its data and logs in a temporary directory, joined to the first with
`rabbitmqctl join_cluster`. The shared broker (5672, node rabbit@localhost) is never touched:
other node names, other ports, another Erlang cookie, another config file.

Needs RabbitMQ installed here (as the integration tests do) and root or the rabbitmq user:
the Debian wrapper in /usr/sbin would switch to the rabbitmq user, so the scripts behind it in
/usr/lib/rabbitmq/bin run as they are, with HOME pointing at the cluster's own cookie.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.processes import free_port

_BIN = Path("/usr/lib/rabbitmq/bin")


def _tool(name: str) -> str:
    return str(_BIN / name) if (_BIN / name).exists() else (shutil.which(name) or name)


@dataclass
class Node:
    name: str  # short name: <name>@localhost
    amqp_port: int
    dist_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"


class Cluster:
    """`size` nodes under `base`; `start()` boots and joins them, `close()` stops them all."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        tag = uuid.uuid4().hex[:6]
        self.nodes = [Node(f"it{tag}{n}", free_port(), free_port()) for n in range(1, size + 1)]
        self.home = base / "home"  # the cookie, for the nodes and for rabbitmqctl alike
        self.timings: dict[str, float] = {}
        self._logs: list[IO[bytes]] = []

    @property
    def amqp_url(self) -> str:
        """AMQP_URL naming every node, as a service of the cluster is given it."""
        return ",".join(node.url for node in self.nodes)

    def _env(self, node: Node | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),  # not the machine's
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        if node is not None:
            root = self.base / node.name
            env |= {
                "RABBITMQ_NODENAME": node.node,
                "RABBITMQ_NODE_PORT": str(node.amqp_port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
                "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
                "RABBITMQ_LOG_BASE": str(root / "log"),
            }
        return env

    def ctl(self, node: Node, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("rabbitmqctl"), "-q", "-n", node.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start(self, timeout_s: float = 120) -> None:
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex)
        cookie.chmod(0o400)
        (self.base / "rabbitmq-env.conf").write_text("")
        started = time.monotonic()
        for node in self.nodes:
            self._boot(node)
        for node in self.nodes:
            self._await(node, started + timeout_s)
        self.timings["boot_s"] = time.monotonic() - started
        joined = time.monotonic()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            for step in (("stop_app",), ("join_cluster", first.node), ("start_app",)):
                result = self.ctl(node, *step)
                assert result.returncode == 0, f"{node.node} {step}: {result.stderr}"
        self.timings["join_s"] = time.monotonic() - joined
        assert self.running() == {node.node for node in self.nodes}, self.ctl(first, "cluster_status").stdout

    def restart(self, node: Node, timeout_s: float = 120) -> float:
        """Start a lost node again on its data: it rejoins the cluster by itself. Seconds taken."""
        started = time.monotonic()
        self._boot(node)
        self._await(node, started + timeout_s)
        wait = time.monotonic() + timeout_s
        while node.node not in self.running(self.nodes[-1] if node is self.nodes[0] else self.nodes[0]):
            assert time.monotonic() < wait, f"{node.node} did not rejoin"
            time.sleep(0.5)
        return time.monotonic() - started

    def lost(self) -> list[Node]:
        return [node for node in self.nodes if node.process is None or node.process.poll() is not None]

    def _boot(self, node: Node) -> None:
        root = self.base / node.name
        root.mkdir(parents=True, exist_ok=True)
        # guest may log in from 127.0.0.1 only (the default): these nodes listen there only.
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n")
        (root / "enabled_plugins").write_text("[rabbitmq_consistent_hash_exchange].\n")
        log = (root / "server.out").open("wb")
        self._logs.append(log)
        node.process = subprocess.Popen(
            [_tool("rabbitmq-server")],
            env=self._env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped and killed as one
        )

    def _await(self, node: Node, deadline: float) -> None:
        while True:
            assert node.process is not None
            if node.process.poll() is not None:
                raise AssertionError(f"{node.node} exited: {self.server_log(node)[-3000:]}")
            if self.ctl(node, "await_startup", "--timeout", "10", timeout_s=30).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.node} not up in time: {self.server_log(node)[-3000:]}")
            time.sleep(0.5)

    def server_log(self, node: Node) -> str:
        path = self.base / node.name / "server.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def running(self, via: Node | None = None) -> set[str]:
        """The running nodes, as a node still up sees them."""
        via = via or next(n for n in self.nodes if n.process is not None and n.process.poll() is None)
        result = self.ctl(via, "eval", "rabbit_nodes:all_running().")
        return {part.strip(" []'\n") for part in result.stdout.split(",") if part.strip(" []'\n")}

    def kill(self, node: Node) -> None:
        """Lose the node at once, as a machine that fails: SIGKILL to its whole process group
        (no clean shutdown, its client connections reset)."""
        assert node.process is not None
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)

    def close(self) -> None:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            os.killpg(node.process.pid, signal.SIGTERM)
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=30)
        for log in self._logs:
            log.close()
        shutil.rmtree(self.base, ignore_errors=True)
