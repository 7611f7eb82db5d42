"""Dependencies point one way: engine (``spinsim/``) <- ``models/`` <- ``analysis/`` <- commands.

Every ``import`` statement of every module (top level or inside a function, absolute or
relative) is read with :mod:`ast` and resolved to the layer of the module it names; a module may
import only from its own layer or a lower one. Layers by file: ``models/`` (the package
``spinsim.models``) 1, ``analysis/`` (``spinsim.analysis``) 2, ``spinsim/commands/`` and
``spinsim/cli.py`` 3, the rest of ``spinsim/`` 0 (the engine).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"spinsim": REPO / "spinsim", "spinsim.models": REPO / "models", "spinsim.analysis": REPO / "analysis"}
NAMES = {0: "engine (spinsim/)", 1: "models/", 2: "analysis/", 3: "commands (spinsim/commands, spinsim/cli)"}


def layer_of(module: str) -> int | None:
    """Layer of a dotted module name inside spinsim, None for a module outside it."""
    parts = module.split(".")
    if parts[0] != "spinsim":
        return None
    sub = parts[1] if len(parts) > 1 else ""
    return {"models": 1, "analysis": 2, "commands": 3, "cli": 3, "__main__": 3}.get(sub, 0)


def modules() -> list[tuple[str, Path]]:
    """(dotted name, file) of every module of the three source folders."""
    out = []
    for pkg, root in ROOTS.items():
        for f in sorted(root.rglob("*.py")):
            rel = f.relative_to(root).with_suffix("").parts
            if pkg == "spinsim" and rel and rel[0] in ("models", "analysis"):
                continue
            name = ".".join((pkg,) + tuple(p for p in rel if p != "__init__"))
            out.append((name, f))
    return out


def imported(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in a module, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # ``from spinsim import analysis`` names a subpackage, not an attribute
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names
                    if layer_of(f"{target}.{a.name}") not in (None, layer_of(target))]
    return sorted(out)


def violations(mods: list[tuple[str, Path]] | None = None) -> list[str]:
    """One line per import that points up the layers."""
    out = []
    for name, path in modules() if mods is None else mods:
        own = layer_of(name)
        for line, target in imported(name, path):
            t = layer_of(target)
            if t is not None and t > own:
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
                out.append(f"{where}:{line}: {NAMES[own]} imports {target} ({NAMES[t]})")
    return out


def test_layers_resolve():
    names = dict(modules())
    assert layer_of("spinsim.probe") == 0 and layer_of("spinsim.models.attention") == 1
    assert layer_of("spinsim.analysis.figures.phase") == 2 and layer_of("spinsim.commands.demo") == 3
    assert "spinsim.analysis.figures" in names and "spinsim.models.attention" in names
    assert "spinsim.commands.demo" in names and "spinsim.cli" in names
    assert not any(n.startswith(("spinsim.models.models", "spinsim.analysis.analysis")) for n in names)


def test_checker_catches_upward_imports(tmp_path):
    """The checker reports an upward import (absolute, relative, from-package) and not a downward one."""
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom spinsim.probe import x\n\ndef f():\n"
                   "    from ..analysis import gaps\n    import spinsim.commands.demo\n"
                   "    from spinsim import analysis\n")
    assert violations([("spinsim.models.bad", bad)]) == [
        "bad.py:5: models/ imports spinsim.analysis (analysis/)",
        "bad.py:6: models/ imports spinsim.commands.demo (commands (spinsim/commands, spinsim/cli))",
        "bad.py:7: models/ imports spinsim.analysis (analysis/)"]
    assert violations([("spinsim.analysis.bad", bad)]) == [
        "bad.py:6: analysis/ imports spinsim.commands.demo (commands (spinsim/commands, spinsim/cli))"]
    assert violations([("spinsim.commands.bad", bad)]) == []


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_dependencies_point_one_way(layer):
    found = [v for v in violations() if v.split(": ", 1)[1].startswith(NAMES[layer])]
    assert not found, "imports against the layering:\n" + "\n".join(found)
