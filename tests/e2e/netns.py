"""Machines on one network, inside this one: Linux network namespaces joined by a bridge.

`Network` makes a bridge on a private /24 (the host side, `.1`) and one namespace per "machine"
(`.2`, `.3`, ...), each with a veth pair whose outer end is on the bridge. PostgreSQL and Redis listen
on 127.0.0.1 only, which a namespace cannot reach; their configuration is left as it is, and a
`Forwarder` (a TCP relay in the test process) listens on the bridge address and relays to them, so
every "machine" uses the same `DATABASE_URL` and `REDIS_URL`, as machines behind one database do.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN, for `ip netns add`); CI runs as root. Everything made
here is named with a random suffix and removed by `close()`, which the fixtures call whatever happens.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


class NetworkUnavailable(RuntimeError):
    """Namespaces or links could not be made (not root, no `ip`, a kernel without them)."""


def ip(*args: str) -> str:
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError as error:
        raise NetworkUnavailable("`ip` (iproute2) is not installed") from error
    if result.returncode != 0:
        raise NetworkUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _subnet_in_use(subnet: ipaddress.IPv4Network) -> bool:
    for line in ip("-4", "-o", "addr", "show").splitlines():
        address = line.split()[3]
        if ipaddress.ip_interface(address).network.overlaps(subnet):
            return True
    return False


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.231.0.0/16 that no interface of this host uses (several runs may share the host)."""
    start = uuid.uuid4().int % 256
    for offset in range(256):
        subnet = ipaddress.ip_network(f"10.231.{(start + offset) % 256}.0/24")
        if not _subnet_in_use(subnet):
            return subnet
    raise NetworkUnavailable("no free /24 in 10.231.0.0/16")


class Forwarder:
    """Relays TCP connections from `listen` (an address on the bridge) to `target`; counts the peers."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.peers: set[str] = set()
        self._server = socket.create_server((listen_host, 0))
        self.host, self.port = self._server.getsockname()[:2]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"forward-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, peer = self._server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self.peers.add(peer[0])
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._server.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@dataclass
class Namespace:
    name: str
    address: str

    def pids(self) -> set[int]:
        """The processes running in this namespace."""
        return {int(pid) for pid in ip("netns", "pids", self.name).split()}

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]


@dataclass
class Network:
    """A bridge on a free private /24 with the host at `.1`; `add_namespace` adds a "machine"."""

    suffix: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}{uuid.uuid4().hex[:4]}")
    namespaces: list[Namespace] = field(default_factory=list)
    forwarders: list[Forwarder] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subnet = _free_subnet()
        hosts = self.subnet.hosts()
        self.host_address = str(next(hosts))
        self._free = hosts
        self.bridge = f"fsbr{self.suffix}"  # interface names: at most 15 characters
        ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        ip("addr", "add", f"{self.host_address}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_namespace(self) -> Namespace:
        index = len(self.namespaces)
        namespace = Namespace(f"flagsvc-e2e-{self.suffix}-{index}", str(next(self._free)))
        outer, inner = f"fsv{self.suffix}{index}", f"fsn{self.suffix}{index}"
        ip("netns", "add", namespace.name)
        self.namespaces.append(namespace)
        ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", namespace.name)
        self._links.append(outer)
        ip("link", "set", outer, "master", self.bridge, "up")
        inside = ["-n", namespace.name]
        ip(*inside, "addr", "add", f"{namespace.address}/{self.subnet.prefixlen}", "dev", inner)
        ip(*inside, "link", "set", inner, "up")
        ip(*inside, "link", "set", "lo", "up")
        return namespace

    def forward(self, url: str) -> str:
        """`url` (postgres:// or redis:// on this host's loopback) as the namespaces reach it: through a
        forwarder on the bridge address."""
        parts = urlsplit(url)
        forwarder = Forwarder(self.host_address, (parts.hostname or "127.0.0.1", parts.port or 0))
        self.forwarders.append(forwarder)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host_address}:{forwarder.port}"))

    def close(self) -> None:
        """Remove everything made, each step on its own (a failed one does not keep the rest)."""
        for forwarder in self.forwarders:
            forwarder.close()
        for namespace in self.namespaces:
            with contextlib.suppress(NetworkUnavailable):
                ip("netns", "del", namespace.name)  # removes the inner veth ends, and so the outer ones
        for link in reversed(self._links):
            with contextlib.suppress(NetworkUnavailable):  # gone with its namespace's end already
                ip("link", "del", link)
