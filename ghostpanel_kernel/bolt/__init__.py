"""Boltfiles: load, edit, format and validate Bolt's TOML project files.

>>> from ghostpanel_kernel.bolt import Boltfile, validate
>>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n')
>>> validate(bf)
[]
"""

from ghostpanel_kernel.bolt._boltfile import Boltfile
from ghostpanel_kernel.bolt._diagnostics import Diagnostic, Severity
from ghostpanel_kernel.bolt._schema import BOLTFILE_SCHEMA, Key
from ghostpanel_kernel.bolt._service import BoltfileService
from ghostpanel_kernel.bolt._validator import validate, validate_file
from ghostpanel_kernel.bolt._values import PortMapping, VolumeMount

__all__ = [
    "BOLTFILE_SCHEMA",
    "Boltfile",
    "BoltfileService",
    "Diagnostic",
    "Key",
    "PortMapping",
    "Severity",
    "VolumeMount",
    "validate",
    "validate_file",
]
