"""The listening sockets `serve` binds before it starts anything (no server process needed)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app.server import PortUnavailable, bind_listener


def test_accepted_connections_have_nagle_off():
    """asyncio sets TCP_NODELAY only on connections accepted from an IPPROTO_TCP socket; without
    it every response written in two parts waits out the client's delayed ACK (40 ms)."""
    sockets = bind_listener("127.0.0.1", 0)
    assert [s.proto for s in sockets] == [socket.IPPROTO_TCP]
    accepted: list[int] = []

    async def main() -> None:
        def on_connect(reader, writer):
            accepted.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sockets[0])
        port = sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not accepted:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert accepted and accepted[0] != 0


def test_every_address_of_the_host_and_clear_errors():
    both = bind_listener("", 0)  # all interfaces: IPv4 and, where the machine has it, IPv6 only
    try:
        assert socket.AF_INET in {s.family for s in both}
        for sock in both:
            if sock.family == socket.AF_INET6:
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        for sock in both:
            sock.close()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortUnavailable, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_listener("127.0.0.1", port)
    with pytest.raises(PortUnavailable, match="cannot listen on no-such-host.invalid"):
        bind_listener("no-such-host.invalid", 0)
