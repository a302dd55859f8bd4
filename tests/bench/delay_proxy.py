"""A TCP proxy on 127.0.0.1 that adds a fixed delay before forwarding each request to the
upstream (moto), since real STS round trips take tens of milliseconds while moto answers
in a few. Usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS [PORT_FILE]. LISTEN_PORT 0
takes a free port; the port listened on is written to PORT_FILE once listening. Stops on
SIGTERM."""
import asyncio
import sys


async def pipe(reader, writer, delay):
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, upstream_port, delay):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pipe(client_reader, upstream_writer, delay),
        pipe(upstream_reader, client_writer, 0),
    )


async def main():
    listen_port, upstream_port, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream_port, delay_ms / 1000), "127.0.0.1", listen_port, backlog=2048
    )
    if len(sys.argv) > 4:
        with open(sys.argv[4], "w") as port_file:
            port_file.write(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
