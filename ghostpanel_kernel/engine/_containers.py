"""Containers: the model and the collection (``env.containers``)."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from .._exceptions import EngineAPIError
from ._archive import (
    PATH_STAT_HEADER,
    FileEntry,
    TarMember,
    decode_path_stat,
    entries_of_members,
    entry_of_member,
    entry_of_path_stat,
    file_of_members,
    first_file_only,
    path_stat_is_dir,
    read_tar,
    single_file_archive,
    without_record_padding,
)
from ._arguments import (
    WAIT_CONDITIONS,
    check_grace_period,
    check_name,
    check_signal,
    check_tail,
)
from ._client import body_of, check_seconds, decode_json, encode_filters, quote_id
from ._container_spec import PortSpec, VolumeSpec, build_create_body
from ._exec_session import (
    OpeningSession,
    exec_config,
    exec_process_options,
    open_exec_session,
)
from ._models import Model
from ._state_text import status_text
from ._stats import StatsSample, has_precpu
from ._streams import FrameDemuxer, LogLine, iter_json_lines, iter_log_lines
from ._times import Timestamp, api_time

if TYPE_CHECKING:
    import httpx

    from ._client import EngineClient

__all__ = ["Container", "ContainerCollection", "ExecResult", "Logs"]

#: The engines' stop grace period when neither the call nor the container sets one.
_DEFAULT_STOP_TIMEOUT = 10

class Logs(list[LogLine]):
    """Lines read from a container's log, oldest first.

    ``str(logs)`` is the text as ``docker logs`` prints it; :attr:`stdout` and
    :attr:`stderr` keep the two streams apart.
    """

    def __str__(self) -> str:
        return "\n".join(str(line) for line in self)

    @property
    def stdout(self) -> str:
        """The stdout lines, joined."""
        return "\n".join(line.text for line in self if line.stream == "stdout")

    @property
    def stderr(self) -> str:
        """The stderr lines, joined."""
        return "\n".join(line.text for line in self if line.stream == "stderr")


@dataclass(frozen=True)
class ExecResult:
    """What a command run with :meth:`Container.exec` did.

    Attributes
    ----------
    exit_code
        The command's exit status.
    stdout, stderr
        Its output, each stream apart.
    """

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, for a quick look."""
        return self.stdout + self.stderr


def _is_multiplexed(content_type: str, tty: bool) -> bool:
    if "multiplexed" in content_type:
        return True
    if "raw-stream" in content_type:
        return False
    return not tty


