#!/usr/bin/python3
"""The asyncio peer: the server from the article portico answers, as written
there, so the comparison is with what people actually deploy.

    asyncio_server.py PORT greeting|echo [--uvloop]

greeting: read up to 100 bytes, reply "Hello from server!\\n", drain, close.
echo:     write back whatever arrives until the client closes.
Listens on 127.0.0.1 and prints "ready" once it does. Stdlib only, plus
uvloop (Debian's python3-uvloop) when asked for.
"""
import asyncio
import sys


async def greeting(reader, writer):
    await reader.read(100)
    writer.write(b"Hello from server!\n")
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port, handler):
    # backlog as for every other peer, so none loses connections to a short queue
    server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] not in ("greeting", "echo"):
        sys.exit("usage: asyncio_server.py PORT greeting|echo [--uvloop]")
    if "--uvloop" in sys.argv[3:]:
        import uvloop
        uvloop.install()
    asyncio.run(main(int(sys.argv[1]), greeting if sys.argv[2] == "greeting" else echo))
