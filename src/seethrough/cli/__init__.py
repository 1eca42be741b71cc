"""The ``seethrough`` command: a thin layer over the Python API (see :mod:`seethrough.cli.app`)."""
