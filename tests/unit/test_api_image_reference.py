"""Image references checked before a create reaches the engine (Podman answers a
malformed one with a 500): what the engines parse passes, the rest is a ValueError."""

from __future__ import annotations

import pytest

from ghostpanel_kernel.engine._reference import check_reference


@pytest.mark.parametrize("reference", [
    "busybox", "localhost/busybox:latest", "docker.io/library/nginx:1.25-alpine",
    "registry.example.com:5000/team/app:v1_2", "127.0.0.1:5000/x:y", "a__b", "a---b",
    "quay.io/podman/hello@sha256:" + "0" * 64, "web:1@sha256:" + "a" * 64,
    "9b60bbf061e92814b872b0e824d8bb38f7b8da5ca4f5f813a0a5afb05f34f574",
    "sha256:9b60bbf061e92814b872b0e824d8bb38f7b8da5ca4f5f813a0a5afb05f34f574",
])
def test_references_the_engines_parse(reference: str) -> None:
    assert check_reference(reference) == reference


@pytest.mark.parametrize("reference", [
    "", "P z", "Busybox", "a/", "/a", "a:", "a:b:c", "a@sha256:12", "-a", "a..b",
    "a:" + "t" * 129, "x" * 256, "a/b:ta g", None, 7,
])
def test_anything_else_is_refused(reference: object) -> None:
    with pytest.raises(ValueError, match=r"is not an image reference: write \[REGISTRY/\]"):
        check_reference(reference, label="Image")
