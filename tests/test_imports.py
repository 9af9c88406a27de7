"""How the modules of vocalfx may import each other, checked on the source with ``ast``.

* No module imports a private name (one starting with ``_``, other than dunders) from another
  vocalfx module, neither as ``from x import _name`` nor as ``x._name`` on an imported module.
* A private module (``vocalfx/functional/_fft.py``) is imported only from inside its own package
  (``vocalfx.functional`` and below).
* No module imports names from the package root ``vocalfx/__init__.py`` (lower layers must not
  depend on what the root gathers; the version lives in ``vocalfx._version``).
* The import graph between vocalfx modules has no cycle. Imports inside functions count (a cycle
  there is still two modules that need each other); ``if TYPE_CHECKING:`` blocks do not run and
  do not count.
* Every module belongs to exactly one unit of the layer table ``LAYERS`` (a unit is a module, or
  a package and everything below it), and every runtime import goes to a unit on the same or a
  lower layer (within a unit anything goes); ``docs/design/architecture.md`` shows the same table.
* The package root's names load on first use, and ``vocalfx.defaults`` (what ``--help`` shows)
  agrees with the library's constants.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "vocalfx"
ARCHITECTURE = ROOT / "docs" / "design" / "architecture.md"

#: The layers, lowest first: a unit may import units of its own layer and the layers below it.
#: The package root ``vocalfx`` imports lazily and sits outside the table.
LAYERS: List[Tuple[str, ...]] = [
    (
        "vocalfx.functional",
        "vocalfx.params",
        "vocalfx.errors",
        "vocalfx.defaults",
        "vocalfx._version",
        "vocalfx.alloc",
        "vocalfx._data",
        "vocalfx._util_check",
    ),
    (
        "vocalfx.fx",
        "vocalfx.prior",
        "vocalfx.metrics",
        "vocalfx.io",
        "vocalfx.engine",
        "vocalfx.chunks",
        "vocalfx.codec",
    ),
    ("vocalfx.encoders", "vocalfx.separate", "vocalfx.preset"),
    ("vocalfx.matching", "vocalfx.render"),
    ("vocalfx.report",),
    ("vocalfx.evaluation", "vocalfx.batch"),
    ("vocalfx.cli",),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, Path] = {
    _module_name(p): p for p in sorted(PKG.rglob("*.py")) if "_shipped" not in p.parts and "__pycache__" not in p.parts
}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _walk_runtime(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` in ``module`` reads from."""
    if node.level == 0:
        return node.module or ""
    package = module if _is_package(module) else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, *, runtime_only: bool) -> Iterator[Tuple[ast.AST, str, Optional[str]]]:
    """``(node, target module, imported name or None)`` for each vocalfx import in ``module``.

    ``from pkg import sub`` where ``pkg.sub`` is a module yields the target ``pkg.sub``.
    """
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    nodes = _walk_runtime(tree) if runtime_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vocalfx":
                    yield node, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source.split(".")[0] != "vocalfx":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:
                    yield node, sub, None
                else:
                    yield node, source, alias.name


