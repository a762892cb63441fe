"""Another machine, for a test: a Linux network namespace joined to this one by a veth pair.

The namespace has its own loopback and one interface, on a /30 with this machine's end of the
pair: no default route, so its only peer is that one address. Whatever listens on this
machine's 127.0.0.1 (the shared MariaDB and RabbitMQ) is out of its reach, as it would be
from another computer; a test lends it a server by running a forwarder on `host_address`
(tests/support/proxy.py, `listen_host`). Needs root (CAP_NET_ADMIN); `machine()` raises
`NamespacesUnavailableError` when `ip netns add` is refused, for the test to skip.
"""

import ipaddress
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SUBNETS = ipaddress.ip_network("10.231.0.0/16")  # private, and unused by the machine (checked)
# `ip netns exec NS` bind-mounts the files of /etc/netns/NS/ over /etc/ (hosts, resolv.conf).
NETNS_ETC = Path("/etc/netns")


class NamespacesUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Machine:
    namespace: str
    host_address: str  # this machine's end of the veth pair (the root namespace)
    address: str  # the other machine's

    @property
    def prefix(self) -> list[str]:
        """Runs a command on the other machine: `[*machine.prefix, "python", ...]`."""
        return [_ip(), "netns", "exec", self.namespace]

    def run(self, *command: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *command], capture_output=True, text=True, timeout=timeout_s, check=False
        )


def _ip() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def _run(*args: str) -> None:
    subprocess.run([_ip(), *args], check=True, capture_output=True, text=True, timeout=30)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of SUBNETS no interface of this machine is on (other tests may hold one)."""
    taken = subprocess.run(
        [_ip(), "-o", "-4", "addr", "show"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    candidates = list(SUBNETS.subnets(new_prefix=30))
    for subnet in random.sample(candidates, 50):
        if not any(str(address) in taken for address in subnet.hosts()):
            return subnet
    raise RuntimeError(f"no free /30 in {SUBNETS}")


@contextmanager
def machine(central_names: tuple[str, ...] = ()) -> Iterator[Machine]:
    """A new namespace with a veth pair to this one, deleted afterwards (also on failure).
    `central_names` resolve, on the other machine, to this machine's end of the pair (its
    /etc/hosts), as a node would reach the central machine by the name in its certificates."""
    tag = uuid.uuid4().hex[:8]
    namespace, host_end, far_end = f"att-{tag}", f"vah{tag}", f"van{tag}"  # interface names <= 15
    try:
        _run("netns", "add", namespace)
    except subprocess.CalledProcessError as error:
        raise NamespacesUnavailableError(
            f"`ip netns add` failed (needs root): {error.stderr.strip()}"
        ) from error
    try:
        subnet = _free_subnet()
        host, far = (str(address) for address in subnet.hosts())
        _run("link", "add", host_end, "type", "veth", "peer", "name", far_end)
        _run("link", "set", far_end, "netns", namespace)
        _run("addr", "add", f"{host}/30", "dev", host_end)
        _run("link", "set", host_end, "up")
        _run("-n", namespace, "addr", "add", f"{far}/30", "dev", far_end)
        _run("-n", namespace, "link", "set", far_end, "up")
        _run("-n", namespace, "link", "set", "lo", "up")
        if central_names:
            (NETNS_ETC / namespace).mkdir(parents=True, exist_ok=True)
            hosts = f"127.0.0.1\tlocalhost\n{host}\t{' '.join(central_names)}\n"
            (NETNS_ETC / namespace / "hosts").write_text(hosts)
        yield Machine(namespace, host, far)
    finally:
        shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
        # Deleting one end of a veth pair deletes both; the namespace takes the far end with it.
        with suppress(subprocess.CalledProcessError):
            _run("link", "del", host_end)
        _run("netns", "del", namespace)
