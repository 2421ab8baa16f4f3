"""Image update checks without a network: the registry client's auth dance against a
canned registry and token service (``httpx.MockTransport``), reference normalisation,
stored logins, and :func:`check_updates` against a canned engine.

The real registry (pull, push a new image under the same tag, ``surge apply --pull``)
is in ``tests/integration/test_image_updates.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghostpanel_kernel.engine import Container, UpdateStatus, check_updates
from ghostpanel_kernel.engine._image_updates import (
    clear_update_cache,
    update_cell,
    update_cells,
)
from ghostpanel_kernel.registry import (
    MANIFEST_TYPES,
    Credentials,
    ImageName,
    ManifestNotFound,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryUnreachable,
    find_credentials,
    parse_challenge,
    parse_image_name,
)
from tests.unit.fake_engine import FakeEngine, env_for, json_answer

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_update_cache()


# -- references -------------------------------------------------------------------------


@pytest.mark.parametrize(("reference", "expected"), [
    ("busybox", ("docker.io", "library/busybox", "latest", "")),
    ("nginx:1.27", ("docker.io", "library/nginx", "1.27", "")),
    ("grafana/grafana", ("docker.io", "grafana/grafana", "latest", "")),
    ("index.docker.io/library/redis:7", ("docker.io", "library/redis", "7", "")),
    ("docker.io/redis", ("docker.io", "library/redis", "latest", "")),
    ("ghcr.io/team/app/api:v2", ("ghcr.io", "team/app/api", "v2", "")),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000", "app", "latest", "")),
    ("localhost:5000/a/b:c", ("localhost:5000", "a/b", "c", "")),
    ("localhost/busybox:latest", ("localhost", "busybox", "latest", "")),
    (f"quay.io/x/y@{DIGEST_A}", ("quay.io", "x/y", "", DIGEST_A)),
    (f"quay.io/x/y:1@{DIGEST_A}", ("quay.io", "x/y", "1", DIGEST_A)),
])
def test_references_are_normalised_as_the_engines_do(reference: str,
                                                     expected: tuple[str, ...]) -> None:
    name = parse_image_name(reference)
    assert (name.registry, name.repository, name.tag, name.digest) == expected


def test_image_ids_and_bad_references_are_refused() -> None:
    for reference in ("a" * 64, "sha256:" + "c" * 64):
        with pytest.raises(ValueError, match="image id"):
            parse_image_name(reference)
    with pytest.raises(ValueError, match="not an image reference"):
        parse_image_name("Bad Name")


def test_docker_hub_is_asked_at_its_api_host_and_podman_local_names_are_local() -> None:
    assert parse_image_name("busybox").api_host == "registry-1.docker.io"
    assert parse_image_name("localhost/x").local
    assert not parse_image_name("localhost:5000/x").local
    assert parse_image_name("127.0.0.1:5000/x").host == "127.0.0.1"


# -- challenges and stored logins -------------------------------------------------------


def test_bearer_and_basic_challenges_are_parsed() -> None:
    bearer = parse_challenge('Bearer realm="https://auth.example/token",'
                             'service="registry.example",scope="repository:a/b:pull,push"')
    assert bearer.scheme == "bearer"
    assert dict(bearer.params) == {"realm": "https://auth.example/token",
                                   "service": "registry.example",
                                   "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="Registry \\"Realm\\""').params["realm"] == \
        'Registry "Realm"'
    assert parse_challenge("").scheme == ""


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_come_from_the_first_file_that_has_the_registry(tmp_path: Path) -> None:
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps({"auths": {
        "reg.example:5000": {"auth": _auth("pod", "p1")},
        "quay.io/team": {"auth": _auth("narrow", "p2")},
        "quay.io": {"auth": _auth("wide", "p3")},
        "broken.example": {"auth": "not base64!"}}}))
    docker = tmp_path / "config.json"
    docker.write_text(json.dumps({"auths": {
        "reg.example:5000": {"auth": _auth("dock", "d1")},
        "https://index.docker.io/v1/": {"username": "hub", "password": "h1"}}}))
    paths = [tmp_path / "missing.json", podman, docker]
    assert find_credentials(parse_image_name("reg.example:5000/a"), paths=paths) == \
        Credentials("pod", "p1")
    assert find_credentials(parse_image_name("quay.io/team/app"), paths=paths) == \
        Credentials("narrow", "p2")
    assert find_credentials(parse_image_name("quay.io/other/app"), paths=paths) == \
        Credentials("wide", "p3")
    assert find_credentials(parse_image_name("busybox"), paths=paths) == Credentials("hub", "h1")
    assert find_credentials(parse_image_name("broken.example/x"), paths=paths) is None
    assert "h1" not in repr(Credentials("hub", "h1"))


# -- the registry client ----------------------------------------------------------------


@dataclass
class FakeRegistry:
    """A registry (``reg.test``) and its token service (``auth.test``), over MockTransport.

    ``auth``: ``None`` (open), ``"bearer"`` or ``"basic"``. ``login``: the credentials
    the token service (or Basic) accepts; with None, tokens are given anonymously.
    """

    manifests: dict[tuple[str, str], str] = field(default_factory=dict)
    auth: str | None = None
    login: Credentials | None = None
    digest_header: bool = True
    down_schemes: tuple[str, ...] = ()
    delay: float = 0.0
    calls: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    TOKEN = "tok-123"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, str(request.url)))
        if request.url.scheme in self.down_schemes:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "auth.test":
            return self._token(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self._manifest(request)
        finally:
            self.in_flight -= 1

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params["service"] == "reg.test"
        if self.login is not None and \
                request.headers.get("Authorization") != self.login.basic_header:
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        return httpx.Response(200, json={"token": self.TOKEN, "expires_in": 300})

    def _manifest(self, request: httpx.Request) -> httpx.Response:
        repository, _, tag = request.url.path.removeprefix("/v2/").rpartition("/manifests/")
        given = request.headers.get("Authorization")
        if self.auth == "bearer" and given != f"Bearer {self.TOKEN}":
            return httpx.Response(401, headers={"WWW-Authenticate": (
                'Bearer realm="https://auth.test/token",service="reg.test",'
                f'scope="repository:{repository}:pull"')})
        if self.auth == "basic" and (self.login is None or given != self.login.basic_header):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="reg"'})
        assert request.headers["Accept"] == ", ".join(MANIFEST_TYPES)
        digest = self.manifests.get((repository, tag))
        if digest is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        body = json.dumps({"schemaVersion": 2, "digest": digest}).encode()
        headers = {"Docker-Content-Digest": digest} if self.digest_header else {}
        return httpx.Response(200, headers=headers,
                              content=b"" if request.method == "HEAD" else body)

    def count(self, method: str, host: str) -> int:
        return sum(1 for m, url in self.calls if m == method and f"//{host}" in url)


def _client(registry: FakeRegistry, **options: Any) -> RegistryClient:
    return RegistryClient(transport=httpx.MockTransport(registry),
                          credentials=lambda name: registry.login, **options)


async def test_an_anonymous_token_is_fetched_once_and_answers_the_challenge() -> None:
    registry = FakeRegistry({("team/app", "1"): DIGEST_A, ("team/app", "2"): DIGEST_B},
                            auth="bearer")
    async with _client(registry) as client:
        assert await client.manifest_digest(parse_image_name("reg.test/team/app:1")) == DIGEST_A
        assert await client.manifest_digest(parse_image_name("reg.test/team/app:2")) == DIGEST_B
    # Same realm, service and scope: the token is reused for the second tag.
    assert registry.count("GET", "auth.test") == 1
    assert registry.count("HEAD", "reg.test") == 4  # each: a 401, then with the token


async def test_a_token_for_a_login_is_asked_with_basic_credentials() -> None:
    registry = FakeRegistry({("private/app", "latest"): DIGEST_A}, auth="bearer",
                            login=Credentials("ada", "s3cret"))
    async with _client(registry) as client:
        assert await client.manifest_digest(
            parse_image_name("reg.test/private/app")) == DIGEST_A
    refused = FakeRegistry({("private/app", "latest"): DIGEST_A}, auth="bearer",
                           login=Credentials("ada", "s3cret"))
    client = RegistryClient(transport=httpx.MockTransport(refused),
                            credentials=lambda name: Credentials("ada", "wrong"))
    async with client:
        with pytest.raises(RegistryAuthError, match="refused the stored login"):
            await client.manifest_digest(parse_image_name("reg.test/private/app"))
    anonymous = RegistryClient(transport=httpx.MockTransport(refused),
                               credentials=lambda name: None)
    async with anonymous:
        with pytest.raises(RegistryAuthError, match="private: log in"):
            await anonymous.manifest_digest(parse_image_name("reg.test/private/app"))


async def test_basic_auth_uses_the_stored_login_or_says_one_is_needed() -> None:
    registry = FakeRegistry({("app", "latest"): DIGEST_A}, auth="basic",
                            login=Credentials("bob", "pw"))
    async with _client(registry) as client:
        assert await client.manifest_digest(parse_image_name("reg.test/app")) == DIGEST_A
    registry.login = None
    async with _client(registry) as client:
        with pytest.raises(RegistryAuthError, match="needs a login"):
            await client.manifest_digest(parse_image_name("reg.test/app"))


async def test_missing_tags_missing_headers_and_unreachable_registries() -> None:
    registry = FakeRegistry({("app", "1"): DIGEST_A}, digest_header=False)
    async with _client(registry) as client:
        with pytest.raises(ManifestNotFound, match="app:2"):
            await client.manifest_digest(parse_image_name("reg.test/app:2"))
        # No Docker-Content-Digest on HEAD: the manifest is fetched and hashed.
        body = json.dumps({"schemaVersion": 2, "digest": DIGEST_A}).encode()
        assert await client.manifest_digest(parse_image_name("reg.test/app:1")) == \
            "sha256:" + hashlib.sha256(body).hexdigest()
    down = FakeRegistry(down_schemes=("https", "http"))
    async with _client(down) as client:
        with pytest.raises(RegistryUnreachable, match="cannot connect"):
            await client.manifest_digest(parse_image_name("reg.test/app:1"))
    with pytest.raises(ValueError, match="local image"):
        await RegistryClient().manifest_digest(parse_image_name("localhost/app"))


async def test_an_insecure_registry_falls_back_to_plain_http() -> None:
    registry = FakeRegistry({("app", "1"): DIGEST_A}, down_schemes=("https",))
    async with _client(registry, insecure={"reg.test"}) as client:
        assert await client.manifest_digest(parse_image_name("reg.test/app:1")) == DIGEST_A
    assert [url.split(":")[0] for _, url in registry.calls] == ["https", "http"]
    secure = FakeRegistry({("app", "1"): DIGEST_A}, down_schemes=("https",))
    async with _client(secure) as client:  # not declared insecure: HTTPS only
        with pytest.raises(RegistryUnreachable):
            await client.manifest_digest(parse_image_name("reg.test/app:1"))
    assert all(url.startswith("https:") for _, url in secure.calls)


# -- check_updates against a canned engine ------------------------------------------------


def _listed(name: str, image: str, image_id: str) -> dict[str, Any]:
    return {"Id": f"{name}-id", "Names": [f"/{name}"], "Image": image, "ImageID": image_id,
            "State": "running", "Status": "Up", "Labels": {}}


def _engine(containers: list[dict[str, Any]], images: dict[str, list[str]],
            insecure: tuple[str, ...] = ("reg.test",)) -> FakeEngine:
    routes = {("GET", "/containers/json"): json_answer(containers),
              ("GET", "/info"): json_answer({"RegistryConfig": {"IndexConfigs": {
                  name: {"Name": name, "Secure": False} for name in insecure}}})}
    for image_id, digests in images.items():
        routes[("GET", f"/images/{image_id}/json")] = json_answer(
            {"Id": image_id, "RepoDigests": digests})
    return FakeEngine(routes)


async def test_each_container_is_current_updated_or_unknown_with_a_reason() -> None:
    containers = [
        _listed("web", "reg.test/team/web:1", "sha256:img1"),
        _listed("web2", "reg.test/team/web:1", "sha256:img1"),  # same image: asked once
        _listed("api", "reg.test/team/api:2", "sha256:img2"),
        _listed("built", "localhost/mine:latest", "sha256:img3"),
        _listed("pinned", f"reg.test/team/web@{DIGEST_A}", "sha256:img1"),
        _listed("imported", "reg.test/team/imp:1", "sha256:img4"),
        _listed("gone", "reg.test/team/gone:1", "sha256:img5"),
        _listed("removed", "reg.test/team/web:1", "sha256:img6"),
    ]
    engine = _engine(containers, {
        "sha256:img1": [f"reg.test/team/web@{DIGEST_A}", f"localhost/x@{DIGEST_B}"],
        "sha256:img2": [f"reg.test/team/api@{DIGEST_A}"],
        "sha256:img3": [],
        "sha256:img4": [f"other.test/imp@{DIGEST_A}"],  # a digest, but not from reg.test
        "sha256:img5": [f"reg.test/team/gone@{DIGEST_A}"]})
    registry = FakeRegistry({("team/web", "1"): DIGEST_A, ("team/api", "2"): DIGEST_B})
    async with env_for(engine) as env:
        statuses = await check_updates(env, transport=httpx.MockTransport(registry),
                                       credentials=lambda name: None)
    by_name = {status.container: status for status in statuses.values()}
    assert set(statuses) == {f"{c['Names'][0][1:]}-id" for c in containers}
    assert {name: s.state for name, s in by_name.items()} == {
        "web": "current", "web2": "current", "api": "update-available", "built": "unknown",
        "pinned": "unknown", "imported": "unknown", "gone": "unknown", "removed": "unknown"}
    assert by_name["api"].registry_digest == DIGEST_B
    assert by_name["api"].running_digests == (DIGEST_A,)
    assert "is now sha256:bbbbbbbbbbbb" in by_name["api"].reason
    assert "local image" in by_name["built"].reason
    assert "pinned" in by_name["pinned"].reason
    assert "no digest from reg.test/team/imp" in by_name["imported"].reason
    assert "tag not in the registry" in by_name["gone"].reason
    assert "no longer on the engine" in by_name["removed"].reason
    assert by_name["web"].environment == "local" and by_name["web"].image == \
        "reg.test/team/web:1"
    # One HEAD per distinct reference that has digests to compare: web:1, api:2, gone:1.
    heads = Counter(url for method, url in registry.calls if method == "HEAD")
    assert sorted(heads.values()) == [1, 1, 1], heads
    # One inspect per distinct image.
    inspects = Counter(c[1] for c in engine.calls if c[1].startswith("/images/"))
    assert set(inspects.values()) == {1}
    assert update_cell(by_name["api"]) == "update available"
    assert by_name["api"].to_dict()["state"] == "update-available"


async def test_answers_are_kept_briefly_and_an_unreachable_registry_is_unknown() -> None:
    containers = [_listed("web", "reg.test/web:1", "sha256:img1")]
    engine = _engine(containers, {"sha256:img1": [f"reg.test/web@{DIGEST_A}"]})
    registry = FakeRegistry({("web", "1"): DIGEST_A})
    transport = httpx.MockTransport(registry)
    async with env_for(engine) as env:
        first = await check_updates(env, transport=transport)
        registry.manifests[("web", "1")] = DIGEST_B  # pushed since
        kept = await check_updates(env, transport=transport)
        fresh = await check_updates(env, transport=transport, max_age=0)
        registry.down_schemes = ("https", "http")
        down = await check_updates(env, transport=transport, max_age=0)
    assert [s["web-id"].state for s in (first, kept, fresh)] == [
        "current", "current", "update-available"]
    assert registry.count("HEAD", "reg.test") == 2 + 2  # https refused, then http, each
    assert down["web-id"].state == "unknown"
    assert down["web-id"].reason.startswith("registry unreachable: reg.test: cannot connect")


async def test_registry_requests_are_bounded_by_concurrency() -> None:
    containers = [_listed(f"c{i}", f"reg.test/app{i}:1", f"sha256:img{i}") for i in range(6)]
    engine = _engine(containers, {f"sha256:img{i}": [f"reg.test/app{i}@{DIGEST_A}"]
                                  for i in range(6)})
    registry = FakeRegistry({(f"app{i}", "1"): DIGEST_A for i in range(6)}, delay=0.02,
                            down_schemes=())
    async with env_for(engine) as env:
        statuses = await check_updates(env, transport=httpx.MockTransport(registry),
                                       concurrency=2)
    assert {s.state for s in statuses.values()} == {"current"}
    assert registry.most_in_flight == 2


async def test_given_containers_are_checked_without_a_listing() -> None:
    engine = _engine([], {"sha256:img1": [f"reg.test/web@{DIGEST_A}"]})
    registry = FakeRegistry({("web", "1"): DIGEST_B})
    async with env_for(engine) as env:
        container = Container(env.client, _listed("web", "reg.test/web:1", "sha256:img1"),
                              environment=env.name)
        statuses = await check_updates(env, [container],
                                       transport=httpx.MockTransport(registry))
        cells = await update_cells(env, [container], transport=httpx.MockTransport(registry))
        with pytest.raises(ValueError, match="concurrency"):
            await check_updates(env, [container], concurrency=0)
    assert cells == {"web-id": "update available"}
    assert statuses["web-id"].available
    assert not any(call[1] == "/containers/json" for call in engine.calls)


def test_update_status_text() -> None:
    assert update_cell(None) == ""
    assert UpdateStatus("unknown", "why").to_dict() == {
        "state": "unknown", "reason": "why", "image": "", "running_digests": [],
        "registry_digest": ""}
    assert str(RegistryError("boom", registry="r.test")) == "r.test: boom"
    assert ImageName("reg.test", "a/b", "1").repository_name == "reg.test/a/b"


def test_the_docstring_examples_run() -> None:
    import doctest

    from ghostpanel_kernel.engine import _image_updates
    from ghostpanel_kernel.registry import _auth, _names

    for module in (_names, _auth, _image_updates):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


async def test_redeploy_needs_a_surge_project_whose_boltfile_is_here(tmp_path: Path) -> None:
    from ghostpanel_kernel.surge import StackContainer, StackProject, SurgeError, redeploy_latest

    engine = FakeEngine()
    async with env_for(engine) as env:
        def stack(managed: bool, boltfile: str) -> StackProject:
            return StackProject("shop", managed, (StackContainer(
                env.name, "shop_web", "web", 1, "running", "busybox", boltfile),))

        with pytest.raises(SurgeError, match="Bolt's CLI"):
            await redeploy_latest(env, stack(False, ""))
        with pytest.raises(SurgeError, match="name no Boltfile"):
            await redeploy_latest(env, stack(True, ""))
        with pytest.raises(SurgeError, match="not on this machine"):
            await redeploy_latest(env, stack(True, str(tmp_path / "gone.toml")))
        other = tmp_path / "Boltfile.toml"
        other.write_text('project = "other"\n[services.web]\nimage = "busybox"\n')
        with pytest.raises(SurgeError, match="is project 'other', not 'shop'"):
            await redeploy_latest(env, stack(True, str(other)))
    assert engine.requests == []  # refused before anything was asked of the engine


async def test_docker_insecure_cidrs_make_a_loopback_registry_plain_http() -> None:
    containers = [_listed("web", "localhost:5000/web:1", "sha256:img1")]
    engine = _engine(containers, {"sha256:img1": [f"localhost:5000/web@{DIGEST_A}"]},
                     insecure=())
    engine.routes[("GET", "/info")] = json_answer(
        {"RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}}})
    registry = FakeRegistry({("web", "1"): DIGEST_A}, down_schemes=("https",))
    async with env_for(engine) as env:
        statuses = await check_updates(env, transport=httpx.MockTransport(registry))
    assert statuses["web-id"].state == "current", statuses["web-id"].reason
    assert [url.split(":")[0] for _, url in registry.calls] == ["https", "http"]
