"""The package's layers: the core imports nothing above it, no module reaches into another's private names or names
a module above it in a string, and every file opens with a docstring."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinygrad_edu"

# Each top-level module or package of tinygrad_edu by its layer: a module may import its own layer and those
# below it. docs/layout.md describes the same layers.
LAYERS = {
    # the core, and the file writer
    0: {"grad_mode", "dtypes", "dims", "autograd", "ops", "tensor", "numpy_functions", "files"},
    1: {"init", "gradcheck", "manual", "tutorial", "nn", "optim", "checkpoint", "opspecs", "datasets",
        "messages", "profiler", "text", "metre"},
    2: {"models", "mlp", "cnn"},
    3: {"viz"},
    4: {"training"},
    5: {"cli", "lab", "exercises", "comparison", "__main__"},
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}
CORE = LAYERS[0] - {"files"}
# NOTE: nn.load is the loader of every model kind, which lives above nn (tinygrad_edu.models); it is the one
# import upwards, made inside the function, so that `nn.load` works as PyTorch users expect.
ALLOWED_UPWARDS = {("nn", "models")}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts)


def top_name(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported(tree: ast.AST, path: Path) -> list[tuple[str, list[str], int]]:
    """(the tinygrad_edu module imported, the names taken from it, line) for every import in the file, at any depth."""
    package = ".".join(("tinygrad_edu", *path.relative_to(PACKAGE).parent.parts))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("tinygrad_edu")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:   # a relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            if module.startswith("tinygrad_edu"):
                found.append((module, [a.name for a in node.names], node.lineno))
    return found


def targets(module: str, names: list[str]) -> list[str]:
    """The top-level tinygrad_edu modules an import reaches: `from tinygrad_edu import nn` reaches nn."""
    parts = module.split(".")
    if len(parts) > 1:
        return [parts[1]]
    return [n for n in names if n in LAYER_OF]


def test_every_module_of_the_package_has_a_layer():
    missing = sorted({top_name(p) for p in modules()} - set(LAYER_OF) - {"__init__"})
    assert not missing, f"give these modules a layer in tests/test_layout.py and docs/layout.md: {missing}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_those_below(path):
    me = top_name(path)
    if me == "__init__":
        return   # the package's front door re-exports the core
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for module, names, line in imported(tree, path):
        for target in targets(module, names):
            if target == me or (me, target) in ALLOWED_UPWARDS:
                continue
            assert LAYER_OF[target] <= LAYER_OF[me], (
                f"{path.relative_to(PACKAGE)}:{line} imports {target} (layer {LAYER_OF[target]}) from layer "
                f"{LAYER_OF[me]}")
            if me in CORE:
                assert target in CORE, f"{path.relative_to(PACKAGE)}:{line}: the core imports {target}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_names = set()   # the names this file binds to tinygrad_edu modules (`from tinygrad_edu import ops`)
    for module, names, line in imported(tree, path):
        private = [n for n in names if is_private(n)]
        assert not private, f"{path.relative_to(PACKAGE)}:{line} imports {private} from {module}"
        folder = PACKAGE.joinpath(*module.split(".")[1:])
        module_names |= {n for n in names if (folder / f"{n}.py").exists() or (folder / n).is_dir()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_names:
            assert not is_private(node.attr), (
                f"{path.relative_to(PACKAGE)}:{node.lineno} uses {node.value.id}.{node.attr}, a private name")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_names_a_module_above_it_in_a_string(path):
    me = top_name(path)
    if me == "__init__":
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            for target in re.findall(r"\btinygrad_edu\.(\w+)", node.value):
                if target in LAYER_OF and target != me:
                    assert LAYER_OF[target] <= LAYER_OF[me], (
                        f"{path.relative_to(PACKAGE)}:{node.lineno} names tinygrad_edu.{target}, a module above it, "
                        f"in a string: {node.value[:80]!r}")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_file_opens_with_a_one_line_docstring(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree, clean=False)
    assert docstring, f"{path.relative_to(PACKAGE)} has no docstring"
    assert docstring.strip().splitlines()[0].strip(), f"{path.relative_to(PACKAGE)}'s docstring has no first line"
