"""Boltfiles: load, edit, format and validate Bolt's TOML project files.

>>> from ghostpanel_kernel.bolt import Boltfile, validate
>>> bf = Boltfile.loads('project = "demo"\\n[services.web]\\nimage = "nginx"\\n')
>>> validate(bf)
[]
"""

from ghostpanel_kernel.bolt._boltfile import Boltfile
from ghostpanel_kernel.bolt._compose import ComposeError, ConversionResult, from_compose
from ghostpanel_kernel.bolt._diagnostics import Diagnostic, Severity
from ghostpanel_kernel.bolt._kubernetes import KubernetesExport, to_kubernetes
from ghostpanel_kernel.bolt._schema import BOLTFILE_SCHEMA, Key
from ghostpanel_kernel.bolt._service import BoltfileService
from ghostpanel_kernel.bolt._validator import validate, validate_file
from ghostpanel_kernel.bolt._values import PortMapping, VolumeMount

__all__ = [
    "BOLTFILE_SCHEMA",
    "Boltfile",
    "BoltfileService",
    "ComposeError",
    "ConversionResult",
    "Diagnostic",
    "Key",
    "KubernetesExport",
    "PortMapping",
    "Severity",
    "VolumeMount",
    "from_compose",
    "to_kubernetes",
    "validate",
    "validate_file",
]
