"""A TCP forwarder on loopback in front of a real server, that a test can open late or cut.

mpr talks to the real SeaweedFS through it; `cut()` closes the listening socket and every
connection, as a server that stopped (or a network that went away) would: new connections are
refused and transfers in flight break off. The test suite's SeaweedFS is shared by every test,
so a test that needs S3 to go away cuts its own forwarder instead of stopping the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


class Forwarder:
    """`watch`, when given, sees every chunk a client sends before it is forwarded; when it
    returns True the forwarder cuts itself there (a fault at a chosen request, not a time)."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0,
                 watch: Callable[[bytes], bool] | None = None) -> None:
        self.target = (target_host, target_port)
        self.watch = watch
        self.listener = socket.create_server(("127.0.0.1", listen_port))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open = True
        threading.Thread(target=self._accept, daemon=True, name="forwarder").start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                if not self.open:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            threading.Thread(target=_pump, args=(client, upstream, self._watched),
                             daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    def _watched(self, data: bytes) -> bool:
        """False to forward `data`; True when the watch cut the forwarder here."""
        if self.watch is not None and self.watch(data):
            self.cut()
            return True
        return False

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def cut(self) -> None:
        """From now on S3 is gone: refused, and every open transfer reset."""
        with self.lock:
            self.open = False
            self.listener.close()
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                                    b"\x00\x00\x00\x00")  # close with RST, not FIN
                    sock.close()


def _pump(source: socket.socket, sink: socket.socket,
          cut_here: Callable[[bytes], bool] | None = None) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            if cut_here is not None and cut_here(data):
                return
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def forwarder(endpoint: str,
              watch: Callable[[bytes], bool] | None = None) -> Iterator[Forwarder]:
    """A Forwarder in front of the `http://host:port` S3 endpoint."""
    host, port = endpoint.split("://", 1)[1].rsplit(":", 1)
    proxy = Forwarder(host, int(port), watch=watch)
    try:
        yield proxy
    finally:
        proxy.cut()
