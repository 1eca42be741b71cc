"""The shape of the package: no import cycle, layers import only downward, and both entry points
(`python -m seethrough`, `python -m seethrough.cli.app`) see every command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "seethrough"

# the pipeline's layers, bottom to top (docs/architecture.md); a module may import its own layer or below
LAYERS = {"errors": 0, "_process": 0, "_files": 0, "_version": 0, "_threads": 0, "_config": 0,
          "corpus": 1, "index": 2, "train": 2, "distributed": 2, "model": 3, "audit": 4, "evaluate": 4, "show": 5, "serve": 5, "demo": 5, "cli": 6,
          "__init__": 6, "__main__": 7}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every seethrough module this file imports, at the top or inside a function (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("seethrough"):
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names)  # `from . import data` names a submodule
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("seethrough"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}  # names that are not modules drop out below
    # an edge to one's own parent package is not a cycle: Python imports a package before any of its modules
    return {name: {m for m in _imports(path) if m in modules and m != name and not name.startswith(m + ".")}
            for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else LAYERS["__init__"]


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_the_cycle_detector_finds_a_planted_cycle(tmp_path, monkeypatch):
    """The walk above would fail on a cycle: shown on two files that import each other."""
    (tmp_path / "seethrough").mkdir()
    (tmp_path / "seethrough" / "a.py").write_text("from . import b\n")
    (tmp_path / "seethrough" / "b.py").write_text("from .a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path / "seethrough")
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()


def test_layers_import_only_downward():
    wrong = [f"{a} imports {b}" for a, targets in _graph().items() for b in targets
             if a.count(".") and _layer(b) > _layer(a)]
    assert not wrong, "; ".join(sorted(wrong))


def test_library_code_does_not_print_or_exit():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.parts or path.name in ("__main__.py", "_process.py"):  # _process: how an entry point ends
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("print", "sys.exit", "exit", "quit"):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {name}")
    assert not offenders, offenders


COMMANDS = {"": ["count", "find", "ntd", "prob", "spans", "search", "document", "corpus", "index", "train", "batch",
                 "seen", "memorization", "membership", "trace", "facts", "bias", "probe", "lens", "detect", "erase", "steer",
                 "generate", "eval", "report", "release", "serve", "demo", "doctor"],
            "corpus": ["build", "verify", "info"], "index": ["build"], "bias": ["data", "model"]}


@pytest.mark.parametrize("entry", ["seethrough", "seethrough.cli.app"])
def test_both_entry_points_see_every_command(entry):
    """Run as a module, the entry must register every command on the one app (a CLI that imported its
    commands from a module importing it back once registered them on a second copy: "No such command")."""
    for group, names in COMMANDS.items():
        listed = subprocess.run([sys.executable, "-m", entry, *group.split(), "--help"], capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        listing = {line.strip("│ ").split(" ")[0] for line in listed.stdout.splitlines()}
        assert set(names) <= listing, f"{group or 'seethrough'}: missing {set(names) - listing}"
    done = subprocess.run([sys.executable, "-m", entry, "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--lr" in done.stdout, done.stderr


def test_every_command_has_working_help():
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    runner = CliRunner()
    for group, names in COMMANDS.items():
        for name in names:
            if group == "" and name in COMMANDS:
                continue
            result = runner.invoke(app, [*group.split(), name, "--help"])
            assert result.exit_code == 0, f"{group} {name}: {result.output}"
            assert "Usage:" in result.output
