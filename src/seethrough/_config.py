"""Help texts of typed configuration dataclasses, written once on the fields and read by the CLI.

A field documents itself either with ``metadata={"help": ...}`` or with a docstring right below it
(the attribute-docstring convention); both become the flag's ``--help``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from functools import cache
from typing import Any


@cache
def _attribute_docstrings(cls: type) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for statement, following in zip(body, body[1:]):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) \
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) \
                and isinstance(following.value.value, str):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def field_help(cls: type, name: str) -> str:
    """The help of field ``name`` of dataclass ``cls``, with its default appended when it has one."""
    field = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if field is None:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    text = field.metadata.get("help") or _attribute_docstrings(cls).get(name, "")
    default: Any = field.default
    if default is not dataclasses.MISSING and default is not None and not isinstance(default, bool) \
            and "default" not in text.lower():
        text = f"{text} (default: {default})"
    return text
