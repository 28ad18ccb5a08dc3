"""Ports for the servers tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range. The kernel gives ports in that
    range to outgoing connections, so a port picked there and bound later (a server starting, or
    restarting on the same port) may by then be some connection's local port, and its bind
    fails. Ports outside it are only ever bound on purpose; each is handed out once per run."""
    low, high = _ephemeral_range()
    spans = [span for span in ((10000, low), (high + 1, 65536)) if span[1] - span[0] > 1000]
    for _ in range(200):
        if not spans:
            break
        port = random.randrange(*random.choice(spans))
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # no room outside the range: any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
