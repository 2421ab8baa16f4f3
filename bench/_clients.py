"""One adapter per client, each doing the same few things against the same engine.

An adapter exposes, where the client can do it:

* ``ping``      -- a zero-argument callable sending ``GET /_ping`` (returns the body or
                   True); async adapters return an awaitable.
* ``list_all``  -- list every container (``all=1``); returns how many came back.
* ``logs(cid)`` -- read a stopped container's whole log (``follow=false``); returns the
                   number of lines, which the scenario checks.

``is_async`` says whether the callables are coroutine functions. ``open``/``close``
create and dispose of the client (connections are warmed by the scenarios, not here).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ._raw import AsyncRawConnection, RawSocketPing, RawSync, socket_logs

RAW = "raw http.client"          # the floor every ratio is taken against
RAW_SOCKET = "raw socket"
RAW_ASYNC = "raw asyncio"
AIODOCKER = "aiodocker"
DOCKER_PY = "docker-py"
HTTPX_SYNC = "httpx.Client"
HTTPX_ASYNC = "httpx.AsyncClient"
GHOSTPANEL = "ghostpanel"


class Adapter:
    name = ""
    is_async = False
    ping: Any = None
    list_all: Any = None
    logs: Any = None

    def __init__(self, socket_path: str, api: str) -> None:
        self.socket_path = socket_path
        self.api = api

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


class RawHttpClient(Adapter):
    name = RAW

    async def open(self) -> None:
        self.raw = RawSync(self.socket_path, self.api)
        self.ping = self.raw.ping
        self.list_all = self.raw.list_all
        self.logs = self.raw.logs

    async def close(self) -> None:
        self.raw.close()


class RawHttpClientKept(Adapter):
    """The http.client floor keeping all lines in a list, as ``logs()`` must."""

    name = "raw http.client, lines kept"

    async def open(self) -> None:
        self.raw = RawSync(self.socket_path, self.api)
        self.logs = self.raw.logs_kept

    async def close(self) -> None:
        self.raw.close()


class RawSocket(Adapter):
    name = RAW_SOCKET

    async def open(self) -> None:
        self.raw = RawSocketPing(self.socket_path)
        self.ping = self.raw.ping

        def logs(cid: str) -> int:
            return socket_logs(self.socket_path, self.api, cid)

        self.logs = logs

    async def close(self) -> None:
        self.raw.close()


class RawAsyncio(Adapter):
    """One hand-written asyncio connection per concurrent caller (see ``connections``)."""

    name = RAW_ASYNC
    is_async = True

    async def open(self) -> None:
        self.conns: list[AsyncRawConnection] = [await AsyncRawConnection.open(self.socket_path)]
        self.ping = self.conns[0].ping

    async def connections(self, count: int) -> list[AsyncRawConnection]:
        while len(self.conns) < count:
            self.conns.append(await AsyncRawConnection.open(self.socket_path))
        return self.conns[:count]

    async def close(self) -> None:
        for conn in self.conns:
            await conn.close()


class Aiodocker(Adapter):
    name = AIODOCKER
    is_async = True

    async def open(self) -> None:
        import aiodocker

        self.docker = docker = aiodocker.Docker(url=f"unix://{self.socket_path}")

        async def ping() -> bytes:
            async with docker._query("_ping", versioned_api=False) as response:
                return await response.read()

        async def list_all() -> int:
            return len(await docker.containers.list(all=True))

        async def logs(cid: str) -> int:
            # aiodocker returns one str per frame; Podman sends one line per frame.
            lines = await docker.containers.container(cid).log(stdout=True, stderr=True)
            return sum(item.count("\n") for item in lines)

        self.ping, self.list_all, self.logs = ping, list_all, logs

    async def close(self) -> None:
        await self.docker.close()


class DockerPy(Adapter):
    name = DOCKER_PY

    async def open(self) -> None:
        import docker

        self.client = client = docker.DockerClient(base_url=f"unix://{self.socket_path}")
        self.ping = client.ping

        def list_all() -> int:
            # The documented call; sparse=False (the default) inspects every container.
            return len(client.containers.list(all=True))

        def logs(cid: str) -> int:
            data = client.api.logs(cid, stdout=True, stderr=True)  # bytes, frames joined
            return data.count(b"\n")

        self.list_all, self.logs = list_all, logs

    async def close(self) -> None:
        self.client.close()


class DockerPySparse(Adapter):
    """docker-py's listing without the N+1 inspects, for reference."""

    name = "docker-py sparse"

    async def open(self) -> None:
        import docker

        self.client = client = docker.DockerClient(base_url=f"unix://{self.socket_path}")

        def list_all() -> int:
            return len(client.containers.list(all=True, sparse=True))

        self.list_all = list_all

    async def close(self) -> None:
        self.client.close()


