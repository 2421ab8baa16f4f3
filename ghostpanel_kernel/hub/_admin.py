"""Demo administration of a running hub through its REST API (users, groups, tokens).

``ghostpanel hub user add|ls`` and ``ghostpanel hub token`` use the token of the hub's
``ghostpanel-admin`` service, which ``hub_config/jupyterhub_config.py`` made at the
hub's first start (a 0600 file under ``$GHOSTPANEL_HOME/hub/``); the hub's address comes
from the ``hub.json`` that the running ``ghostpanel hub`` wrote. JupyterHub's REST API:
``/hub/api/users``, ``/hub/api/groups``, ``/hub/api/users/NAME/tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from ._launch import HubError, running_hub
from ._paths import HubPaths

__all__ = ["HubAdmin", "HubNotRunning", "UnknownUser"]


class HubNotRunning(HubError):
    """No hub answers for this home; the message names the URL tried or the folder."""


class UnknownUser(HubError):
    """The hub has no user of that name."""


def _segment(name: str) -> str:
    return quote(name, safe="")


class HubAdmin:
    """A small JupyterHub REST client holding the admin service's token.

    Parameters
    ----------
    api_url
        The hub's API, e.g. ``http://127.0.0.1:8000/hub/api``.
    token
        A token allowed to manage users, groups and tokens.
    transport
        An httpx transport (tests pass ``httpx.MockTransport``).

    Examples
    --------
    >>> admin = HubAdmin.for_home(HubPaths.current())           # doctest: +SKIP
    >>> admin.add_user("ada", groups=["blue"])                   # doctest: +SKIP
    >>> admin.create_token("ada", note="docker CLI")             # doctest: +SKIP
    '3f1c...'
    """

    def __init__(self, api_url: str, token: str, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._client = httpx.Client(base_url=self.api_url + "/", transport=transport,
                                    headers={"Authorization": f"token {token}"},
                                    timeout=30.0)

    @classmethod
    def for_home(cls, paths: HubPaths) -> HubAdmin:
        """The client for the hub running from ``paths``' home.

        Raises
        ------
        HubNotRunning
            When no ``ghostpanel hub`` runs from that home.
        """
        state = paths.read_state()
        if state is None or running_hub(paths) is None:
            raise HubNotRunning(f"no hub runs for {paths.home} (nothing alive in "
                                f"{paths.folder}): start it with `ghostpanel hub`")
        try:
            token = paths.admin_token.read_text().strip()
        except OSError as error:
            raise HubNotRunning(f"cannot read the admin service's token "
                                f"{paths.admin_token}: {error.strerror}") from None
        return cls(state.api_url, token)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> HubAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, json: Any = None,
              allow: Iterable[int] = ()) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json)
        except httpx.TransportError as error:
            raise HubNotRunning(f"the hub does not answer at {self.api_url} ({error}): "
                                "is `ghostpanel hub` running?") from None
        if response.is_success or response.status_code in set(allow):
            return response
        raise HubError(f"the hub answered {method} {path} with {response.status_code}: "
                       f"{_message(response)}")

    def users(self) -> list[dict[str, Any]]:
        """Every hub user's model (name, admin, groups, last_activity...)."""
        models: list[dict[str, Any]] = self._call("GET", "users").json()
        return sorted(models, key=lambda model: str(model.get("name")))

    def user(self, name: str) -> dict[str, Any]:
        """One user's model.

        Raises
        ------
        UnknownUser
            When the hub has no such user.
        """
        response = self._call("GET", f"users/{_segment(name)}", allow=(404,))
        if response.status_code == 404:
            raise UnknownUser(f"the hub has no user {name!r} (add one with "
                              f"`ghostpanel hub user add {name}`)")
        model: dict[str, Any] = response.json()
        return model

    def add_user(self, name: str, *, admin: bool = False,
                 groups: Iterable[str] = ()) -> tuple[dict[str, Any], bool]:
        """Make ``name`` a hub user (if new) and a member of ``groups`` (made as needed).

        An existing user is kept, made an admin when ``admin`` is set, and added to the
        groups; nothing is taken away.

        Returns
        -------
        model : dict
            The user's model afterwards.
        created : bool
            Whether the user is new.
        """
        response = self._call("POST", f"users/{_segment(name)}", json={"admin": admin},
                              allow=(409,))
        created = response.status_code != 409
        if not created and admin:
            self._call("PATCH", f"users/{_segment(name)}", json={"admin": True})
        for group in dict.fromkeys(groups):
            self.add_to_group(group, [name])
        return self.user(name), created

    def add_to_group(self, group: str, users: Iterable[str]) -> None:
        """Add ``users`` to ``group``, making the group when the hub has none."""
        path = f"groups/{_segment(group)}"
        if self._call("GET", path, allow=(404,)).status_code == 404:
            self._call("POST", path, json={}, allow=(409,))  # 409: made meanwhile
        self._call("POST", f"{path}/users", json={"users": list(users)})

    def create_token(self, name: str, *, note: str | None = None,
                     expires_in: int | None = None) -> str:
        """A new API token for user ``name`` (with the user's own permissions).

        Raises
        ------
        UnknownUser
            When the hub has no such user.
        """
        self.user(name)  # a clear error for an unknown user, rather than the hub's 403
        body: dict[str, Any] = {"note": note or "ghostpanel hub token"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        token: str = self._call("POST", f"users/{_segment(name)}/tokens", json=body)\
            .json()["token"]
        return token


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.reason_phrase
