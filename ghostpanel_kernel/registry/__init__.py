"""A small client of the registry API (OCI distribution): what digest a tag names now.

GhostPanel pulls through the engines; it asks a registry itself only to tell whether
an image has changed there (``ghostpanel ps --updates``, see
:mod:`ghostpanel_kernel.engine._image_updates`): one ``HEAD`` of a manifest, with the
registry's authentication. The modules: ``_names`` (references as a registry reads
them), ``_auth`` (stored logins, challenges), ``_client``, ``_errors``.

>>> from ghostpanel_kernel.registry import RegistryClient, parse_image_name
>>> async with RegistryClient() as registry:                          # doctest: +SKIP
...     await registry.manifest_digest(parse_image_name("nginx:1.27"))
'sha256:...'
"""

from ._auth import Challenge, Credentials, auth_file_paths, find_credentials, parse_challenge
from ._client import MANIFEST_TYPES, CredentialLookup, RegistryClient
from ._errors import ManifestNotFound, RegistryAuthError, RegistryError, RegistryUnreachable
from ._names import DOCKER_HUB, ImageName, parse_image_name, same_repository

__all__ = [
    "DOCKER_HUB",
    "MANIFEST_TYPES",
    "Challenge",
    "CredentialLookup",
    "Credentials",
    "ImageName",
    "ManifestNotFound",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "RegistryUnreachable",
    "auth_file_paths",
    "find_credentials",
    "parse_challenge",
    "parse_image_name",
    "same_repository",
]
