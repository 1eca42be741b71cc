"""The ``seethrough`` command line: this entry module imports every command module (each registers
its commands on the shared ``app``) and runs it. ``python -m seethrough.cli.app`` and
``python -m seethrough`` work the same. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

from .._process import exit_without_teardown
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
    """The process entry (the ``seethrough`` script, ``python -m seethrough``): runs the command, then ends
    the process with its exit status. Never call it from library code or tests: it does not return."""
    try:
        app()
        code: int | str | None = 0
    except SystemExit as done:  # typer ends every command this way, 0 included
        code = done.code
    except SeethroughError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        code = 2
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        code = 130
    exit_without_teardown(code)


if __name__ == "__main__":
    main()