class HttpxSync(Adapter):
    name = HTTPX_SYNC

    async def open(self) -> None:
        import httpx

        self.client = client = httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket_path), base_url="http://d")

        def ping() -> bytes:
            return client.get("/_ping").content

        self.ping = ping

    async def close(self) -> None:
        self.client.close()


class HttpxAsync(Adapter):
    name = HTTPX_ASYNC
    is_async = True

    async def open(self) -> None:
        import httpx

        self.client = client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.socket_path), base_url="http://d")

        async def ping() -> bytes:
            return (await client.get("/_ping")).content

        self.ping = ping

    async def close(self) -> None:
        await self.client.aclose()


class GhostPanel(Adapter):
    name = GHOSTPANEL
    is_async = True
    package = "ghostpanel_kernel"

    async def open(self) -> None:
        connect = importlib.import_module(self.package).connect
        self.env = env = connect(f"unix://{self.socket_path}")
        self._containers: dict[str, Any] = {}
        self.ping = env.system.ping

        async def list_all() -> int:
            return len(await env.containers.list(all=True))

        async def logs(cid: str) -> int:
            container = await self._container(cid)
            return len(await container.logs())

        self.list_all, self.logs = list_all, logs

    async def _container(self, cid: str) -> Any:
        # Fetched once: the timed part is the log read (aiodocker's log() inspects too,
        # ~1 ms, under 0.1 % of a 200,000-line read).
        if cid not in self._containers:
            self._containers[cid] = await self.env.containers.get(cid)
        return self._containers[cid]

    async def close(self) -> None:
        await self.env.aclose()


class GhostPanelBatches(GhostPanel):
    name = "ghostpanel log_batches"

    async def open(self) -> None:
        await super().open()

        async def logs(cid: str) -> int:
            container = await self._container(cid)
            count = 0
            async for batch in container.log_batches():
                count += len(batch)
            return count

        self.logs = logs
        self.ping = self.list_all = None


CANDIDATE_PACKAGE = "ghostpanel_candidate"


def load_candidate(path: str) -> list[type[Adapter]]:
    """Import a modified copy of the ``ghostpanel_kernel`` folder as ``ghostpanel_candidate``.

    For trying a library change side by side with the current code, in the same run
    against the same engine (the package uses relative imports only, so the copy
    imports its own modules). Returns the two adapters measuring it.
    """
    init = Path(path) / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"--candidate {path}: no __init__.py (give the package folder)")
    spec = importlib.util.spec_from_file_location(
        CANDIDATE_PACKAGE, init, submodule_search_locations=[str(init.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[CANDIDATE_PACKAGE] = module
    spec.loader.exec_module(module)

    class Candidate(GhostPanel):
        name = "ghostpanel candidate"
        package = CANDIDATE_PACKAGE

    class CandidateBatches(GhostPanelBatches):
        name = "ghostpanel candidate log_batches"
        package = CANDIDATE_PACKAGE

    return [Candidate, CandidateBatches]


ALL = {cls.name: cls for cls in (RawSocket, RawHttpClient, RawHttpClientKept, RawAsyncio,
                                 Aiodocker, DockerPy, DockerPySparse, HttpxSync, HttpxAsync,
                                 GhostPanel, GhostPanelBatches)}


async def call(adapter: Adapter, fn: Any, *args: Any) -> Any:
    """Call an adapter's callable whether it is sync or async."""
    result = fn(*args)
    if adapter.is_async:
        result = await result
    return result

