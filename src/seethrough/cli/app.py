"""The ``seethrough`` command line: this entry module imports every command module (each registers
its commands on the shared ``app``) and runs it. ``python -m seethrough.cli.app`` and
``python -m seethrough`` work the same. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

from ..errors import SeethroughError
# each module registers its commands on the shared app; the help shows their panels in this order
from . import data  # noqa: F401,I001
from . import training  # noqa: F401
from . import audits  # noqa: F401
from . import detect  # noqa: F401
from . import beliefs  # noqa: F401
from . import bias  # noqa: F401
from . import evaluation  # noqa: F401
from . import serve  # noqa: F401
from . import show  # noqa: F401
from . import control  # noqa: F401
from . import demo  # noqa: F401
from .shared import app, err, escape


def main() -> None:
    try:
        app()
    except SeethroughError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
