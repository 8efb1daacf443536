#!/usr/bin/env python3
"""A TCP proxy that can play dead, for tests that put it between fleetcore and Postgres.

    tcp_proxy.py --target-port PORT [--target-host 127.0.0.1]

Listens on a free loopback port and prints "listening PORT". On SIGUSR1 it resets every
connection it carries and closes its port, so new connections are refused, as when the
database host has died, and prints "down"; on SIGUSR2 it listens on the same port again
and prints "up". SIGTERM ends it.
"""
import argparse
import asyncio
import signal
import socket
import struct
import sys


class Proxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = 0
        self.server = None
        self.transports = set()

    async def listen(self):
        self.server = await asyncio.start_server(
            self.carry, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def carry(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer.transport, server_writer.transport)
        self.transports.update(pair)

        async def pump(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pump(client_reader, server_writer),
                             pump(server_reader, client_writer))
        self.transports.difference_update(pair)

    async def down(self):
        self.server.close()
        await self.server.wait_closed()
        for t in list(self.transports):
            sock = t.get_extra_info("socket")
            if sock is not None:
                # RST rather than FIN: the peer sees the connection fail, not end politely.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()
        self.transports.clear()
        print("down", flush=True)

    async def up(self):
        await self.listen()
        print("up", flush=True)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args()
    proxy = Proxy(args.target_host, args.target_port)
    await proxy.listen()
    print(f"listening {proxy.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(proxy.down()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: loop.create_task(proxy.up()))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
