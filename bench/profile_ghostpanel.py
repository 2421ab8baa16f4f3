"""Where ghostpanel's time goes: cProfile of its hot paths, and a per-step breakdown.

    PYTHONPATH=. .venv/bin/python bench/profile_ghostpanel.py [--engine unix:///x.sock]
        [--only ping,inflight,list,logs,wakeup] [--top 25]

Not part of the table: this is the tool behind the proposals in RESULTS.md. cProfile
inflates cheap calls, so the breakdown section also times each step of one request
alone (building the httpx.Request, the transport exchange, building the Response...)
with plain perf_counter loops.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench._engine import BenchEngine, log


def _stats(profile: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Keep the table, drop the preamble's absolute paths noise.
    return text[text.find("   ncalls"):] if "   ncalls" in text else text


async def _profile(engine: BenchEngine, only: set[str], top: int) -> None:
    import httpx

    from ghostpanel_kernel import connect
    from ghostpanel_kernel.engine._client import _url

    env = connect(engine.url)
    ping = env.system.ping
    for _ in range(200):
        await ping()

    if "ping" in only:
        n = 5000
        start = time.perf_counter()
        for _ in range(n):
            await ping()
        plain = (time.perf_counter() - start) / n * 1e6
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            await ping()
        profile.disable()
        print(f"\n=== ping x{n}: {plain:.1f} us/call without the profiler ===")
        print(_stats(profile, top))

        # Per-step breakdown, each step alone in a loop (no profiler).
        client = env.client
        transport = client._transport
        url = client._base + "/_ping"
        headers = {"Host": client._host_header}
        ext = {"timeout": client._timeout}
        request = httpx.Request("GET", _url(url), headers=headers, extensions=ext)
        steps = {}

        def loop(fn, k=20000):
            start = time.perf_counter()
            for _ in range(k):
                fn()
            return (time.perf_counter() - start) / k * 1e6

        steps["httpx.Request(...) (cached URL)"] = loop(
            lambda: httpx.Request("GET", _url(url), headers=headers, extensions=ext))
        steps["httpx.Headers(dict)"] = loop(lambda: httpx.Headers(headers))
        steps["httpx.Response(200, headers=13, stream=ByteStream)"] = loop(
            lambda: httpx.Response(200, headers=[(b"Content-Length", b"2")] * 13,
                                   stream=httpx.ByteStream(b"OK"), request=request,
                                   extensions={"x": b"OK"}))

        async def aloop(fn, k=5000):
            start = time.perf_counter()
            for _ in range(k):
                await fn()
            return (time.perf_counter() - start) / k * 1e6

        async def timeout_only():
            async with asyncio.timeout(60.0):
                pass

        steps["async with asyncio.timeout(60)"] = await aloop(timeout_only)
        steps["transport.handle_async_request(request)"] = await aloop(
            lambda: transport.handle_async_request(request))
        steps["client._request('GET', '/_ping')"] = await aloop(
            lambda: client._request("GET", "/_ping", versioned=False))
        steps["env.system.ping()"] = await aloop(ping)
        print("=== ping: per-step cost, us (each step alone, median-free single loop) ===")
        for name, value in steps.items():
            print(f"  {value:8.1f}  {name}")

    if "inflight" in only:
        width, per = 50, 100

        async def worker():
            for _ in range(per):
                await ping()

        await asyncio.gather(*(worker() for _ in range(width)))
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        await asyncio.gather(*(worker() for _ in range(width)))
        profile.disable()
        elapsed = time.perf_counter() - start
        rate = width * per / elapsed
        print(f"\n=== {width} in flight x{per}: {rate:,.0f} req/s under the profiler ===")
        print(_stats(profile, top))

    if "list" in only:
        n = 3000
        for _ in range(100):
            await env.containers.list(all=True)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            await env.containers.list(all=True)
        profile.disable()
        print(f"\n=== containers.list(all=True) x{n} (0 containers) ===")
        print(_stats(profile, top))

    if "logs" in only:
        lines = 200_000
        (cid,) = await engine.create_containers(1, command=["seq", "1", str(lines)])
        await engine.start_and_wait(cid)
        container = await env.containers.get(cid)
        assert len(await container.logs()) == lines
        start = time.perf_counter()
        await container.logs()
        plain = time.perf_counter() - start
        profile = cProfile.Profile()
        profile.enable()
        got = await container.logs()
        profile.disable()
        assert len(got) == lines
        rate = lines / plain
        print(f"\n=== logs(): {lines:,} lines, {rate:,.0f} lines/s without the profiler ===")
        print(_stats(profile, top))
        await engine.remove([cid])

    if "wakeup" in only:
        # The engine's wake-up penalty: a raw asyncio ping with busy work added between
        # calls. How long socket.send takes once the engine's threads went idle.
        from bench._raw import AsyncRawConnection

        raw = await AsyncRawConnection.open(engine.socket_path)
        print("\n=== raw asyncio /_ping with busy work between calls ===")
        for extra_us in (0, 25, 50, 100):
            def spin(us: float = extra_us) -> None:
                end = time.perf_counter() + us / 1e6
                while time.perf_counter() < end:
                    pass

            async def call() -> None:
                spin()
                await raw.ping()

            for _ in range(200):
                await call()
            n = 2000
            start = time.perf_counter()
            for _ in range(n):
                await call()
            per_call = (time.perf_counter() - start) / n * 1e6 - extra_us
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(n):
                await call()
            profile.disable()
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            send = next(v for k, v in stats.items()
                        if k[2] == "<method 'send' of '_socket.socket' objects>")
            print(f"  +{extra_us:3d} us of work: {per_call:6.1f} us/call besides the work, "
                  f"socket.send {send[2] / n * 1e6:5.1f} us")
        await raw.close()

    await env.aclose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine")
    parser.add_argument("--only", default="ping,inflight,list,logs,wakeup")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    engine = BenchEngine(args.engine)
    try:
        engine.start()
        asyncio.run(_profile(engine, set(args.only.split(",")), args.top))
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