def _private_module_owner(target: str) -> Optional[str]:
    """For ``vocalfx.a._b.c``: ``vocalfx.a``, the package a private module belongs to."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    return None


def _module_aliases(tree: ast.AST, module: str) -> Dict[str, str]:
    """Local names bound to vocalfx modules (``import vocalfx.io as vio``, ``from . import io``)."""
    aliases: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vocalfx":
                    aliases[alias.asname or "vocalfx"] = alias.name if alias.asname else "vocalfx"
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    return aliases


def _dotted(node: ast.AST) -> Optional[List[str]]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def private_name_violations() -> List[str]:
    found = []
    for module, path in MODULES.items():
        where = path.relative_to(ROOT)
        for node, target, name in _imports(module, runtime_only=False):
            owner = _private_module_owner(target)
            if owner is not None and not (module == owner or module.startswith(owner + ".")):
                found.append(f"{where}:{node.lineno}: imports the private module {target} from outside {owner}")
            if name is not None and _private(name):
                found.append(f"{where}:{node.lineno}: imports the private name {name} from {target}")
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(tree, module)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            chain = _dotted(node)
            if not chain or chain[0] not in aliases:
                continue
            full = aliases[chain[0]]
            for part in chain[1:]:
                if f"{full}.{part}" in MODULES and not _private(part):
                    full = f"{full}.{part}"
                    continue
                if _private(part):
                    found.append(f"{where}:{node.lineno}: uses the private name {part} of {full}")
                break
    return sorted(set(found))


def root_import_violations() -> List[str]:
    found = []
    for module, path in MODULES.items():
        for node, target, name in _imports(module, runtime_only=False):
            if target == "vocalfx" and module != "vocalfx":
                what = f"the name {name}" if name else "the package"
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {what} from the package root vocalfx")
    return found


def import_graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for _, target, _ in _imports(module, runtime_only=True):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def find_cycle(graph: Dict[str, Set[str]], within: str) -> Optional[List[str]]:
    """A cycle among the modules named ``within`` or ``within.*``, or ``None``."""
    nodes = {m for m in graph if m == within or m.startswith(within + ".")}
    state: Dict[str, int] = {}  # 1 on the path, 2 done
    path: List[str] = []

    def visit(m: str) -> Optional[List[str]]:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m] & nodes):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(nodes):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def _in_unit(module: str, unit: str) -> bool:
    return module == unit or module.startswith(unit + ".")


def _units_of(module: str, layers: Sequence[Sequence[str]]) -> List[Tuple[int, str]]:
    """``(layer, unit)`` of every unit of ``layers`` that holds ``module``."""
    return [(i, u) for i, units in enumerate(layers) for u in units if _in_unit(module, u)]


def unit_violations(layers: Sequence[Sequence[str]]) -> List[str]:
    """Modules in no unit or in several, and units that name no module."""
    found = []
    for module in MODULES:
        if module == "vocalfx":
            continue
        units = _units_of(module, layers)
        if len(units) != 1:
            where = ", ".join(f"{u} (layer {i})" for i, u in units) or "no unit"
            found.append(f"{module}: in {where}; the layer table must place it exactly once")
    for i, units in enumerate(layers):
        for u in units:
            if u not in MODULES:
                found.append(f"layer {i}: {u} is not a module or package of vocalfx")
    return found


def layer_violations(layers: Sequence[Sequence[str]]) -> List[str]:
    """Runtime imports that go up the layer table (to a unit of a higher layer)."""
    found = []
    for module, path in MODULES.items():
        here = _units_of(module, layers)
        if len(here) != 1:
            continue  # unit_violations reports it
        (layer, unit) = here[0]
        for node, target, _ in _imports(module, runtime_only=True):
            there = _units_of(target, layers)
            if len(there) == 1 and there[0][0] > layer:
                found.append(
                    f"{path.relative_to(ROOT)}:{node.lineno}: {unit} (layer {layer}) imports {target} "
                    f"(layer {there[0][0]}, {there[0][1]})"
                )
    return found


def documented_layers(text: str) -> List[Tuple[str, ...]]:
    """The ``layer | modules`` table between ``<!-- layers:start -->`` and ``<!-- layers:end -->``."""
    start, end = "<!-- layers:start -->", "<!-- layers:end -->"
    assert start in text and end in text, f"{ARCHITECTURE.name} has no {start} ... {end} block"
    block = text.split(start, 1)[1].split(end, 1)[0]
    rows = [line.strip().strip("|").split("|") for line in block.strip().splitlines()]
    assert [c.strip() for c in rows[0]] == ["layer", "modules"], rows[0]
    layers = []
    for n, (layer, modules) in enumerate(rows[2:]):
        assert layer.strip() == str(n), f"layer rows must run 0, 1, ...; row {n} says {layer.strip()}"
        layers.append(tuple(m.strip().strip("`") for m in modules.split(",")))
    return layers


# --- the rules -------------------------------------------------------------------------------


def test_no_private_names_cross_modules():
    violations = private_name_violations()
    assert not violations, "private names imported across modules:\n" + "\n".join(violations)


def test_nothing_imports_the_package_root():
    violations = root_import_violations()
    assert not violations, "\n".join(violations)


PACKAGES = sorted(m for m in MODULES if _is_package(m) and m != "vocalfx") + ["vocalfx"]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_graph_is_acyclic(package):
    """Within each package, then across all of vocalfx."""
    cycle = find_cycle(import_graph(), package)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_is_in_exactly_one_unit():
    violations = unit_violations(LAYERS)
    assert not violations, "\n".join(violations)


def test_imports_go_down_the_layers():
    """Imports inside functions count; ``if TYPE_CHECKING:`` blocks do not run and do not count."""
    violations = layer_violations(LAYERS)
    assert not violations, "imports that go up the layer table:\n" + "\n".join(violations)


def test_architecture_page_shows_the_layer_table():
    assert documented_layers(ARCHITECTURE.read_text()) == [tuple(units) for units in LAYERS]


def test_root_names_load_on_first_use():
    probe = (
        "import sys, vocalfx; assert 'torch' not in sys.modules\n"
        "from vocalfx import match, MatchResult, Preset, VocalChain\n"
        "from vocalfx.matching import match as m2; assert match is m2\n"
        "assert sorted(vocalfx.__all__) == ['MatchResult', 'Preset', 'VocalChain', 'match']\n"
        "try:\n    vocalfx.no_such_name\nexcept AttributeError:\n    print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_cli_defaults_are_the_library_defaults():
    """vocalfx.defaults (torch-free, for --help) says what the library really does."""
    from vocalfx import defaults as D
    from vocalfx import matching, separate

    assert (D.MATCH_STEPS, D.MATCH_LR, D.MATCH_ALPHA) == (
        matching.DEFAULT_STEPS,
        matching.DEFAULT_LR,
        matching.DEFAULT_ALPHA,
    )
    config = matching.MatchConfig()  # what vocalfx.match does when given no settings
    assert (config.alpha, config.steps, config.lr) == (D.MATCH_ALPHA, D.MATCH_STEPS, D.MATCH_LR)
    assert (config.encoder, config.init) == (D.MATCH_ENCODER, D.MATCH_INIT)
    assert config.prediction_weight == D.MATCH_PREDICTION_WEIGHT
    assert "config" in inspect.signature(matching.match).parameters
    assert (D.FIT_STEPS, D.FIT_LR) == (matching.FIT_DEFAULT_STEPS, matching.FIT_DEFAULT_LR)
    assert (D.CHUNK_SECONDS, D.TARGET_LUFS) == (matching.CHUNK_SECONDS, matching.TARGET_LUFS)
    from vocalfx.evaluation import DEFAULT_ALPHAS, DEFAULT_ENCODERS

    assert (D.EVAL_ENCODERS, D.EVAL_ALPHAS) == (tuple(DEFAULT_ENCODERS), tuple(DEFAULT_ALPHAS))
    assert D.SEPARATE_BACKEND == separate.DEFAULT_BACKEND


# --- the checker itself catches what it should -----------------------------------------------


def test_checker_finds_planted_violations(tmp_path, monkeypatch):
    """Each rule fires on a planted example, so a passing run means something."""
    pkg = tmp_path / "vocalfx"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_hidden.py").write_text("x = 1\n")
    (pkg / "sub" / "ok.py").write_text("from . import _hidden\nfrom ._hidden import x\n")
    (pkg / "a.py").write_text("def _helper():\n    pass\n")
    (pkg / "b.py").write_text(
        "from .a import _helper\nfrom . import a\na._helper()\nfrom .sub import _hidden\n"
        "from . import c\nfrom vocalfx import a as aa\n"
    )
    (pkg / "c.py").write_text(
        "def f():\n    from . import b\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (pkg / "d.py").write_text("from . import __version__\n")
    modules = {_module_name_in(p, tmp_path): p for p in pkg.rglob("*.py")}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    v = "\n".join(private_name_violations())
    assert "b.py:1: imports the private name _helper" in v
    assert "b.py:3: uses the private name _helper of vocalfx.a" in v
    assert "b.py:4: imports the private module vocalfx.sub._hidden from outside vocalfx.sub" in v
    assert "ok.py" not in v
    roots = "\n".join(root_import_violations())
    assert "d.py:1: imports the name __version__ from the package root" in roots
    assert "b.py" not in roots  # `from vocalfx import a` imports the module vocalfx.a
    graph = import_graph()
    assert find_cycle(graph, "vocalfx") in (
        ["vocalfx.b", "vocalfx.c", "vocalfx.b"],
        ["vocalfx.c", "vocalfx.b", "vocalfx.c"],
    )
    assert "vocalfx.a" not in graph["vocalfx.c"]  # TYPE_CHECKING import does not count
    assert find_cycle(graph, "vocalfx.sub") is None


def test_layer_checker_finds_planted_violations(tmp_path, monkeypatch):
    """An import up the table fires, also from inside a function; one under ``TYPE_CHECKING``,
    one down the table and one within a unit do not; a module outside the table is reported."""
    pkg = tmp_path / "vocalfx"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from . import inner\n")
    (pkg / "low" / "inner.py").write_text("from .. import high\n")
    (pkg / "low" / "lazy.py").write_text("def f():\n    from ..high import g\n    return g\n")
    (pkg / "low" / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vocalfx.high import g\n"
    )
    (pkg / "low" / "sibling.py").write_text("from . import inner, lazy\nfrom vocalfx import mid\n")
    (pkg / "mid.py").write_text("import vocalfx.low.inner\n")
    (pkg / "high.py").write_text("from .low import inner\nfrom . import mid\ndef g():\n    pass\n")
    (pkg / "stray.py").write_text("")
    modules = {_module_name_in(p, tmp_path): p for p in pkg.rglob("*.py")}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    layers = [("vocalfx.low",), ("vocalfx.mid",), ("vocalfx.high", "vocalfx.gone")]
    found = layer_violations(layers)
    assert sorted(found) == [
        "vocalfx/low/inner.py:1: vocalfx.low (layer 0) imports vocalfx.high (layer 2, vocalfx.high)",
        "vocalfx/low/lazy.py:2: vocalfx.low (layer 0) imports vocalfx.high (layer 2, vocalfx.high)",
        "vocalfx/low/sibling.py:2: vocalfx.low (layer 0) imports vocalfx.mid (layer 1, vocalfx.mid)",
    ], found
    units = "\n".join(unit_violations(layers))
    assert "vocalfx.stray: in no unit" in units
    assert "layer 2: vocalfx.gone is not a module" in units
    assert "vocalfx.low" not in units
    twice = unit_violations([("vocalfx.low",), ("vocalfx.low.inner", "vocalfx.mid", "vocalfx.high", "vocalfx.stray")])
    assert twice == [
        "vocalfx.low.inner: in vocalfx.low (layer 0), vocalfx.low.inner (layer 1); "
        "the layer table must place it exactly once"
    ]
    page = (
        "x\n<!-- layers:start -->\n| layer | modules |\n|---|---|\n| 0 | `vocalfx.low` |\n"
        "| 1 | `vocalfx.mid`, `vocalfx.high` |\n<!-- layers:end -->\n"
    )
    assert documented_layers(page) == [("vocalfx.low",), ("vocalfx.mid", "vocalfx.high")]


def _module_name_in(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)
