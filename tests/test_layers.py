"""Dependencies point one way: no module of lightning_green imports a higher layer.

Layers, low to high (a module may import its own layer and any lower one):

    units, validation, progress -> carbon -> sensors -> engine -> outputs -> exporters -> meter
    -> callbacks (and lightning_green/pytorch_lightning.py) -> compare, recipe, cli, watch

Every import counts: at module level, inside functions, under ``TYPE_CHECKING``, relative
ones, a lazy name of the package (``from lightning_green import EnergyMeter`` is the meter
layer) and a module named in a string (``importlib.import_module("lightning_green.meter")``,
lazy-export tables). The package's ``__init__`` (lazy exports only) is exempt.

Third-party packages have one home each, so the measuring layers stay framework-free.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_green"

#: Low to high; the first part of a module's name below the package picks its layer.
LAYERS: list[tuple[str, ...]] = [
    ("units", "validation", "progress"),
    ("carbon",),
    ("sensors",),
    ("engine",),
    ("outputs",),
    ("exporters",),
    ("meter",),
    ("callbacks", "pytorch_lightning"),
    ("compare", "recipe", "cli", "watch", "__main__"),
]

#: Known upward imports the lead has to decide on: (importing module, imported module) -> why.
#: Empty: none today. An entry that no longer matches an import fails the test (no stale excuses).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

#: Third-party package -> the module prefixes that may import it (the rest of the package may not).
HOMES: dict[str, tuple[str, ...]] = {
    "pynvml": ("lightning_green.sensors.nvml",),
    "prometheus_client": ("lightning_green.exporters.",),
    "fsspec": ("lightning_green.outputs.",),
    "matplotlib": ("lightning_green.compare.plots.",),
    "transformers": ("lightning_green.recipe.",),
    "tokenizers": ("lightning_green.recipe.",),
    "datasets": ("lightning_green.recipe.",),
    "torchmetrics": ("lightning_green.recipe.",),
    "hydra": ("lightning_green.recipe.", "lightning_green.compare.hydra_callback"),
    "omegaconf": ("lightning_green.recipe.", "lightning_green.compare.hydra_callback"),
    # The engine and EnergyMeter are framework-free: Lightning only in its adapters and the recipe,
    # and in outputs/files.py for remote URLs (Lightning's fsspec helper, imported only for a URL).
    "lightning": ("lightning_green.callbacks.", "lightning_green.recipe.", "lightning_green.outputs.files"),
    "lightning_fabric": ("lightning_green.callbacks.",),
    "pytorch_lightning": ("lightning_green.callbacks.pytorch_lightning",),
    "codecarbon": ("lightning_green.carbon.",),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the lightning_green module it imports (or the third-party name)
    line: int
    how: str  # "import", "lazy name", "string"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, package: str = "lightning_green") -> int | None:
    parts = module.split(".")
    if parts[0] != package or len(parts) == 1:
        return None
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} is in no layer: add {parts[1]!r} to LAYERS in {Path(__file__).name}")


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def _lazy_names(root: Path) -> dict[str, str]:
    """The package ``__init__``'s lazy exports: name -> home module (its ``_HOMES`` table)."""
    tree = ast.parse((root / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_HOMES" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import of one file: package modules resolved, third-party names kept as they are."""
    package = root.name
    me = module_name(path, root)
    is_package = path.name == "__init__.py"
    lazy = _lazy_names(root)
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstrings(tree)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(me, alias.name, node.lineno, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_package else me.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                if source.split(".")[0] == package and _is_module(candidate, root):
                    found.append(Import(me, candidate, node.lineno, "import"))
                elif source == package and alias.name in lazy:
                    found.append(Import(me, lazy[alias.name], node.lineno, "lazy name"))
                else:
                    found.append(Import(me, source, node.lineno, "import"))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and node.value.startswith(package + ".") and _is_module(node.value, root)):
            found.append(Import(me, node.value, node.lineno, "string"))
    return found


def all_imports(root: Path) -> list[Import]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts or path == root / "__init__.py":  # lazy exports: exempt
            continue
        out += imports_of(path, root)
    return out


def upward(imports: list[Import], package: str = "lightning_green") -> list[Import]:
    bad = []
    for imp in imports:
        mine, theirs = layer_of(imp.module, package), layer_of(imp.target, package)
        if mine is not None and theirs is not None and theirs > mine:
            bad.append(imp)
    return bad


def _describe(imp: Import) -> str:
    return f"{imp.module} (line {imp.line}) imports {imp.target} [{imp.how}]"


# -- the package -------------------------------------------------------------------------------------
def test_every_module_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if "__pycache__" not in path.parts and path != PACKAGE / "__init__.py":
            layer_of(module_name(path, PACKAGE))  # raises for a module outside every layer


def test_no_module_imports_a_higher_layer():
    imports = all_imports(PACKAGE)
    assert len(imports) > 100  # the walk really saw the package
    bad = [imp for imp in upward(imports) if (imp.module, imp.target) not in ALLOWED_UPWARD]
    assert not bad, "imports against the layers:\n" + "\n".join(map(_describe, bad))
    pairs = {(imp.module, imp.target) for imp in imports}
    stale = [pair for pair in ALLOWED_UPWARD if pair not in pairs]
    assert not stale, f"ALLOWED_UPWARD entries that match no import any more: {stale}"


def away_from_home(imports: list[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        homes = HOMES.get(imp.target.split(".")[0])
        if homes is not None and not any(imp.module == h.rstrip(".") or imp.module.startswith(h) for h in homes):
            wrong.append(f"{imp.module} (line {imp.line}) imports {imp.target}; its home: {', '.join(homes)}")
    return wrong


def test_third_party_packages_stay_in_their_homes():
    wrong = away_from_home(all_imports(PACKAGE))
    assert not wrong, "\n".join(wrong)


# -- the checker itself finds what it must ------------------------------------------------------------
def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_package(tmp_path) -> Path:
    """A small lightning_green with one import of each kind against the layers, and clean ones."""
    root = tmp_path / "lightning_green"
    _write(root, "__init__.py", '_HOMES = {"EnergyMeter": "lightning_green.meter.energy_meter"}\n')
    for package in ("engine", "meter", "callbacks", "outputs", "sensors"):
        _write(root, f"{package}/__init__.py", "")
    _write(root, "units.py", "J_PER_KWH = 3.6e6\n")
    _write(root, "meter/energy_meter.py", "from lightning_green.engine import ledger\nclass EnergyMeter: ...\n")
    _write(root, "callbacks/hooks.py", "X = 1\n")
    _write(root, "outputs/footprint.py", '"""Mentions lightning_green.meter.energy_meter in a docstring only."""\n')
    _write(root, "engine/ledger.py", (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from lightning_green.units import J_PER_KWH\n"              # down: fine
        "if TYPE_CHECKING:\n"
        "    from lightning_green.meter.energy_meter import EnergyMeter\n"   # up, type-only
        "def late():\n"
        "    from ..callbacks import hooks\n"                          # up, relative, in a function
        "    from lightning_green import EnergyMeter\n"               # up, through a lazy name
        "    import importlib\n"
        "    import lightning.pytorch\n"                               # a framework in the engine
        "    return importlib.import_module('lightning_green.outputs.footprint')\n"  # up, by string
    ))
    _write(root, "sensors/nvml.py", "import pynvml\n")
    return root


def test_the_checker_finds_every_kind_of_upward_import(fake_package):
    found = {(imp.target, imp.how) for imp in upward(all_imports(fake_package))}
    assert found == {
        ("lightning_green.meter.energy_meter", "import"),
        ("lightning_green.callbacks.hooks", "import"),
        ("lightning_green.meter.energy_meter", "lazy name"),
        ("lightning_green.outputs.footprint", "string"),
    }
    assert all(imp.module == "lightning_green.engine.ledger" for imp in upward(all_imports(fake_package)))
    (wrong,) = away_from_home(all_imports(fake_package))  # pynvml in sensors/nvml.py is at home
    assert wrong.startswith("lightning_green.engine.ledger (line 10) imports lightning.pytorch")


def test_the_checker_knows_each_layer_and_refuses_an_unknown_one():
    assert layer_of("lightning_green.units") < layer_of("lightning_green.carbon.intensity") \
        < layer_of("lightning_green.sensors.base") < layer_of("lightning_green.engine.ledger") \
        < layer_of("lightning_green.outputs.footprint") < layer_of("lightning_green.exporters.base") \
        < layer_of("lightning_green.meter.energy_meter") < layer_of("lightning_green.callbacks.hooks") \
        < layer_of("lightning_green.recipe.train")
    assert layer_of("lightning_green.pytorch_lightning") == layer_of("lightning_green.callbacks.lightning")
    assert layer_of("lightning_green.cli") == layer_of("lightning_green.compare.table") == layer_of("lightning_green.watch")
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("lightning_green.somewhere_new")