class Container(Model):
    """A container on one engine.

    Examples
    --------
    >>> c = await env.containers.get("web")            # doctest: +SKIP
    >>> await c.restart(timeout=1); print(c.status)    # doctest: +SKIP
    """

    @property
    def name(self) -> str:
        """The container's name, without Docker's leading slash."""
        if self.attrs.get("Name"):
            return str(self.attrs["Name"]).lstrip("/")
        names = self.attrs.get("Names") or []
        return str(names[0]).lstrip("/") if names else self.short_id

    @property
    def image(self) -> str:
        """The image reference the container was created from."""
        config = self.attrs.get("Config")
        if isinstance(config, dict) and config.get("Image"):
            return str(config["Image"])
        return str(self.attrs.get("ImageName") or self.attrs.get("Image") or "")

    @property
    def state(self) -> str:
        """``created``, ``running``, ``paused``, ``exited``..."""
        state = self.attrs.get("State")
        if isinstance(state, dict):
            return str(state.get("Status", "")).lower()
        return str(state or "").lower()

    @property
    def status(self) -> str:
        """Docker's human status: ``Up 3 minutes``, ``Exited (0) 2 hours ago``...

        A listing carries it; from an inspect it is made from ``State`` by Docker's
        own rules (:func:`status_text`), as of now. Podman's listing leaves out the
        health that Docker's shows (``Up 2 hours (healthy)``); the inspect's form has it.
        """
        if self.attrs.get("Status"):
            return str(self.attrs["Status"])
        state = self.attrs.get("State")
        if isinstance(state, dict):
            return status_text(state)
        return self.state

    @property
    def health(self) -> str:
        """``healthy``, ``unhealthy``, ``starting``, or ``""`` without a healthcheck."""
        state = self.attrs.get("State")
        if isinstance(state, dict):
            health = state.get("Health") or state.get("Healthcheck") or {}
            return str(health.get("Status", "")) if isinstance(health, dict) else ""
        status = self.status.lower()
        for word in ("unhealthy", "healthy", "starting"):
            if f"({word})" in status:
                return word
        return ""

    @property
    def labels(self) -> dict[str, str]:
        """The container's labels."""
        config = self.attrs.get("Config")
        labels = config.get("Labels") if isinstance(config, dict) else self.attrs.get("Labels")
        return dict(labels or {})

    @property
    def ports(self) -> list[str]:
        """Published ports as ``HOSTIP:HOSTPORT->PORT/PROTO`` (or ``PORT/PROTO``)."""
        rendered: list[str] = []
        if isinstance(self.attrs.get("Ports"), list):  # listing form
            for port in self.attrs["Ports"]:
                inner = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
                if port.get("PublicPort"):
                    ip = port.get("IP") or "0.0.0.0"
                    rendered.append(f"{ip}:{port['PublicPort']}->{inner}")
                else:
                    rendered.append(inner)
            return rendered
        network = self.attrs.get("NetworkSettings") or {}
        for inner, bindings in (network.get("Ports") or {}).items():
            if not bindings:
                rendered.append(inner)
                continue
            for binding in bindings:
                ip = binding.get("HostIp") or "0.0.0.0"
                rendered.append(f"{ip}:{binding.get('HostPort')}->{inner}")
        return rendered

    @property
    def _path(self) -> str:
        return f"/containers/{quote_id(self.id or self.name)}"

    async def _inspect(self) -> Mapping[str, Any]:
        attrs: Mapping[str, Any] = await self._client.get_json(f"{self._path}/json")
        return attrs

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the container (a no-op if it is running)."""
        await self._client._request("POST", f"{self._path}/start")

    async def stop(self, *, timeout: int | None = None) -> None:
        """Stop: SIGTERM, then SIGKILL after ``timeout`` seconds (engine default: 10)."""
        timeout = check_grace_period(timeout)
        await self._client._request("POST", f"{self._path}/stop", params={"t": timeout},
                                    timeout=self._stop_wait(timeout))

    async def restart(self, *, timeout: int | None = None) -> None:
        """Stop (as :meth:`stop`) and start again."""
        timeout = check_grace_period(timeout)
        await self._client._request("POST", f"{self._path}/restart", params={"t": timeout},
                                    timeout=self._stop_wait(timeout))

    def _stop_wait(self, grace: int | None) -> float:
        """Seconds a stop may take to be answered: the grace period, and a margin.

        The engine answers when the container has stopped, up to the grace period after
        SIGTERM (a shell as PID 1 ignores it); without one, the container's own
        ``StopTimeout``, 10 s unless set.
        """
        if grace is None:
            config = self.attrs.get("Config")
            own = config.get("StopTimeout") if isinstance(config, dict) else None
            grace = own if isinstance(own, int) and own >= 0 else _DEFAULT_STOP_TIMEOUT
        return grace + 30.0

    async def pause(self) -> None:
        """Freeze every process of the container."""
        await self._client._request("POST", f"{self._path}/pause")

    async def unpause(self) -> None:
        """Thaw a paused container."""
        await self._client._request("POST", f"{self._path}/unpause")

    async def kill(self, *, signal: str | int = "SIGKILL") -> None:
        """Send ``signal`` to the container's main process."""
        await self._client._request("POST", f"{self._path}/kill",
                                    params={"signal": check_signal(signal)})

    async def rename(self, new_name: str) -> None:
        """Rename the container; ``attrs`` is refreshed."""
        check_name("new_name", new_name, optional=False)
        await self._client._request("POST", f"{self._path}/rename", params={"name": new_name})
        await self.reload()

    async def remove(self, *, force: bool = False, volumes: bool = False) -> None:
        """Remove the container; ``force`` stops it first, ``volumes`` drops anonymous ones.

        A forced removal of a running container is answered once it has stopped: Podman
        stops it as ``stop`` does (SIGTERM, then SIGKILL after its ``StopTimeout``), so
        the call waits as long as a stop may take.
        """
        await self._client._request("DELETE", self._path,
                                    params={"force": force, "v": volumes},
                                    timeout=self._stop_wait(None) if force else None)

    async def wait(self, *, condition: Literal["not-running", "next-exit", "removed"]
                   = "not-running", timeout: float | None = None) -> int:
        """Wait until the container stops; return its exit code."""
        if condition not in WAIT_CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(sorted(WAIT_CONDITIONS))}, "
                             f"got {condition!r}")
        if timeout is not None:
            check_seconds("timeout", timeout)
        response = await self._client._request(
            "POST", f"{self._path}/wait", params={"condition": condition},
            timeout=timeout if timeout is not None else 24 * 3600.0)
        result = decode_json(body_of(response), endpoint=self._client.url, method="POST",
                             path=self._client._api_path(f"{self._path}/wait"))
        return int(result.get("StatusCode", -1)) if isinstance(result, dict) else -1

    async def top(self, *, ps_args: str | None = None) -> dict[str, Any]:
        """Processes in the container: ``{"Titles": [...], "Processes": [[...], ...]}``."""
        result: dict[str, Any] = await self._client.get_json(
            f"{self._path}/top", params={"ps_args": ps_args})
        return result

    # -- logs ------------------------------------------------------------------------

    async def _is_tty(self) -> bool:
        config = self.attrs.get("Config")
        if not isinstance(config, dict):
            await self.reload()
            config = self.attrs.get("Config") or {}
        return bool(config.get("Tty"))

    async def _log_batches(self, *, follow: bool, tail: int | Literal["all"],
                           since: Timestamp | None, until: Timestamp | None,
                           timestamps: bool, stdout: bool, stderr: bool
                           ) -> AsyncGenerator[list[LogLine], None]:
        params = {"follow": follow, "stdout": stdout, "stderr": stderr,
                  "tail": check_tail(tail), "since": api_time(since),
                  "until": api_time(until), "timestamps": timestamps}
        response = await self._client._request("GET", f"{self._path}/logs", params=params,
                                               stream=True)
        content_type = response.headers.get("content-type", "")
        tty = False
        if "multiplexed" not in content_type and "raw-stream" not in content_type:
            try:
                tty = await self._is_tty()
            except BaseException:
                await response.aclose()
                raise
        body = self._client.iter_body(response)
        try:
            async with contextlib.aclosing(iter_log_lines(
                    body, multiplexed=_is_multiplexed(content_type, tty),
                    timestamps=timestamps)) as batches:
                async for batch in batches:
                    yield batch
        finally:
            await response.aclose()  # now, not when the generators are collected

    @overload
    def logs(self, *, follow: Literal[False] = False, tail: int | Literal["all"] = "all",
             since: Timestamp | None = None, until: Timestamp | None = None,
             timestamps: bool = False, stdout: bool = True, stderr: bool = True
             ) -> Awaitable[Logs]: ...

    @overload
    def logs(self, *, follow: Literal[True], tail: int | Literal["all"] = "all",
             since: Timestamp | None = None, until: Timestamp | None = None,
             timestamps: bool = False, stdout: bool = True, stderr: bool = True
             ) -> AsyncIterator[LogLine]: ...

    def logs(self, *, follow: bool = False, tail: int | Literal["all"] = "all",
             since: Timestamp | None = None, until: Timestamp | None = None,
             timestamps: bool = False, stdout: bool = True, stderr: bool = True
             ) -> Awaitable[Logs] | AsyncIterator[LogLine]:
        """Read the container's log, or follow it.

        Parameters
        ----------
        follow
            False: return the lines written so far (awaitable :class:`Logs`). True: an
            async iterator that yields each :class:`LogLine` as it is written and ends
            when the container stops.
        tail
            Only the last N lines (``"all"`` for every line).
        since, until
            Bounds of the lines: seconds since the epoch, a datetime (naive: local
            time), RFC 3339 text or a duration ago (``"10m"``); see
            :func:`~ghostpanel_kernel.engine._times.api_time_ns`.
        timestamps
            Ask the engine for each line's RFC 3339 time (``LogLine.timestamp``).
        stdout, stderr
            Which streams to read.
        """
        for bound in (since, until):  # checked now, so a bad one fails at the call
            api_time(bound)
        options: dict[str, Any] = {"tail": check_tail(tail), "since": since, "until": until,
                                   "timestamps": timestamps, "stdout": stdout,
                                   "stderr": stderr}
        if follow:
            return self._follow_logs(options)
        return self._read_logs(options)

    async def _read_logs(self, options: dict[str, Any]) -> Logs:
        logs = Logs()
        async for batch in self._log_batches(follow=False, **options):
            logs += batch
        return logs

    async def _follow_logs(self, options: dict[str, Any]) -> AsyncGenerator[LogLine, None]:
        async with contextlib.aclosing(self._log_batches(follow=True, **options)) as batches:
            async for batch in batches:
                for line in batch:
                    yield line

    async def log_batches(self, *, follow: bool = False, tail: int | Literal["all"] = "all",
                          since: Timestamp | None = None, until: Timestamp | None = None,
                          timestamps: bool = False, stdout: bool = True, stderr: bool = True
                          ) -> AsyncGenerator[list[LogLine], None]:
        """Like :meth:`logs`, yielding lines in the batches they arrived in.

        For readers of very long logs (and widgets appending to a view): one await per
        network read instead of one per line.
        """
        async for batch in self._log_batches(
                follow=follow, tail=tail, since=since, until=until, timestamps=timestamps,
                stdout=stdout, stderr=stderr):
            yield batch

    # -- stats -----------------------------------------------------------------------

    @overload
    def stats(self, *, stream: Literal[False] = False, cpu_window: float = 0.5
              ) -> Awaitable[StatsSample]: ...

    @overload
    def stats(self, *, stream: Literal[True], cpu_window: float = 0.5
              ) -> AsyncIterator[StatsSample]: ...

    def stats(self, *, stream: bool = False, cpu_window: float = 0.5
              ) -> Awaitable[StatsSample] | AsyncIterator[StatsSample]:
        """One resource sample, or a stream of them (Podman: one every 5 s).

        CPU % needs two readings. When the engine's one-shot sample carries no earlier
        reading (Podman's does not), a second sample is taken ``cpu_window`` seconds
        later and the percentage computed between the two, as ``docker stats`` does.
        """
        if stream:
            return self._stream_stats()
        return self._one_sample(cpu_window)

    async def _raw_sample(self) -> dict[str, Any]:
        sample: dict[str, Any] = await self._client.get_json(
            f"{self._path}/stats", params={"stream": False})
        return sample

    async def _one_sample(self, cpu_window: float) -> StatsSample:
        first = await self._raw_sample()
        if has_precpu(first) or cpu_window <= 0:
            return StatsSample.from_attrs(first, container=self.name)
        await asyncio.sleep(cpu_window)
        second = await self._raw_sample()
        return StatsSample.from_attrs(second, container=self.name, previous=first)

    async def _stream_stats(self) -> AsyncIterator[StatsSample]:
        response = await self._client._request("GET", f"{self._path}/stats",
                                               params={"stream": True}, stream=True)
        previous: dict[str, Any] | None = None
        async for raw in iter_json_lines(self._client.iter_body(response),
                                         endpoint=self._client.url):
            yield StatsSample.from_attrs(raw, container=self.name,
                                         previous=None if has_precpu(raw) else previous)
            previous = raw

    # -- exec ------------------------------------------------------------------------

    async def exec(self, command: str | Sequence[str], *, env: Mapping[str, str] | None = None,
                   workdir: str | None = None, user: str | None = None,
                   privileged: bool = False) -> ExecResult:
        """Run ``command`` in the running container; return its exit code and output.

        Examples
        --------
        >>> result = await c.exec(["sh", "-c", "echo hi; exit 3"])   # doctest: +SKIP
        >>> result.exit_code, result.stdout                           # doctest: +SKIP
        (3, 'hi\\n')
        """
        cmd = ["sh", "-c", command] if isinstance(command, str) else list(command)
        if not cmd or not all(isinstance(arg, str) for arg in cmd) or not cmd[0]:
            raise ValueError(f"exec needs a command (a string or a list of strings), got "
                             f"{command!r}")
        config: dict[str, Any] = {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True,
                                  "Tty": False, "Privileged": privileged,
                                  **exec_process_options(env, workdir, user)}
        created = await self._client.post_json(f"{self._path}/exec", body=config)
        exec_path = f"/exec/{quote_id(created['Id'])}"
        response = await self._client._request(
            "POST", f"{exec_path}/start", json_body={"Detach": False, "Tty": False},
            stream=True)
        out = bytearray()
        err = bytearray()
        demuxer = FrameDemuxer()
        async for piece in self._client.iter_body(response):
            for number, payload in demuxer.feed(piece):
                (err if number == 2 else out).extend(payload)
        inspect = await self._client.get_json(f"{exec_path}/json")
        exit_code = inspect.get("ExitCode")
        return ExecResult(exit_code=-1 if exit_code is None else int(exit_code),
                          stdout=out.decode("utf-8", "replace"),
                          stderr=err.decode("utf-8", "replace"))

    def exec_session(self, command: str | Sequence[str] = ("sh",), *, tty: bool = True,
                     env: Mapping[str, str] | None = None, workdir: str | None = None,
                     user: str | None = None,
                     size: tuple[int, int] | None = None) -> OpeningSession:
        """Start ``command`` with its stdin, output and terminal live (an interactive shell).

        On an engine reached directly, the Engine API's hijacked exec connection; on a
        GhostPanel agent, its ``ws /api/v1/containers/{id}/exec`` route (``docs/exec.md``).
        ``size`` is the terminal's first ``(rows, cols)``. Leaving ``async with`` (or
        :meth:`ExecSession.close`) ends the process if it still runs.

        Examples
        --------
        >>> async with c.exec_session(["sh"]) as shell:                  # doctest: +SKIP
        ...     await shell.send(b"echo hi; exit 3\\n")
        ...     await shell.wait()
        3
        """
        config = exec_config(command, tty=tty, env=env, workdir=workdir, user=user)
        return OpeningSession(lambda: open_exec_session(self._client, self.id, config, size))

    # -- files -----------------------------------------------------------------------

    async def _archive_request(self, method: str, path: str, *, stream: bool = False,
                               content: bytes | None = None) -> httpx.Response:
        try:
            # An upload is answered once extracted: no short first-byte limit on it.
            return await self._client._request(
                method, f"{self._path}/archive", params={"path": path}, stream=stream,
                content=content, timeout=None if stream else self._client.timeout,
                headers={"Content-Type": "application/x-tar"} if content is not None else None)
        except EngineAPIError as error:
            # Podman's words do not name the path ("no such file or directory"; Docker's
            # do), and the request path in the message carries no query: add it.
            if path in error.message.split():
                raise
            raise type(error)(error.status_code, f"{path}: {error.message}",
                              method=error.method, path=error.path) from error

    @contextlib.asynccontextmanager
    async def _archive_stream(self, path: str, *, keep_file: bool = False
                              ) -> AsyncIterator[tuple[Mapping[str, Any],
                                                       AsyncGenerator[TarMember, None]]]:
        """``GET /archive`` as it arrives: the path's stat and the tar's members.

        Leaving the block before the tar's end closes the connection, so the engine
        stops sending and the half-read connection is never reused (the transport
        drops a body closed early).
        """
        response = await self._archive_request("GET", path, stream=True)
        body = self._client.iter_body(response)
        members = read_tar(body, keep=first_file_only() if keep_file else None)
        try:
            yield decode_path_stat(response.headers.get(PATH_STAT_HEADER)), members
        finally:
            await members.aclose()
            await body.aclose()
            await response.aclose()

    async def get_archive(self, path: str) -> tuple[bytes, Mapping[str, Any]]:
        """A tar of ``path`` in the container and the engine's stat of it.

        The whole tar is read into memory: to list a directory use :meth:`list_files`,
        which reads only the tar's headers.
        """
        response = await self._archive_request("GET", path)
        return body_of(response), decode_path_stat(response.headers.get(PATH_STAT_HEADER))

    async def put_archive(self, path: str, data: bytes) -> None:
        """Extract the tar ``data`` into the directory ``path`` in the container.

        Record padding after the archive's end marker is not sent (see
        `without_record_padding`): Podman fails some uploads that carry it.
        """
        await self._archive_request("PUT", path, content=without_record_padding(data))

    async def stat_path(self, path: str) -> FileEntry:
        """What ``path`` is in the container, without reading it (``HEAD /archive``).

        A symlink is described itself (``kind == "symlink"``); its ``link_target`` is
        the absolute path it resolves to.

        Raises
        ------
        NotFound
            No such path (or no such container); the message names the path.

        Examples
        --------
        >>> entry = await c.stat_path("/etc/passwd")            # doctest: +SKIP
        >>> entry.kind, entry.size                              # doctest: +SKIP
        ('file', 75)
        """
        try:
            response = await self._archive_request("HEAD", path)
            path_stat = decode_path_stat(response.headers.get(PATH_STAT_HEADER))
        except EngineAPIError:
            path_stat = {}
        if path_stat:
            return entry_of_path_stat(path_stat, path)
        # A HEAD answer has no body, so a failed one does not say why (no such path? no
        # such container?): a GET's error does, in the engine's words. And an engine
        # that sends no stat header still sends the tar, whose first member is the path.
        async with self._archive_stream(path) as (path_stat, members):
            if path_stat:
                return entry_of_path_stat(path_stat, path)
            async for member in members:
                return entry_of_member(member.info, path)
        raise FileNotFoundError(f"{path}: the engine sent an empty archive")

    async def list_files(self, path: str = "/") -> list[FileEntry]:
        """The entries of directory ``path`` in the container, directories first.

        Only the tar's headers are read, as they arrive; file contents are skipped, so
        memory stays flat however large the directory. The engine still sends the
        whole tree below ``path`` (the Engine API has no directory listing): time grows
        with it. A path that is not a directory is refused from the answer's header,
        before any of its content is read.
        """
        async with self._archive_stream(path) as (path_stat, members):
            if path_stat and not path_stat_is_dir(path_stat):
                raise NotADirectoryError(f"{path} is not a directory in {self.name}")
            return await entries_of_members(members, path.rstrip("/") or "/")

    async def read_file(self, path: str) -> bytes:
        """The content of the regular file ``path`` in the container."""
        async with self._archive_stream(path, keep_file=True) as (path_stat, members):
            if path_stat and path_stat_is_dir(path_stat):
                raise IsADirectoryError(f"{path} is a directory in the container")
            data = await file_of_members(members, path)
            async for _ in members:  # the end marker: read, the connection is reused
                pass
            return data

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        """Create or replace the file ``path`` in the container with ``data``."""
        directory, name = posixpath.split(path)
        await self.put_archive(directory or "/", single_file_archive(name, data, mode=mode))


