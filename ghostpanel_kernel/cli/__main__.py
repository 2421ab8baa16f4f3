"""``python -m ghostpanel_kernel.cli``: the ``ghostpanel`` command without the script."""

from . import main

main()
