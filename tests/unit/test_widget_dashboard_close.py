"""An ``OpsDashboard`` whose construction failed part way is still closed quietly: ipywidgets
calls ``close()`` from ``__del__``, and an error there would surface as an unraisable
exception (a failure under ``filterwarnings = error``)."""

from __future__ import annotations

import gc

import pytest
from ghostpanel_widgets import _environment_picker
from ghostpanel_widgets._dashboard import OpsDashboard

from ghostpanel_kernel import GhostPanelError


def test_a_dashboard_that_failed_to_build_closes_quietly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_environment(*args: object, **kwargs: object) -> None:
        raise GhostPanelError("no environment is registered")

    monkeypatch.setattr(_environment_picker, "EnvironmentPicker", no_environment)
    with pytest.raises(GhostPanelError, match="no environment"):
        OpsDashboard(audit=False)
    gc.collect()  # the half-built dashboard's __del__ runs close() here
