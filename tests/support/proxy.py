"""A TCP proxy a test can cut and restore, to take MySQL or RabbitMQ away from a service for
real (the shared servers themselves keep running for everyone else). Listening on another
address than loopback (`listen_host`), it also lends a loopback-only server to another network
namespace standing in for another machine (tests/support/netns.py)."""

import socket
import threading
from contextlib import suppress


class FlakyProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server((listen_host, 0))
        self.host = listen_host
        self.port = self._server.getsockname()[1]
        # The address of every client accepted, in order: which machine really connected.
        self.clients: list[str] = []
        self._up = threading.Event()
        self._up.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until restore()."""
        self._up.clear()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, peer = self._server.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            self.clients.append(peer[0])
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