class ContainerCollection:
    """The containers of one engine (``env.containers``)."""

    _sync_wrap = True

    def __init__(self, client: EngineClient, *, environment: str = "") -> None:
        self._client = client
        self._environment = environment

    def _wrap(self, attrs: Mapping[str, Any]) -> Container:
        return Container(self._client, attrs, environment=self._environment)

    async def list(self, *, all: bool = False, filters: Mapping[str, Any] | None = None,
                   limit: int | None = None) -> list[Container]:
        """Containers, one request whatever their number.

        Parameters
        ----------
        all
            Include stopped containers.
        filters
            Engine filters, e.g. ``{"label": ["surge.project=web"], "status": "running"}``.
        limit
            At most this many, newest first.
        """
        entries = await self._client.get_json(
            "/containers/json",
            params={"all": all, "filters": encode_filters(filters), "limit": limit})
        return [self._wrap(entry) for entry in entries or []]

    async def get(self, id_or_name: str) -> Container:
        """The container with this id, id prefix or name; :class:`NotFound` otherwise."""
        attrs = await self._client.get_json(f"/containers/{quote_id(id_or_name)}/json")
        return self._wrap(attrs)

    async def create(
        self,
        *,
        image: str,
        name: str | None = None,
        command: str | Sequence[str] | None = None,
        entrypoint: str | Sequence[str] | None = None,
        env: Mapping[str, str] | Sequence[str] | None = None,
        ports: PortSpec | None = None,
        volumes: VolumeSpec | None = None,
        labels: Mapping[str, str] | None = None,
        network: str | None = None,
        network_aliases: Sequence[str] | None = None,
        restart_policy: str | Mapping[str, Any] | None = None,
        cpus: float | None = None,
        memory: int | str | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        tty: bool = False,
        stdin_open: bool = False,
        privileged: bool = False,
        read_only: bool = False,
        auto_remove: bool = False,
        healthcheck: Mapping[str, Any] | None = None,
        stop_signal: str | None = None,
        cap_add: Sequence[str] | None = None,
        cap_drop: Sequence[str] | None = None,
        devices: Sequence[str] | None = None,
    ) -> Container:
        """Create (not start) a container.

        Parameters
        ----------
        image
            Image reference, e.g. ``localhost/busybox:latest``.
        name
            Container name; the engine picks one when None.
        command, entrypoint
            A list of arguments, or a string split like a shell would.
        env
            ``{"KEY": "value"}`` or ``["KEY=value"]``.
        ports
            Container port → host port: ``{"8080/tcp": 18080}``, ``{8080: ("127.0.0.1",
            18080)}``, ``{8080: None}`` for any free host port.
        volumes
            Binds ``["/srv:/data:ro", "named-volume:/cache"]`` or ``{"/srv": "/data:ro"}``.
        labels
            String labels.
        network, network_aliases
            Network to join at creation, and aliases on it.
        restart_policy
            ``"no"``, ``"always"``, ``"unless-stopped"``, ``"on-failure[:N]"``.
        cpus, memory
            Limits: CPUs as a float (``1.5``), memory in bytes or ``"512m"``.
        working_dir, user, hostname, tty, stdin_open, privileged, read_only, auto_remove
            As ``docker run``'s flags of the same names.
        healthcheck
            Docker's ``Healthcheck`` object (``{"Test": ["CMD", ...], "Interval": ns}``).
        stop_signal, cap_add, cap_drop, devices
            As ``docker run``'s flags of the same names.

        Returns
        -------
        Container
            The new container, inspected.
        """
        check_name("name", name)
        body = build_create_body(
            image=image, command=command, entrypoint=entrypoint, env=env, ports=ports,
            volumes=volumes, labels=labels, network=network, network_aliases=network_aliases,
            restart_policy=restart_policy, cpus=cpus, memory=memory, working_dir=working_dir,
            user=user, hostname=hostname, tty=tty, stdin_open=stdin_open,
            privileged=privileged, read_only=read_only, auto_remove=auto_remove,
            healthcheck=healthcheck, stop_signal=stop_signal, cap_add=cap_add,
            cap_drop=cap_drop, devices=devices)
        created = await self._client.post_json("/containers/create", params={"name": name},
                                               body=body)
        return await self.get(created["Id"])

    async def prune(self, *, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Remove stopped containers: ``{"ContainersDeleted": [...], "SpaceReclaimed": n}``."""
        result: dict[str, Any] = await self._client.post_json(
            "/containers/prune", params={"filters": encode_filters(filters)},
            timeout=self._client.timeout)
        return result
