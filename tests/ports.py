"""Loopback ports for the servers and processes the tests start."""

from __future__ import annotations

import random
import socket

# Ports for processes we start are picked below the kernel's ephemeral range (32768 and up on Linux): a port
# it hands out for port 0 is free again once that socket closes, and may go to someone's outgoing connection
# before the process we start binds it, which a busy parallel run does see.
PICKED_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now, not handed out before in this run."""
    for _ in range(1000):
        port = random.choice(PICKED_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")
