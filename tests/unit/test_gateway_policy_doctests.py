"""The examples in the gateway policy modules' docstrings run and hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from ghostpanel_kernel.gateway import (
    _api_routes,
    _body_review,
    _canonical_path,
    _engine_policy,
    _engine_routes,
    _go_json,
    _ownership,
    _permissions,
    _refusal,
)


@pytest.mark.parametrize("module", [_api_routes, _body_review, _canonical_path,
                                    _engine_policy, _engine_routes, _go_json, _ownership,
                                    _permissions, _refusal], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
