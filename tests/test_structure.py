"""The shape of the code base: short functions, and a tree that speaks of itself alone.

* No function of ``vocalfx/`` is longer than 120 lines (its docstring included), and the public
  entry point :func:`vocalfx.match` reads in one screen (at most 80): a longer one is missing a
  core that works on the data as it already is (docs/design/architecture.md).
* No file names a working session: history goes in CHANGELOG.md, by date.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from typing import Iterator, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 120
MATCH_MAX_LINES = 80
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".json", ".csv", ".txt", ".cfg", ".yaml", ".yml", ""}


def functions(path: Path) -> Iterator[Tuple[str, int, int]]:
    """``(qualified name, first line, length in lines)`` of every function in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    stack: List[Tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child.lineno, child.end_lineno - child.lineno + 1
                stack.append((child, name + "."))
            else:
                stack.append((child, prefix))


def long_functions(root: Path, limit: int) -> List[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for name, line, length in functions(path):
            if length > limit:
                found.append(f"{path.relative_to(root.parent)}:{line} {name}: {length} lines")
    return found


def test_no_function_in_the_package_is_over_120_lines():
    found = long_functions(ROOT / "vocalfx", MAX_LINES)
    assert not found, "functions over 120 lines (split them, or list the reason in the architecture page):\n" + (
        "\n".join(found)
    )


def test_match_reads_in_one_screen():
    path = ROOT / "vocalfx" / "matching" / "match_audio.py"
    lengths = {name: length for name, _, length in functions(path)}
    assert lengths["match"] <= MATCH_MAX_LINES, lengths["match"]


def test_the_length_check_finds_a_long_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (pkg / "m.py").write_text(f"class C:\n    def short(self):\n        pass\n\n\ndef long():\n{body}\n")
    assert long_functions(pkg, MAX_LINES) == [f"pkg/m.py:6 long: {MAX_LINES + 1} lines"]


#: The word "session" and a number, in the text (with a space) or in a file name of the tree (with or without).
SESSION = re.compile(r"session [0-9]", re.IGNORECASE)
SESSION_NAME = re.compile(r"session[ _-]?[0-9]", re.IGNORECASE)


def tracked_text_files() -> List[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        paths = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):  # not a checkout: every file but the venv
        paths = [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file()]


def test_no_file_names_a_working_session():
    found = []
    for path in tracked_text_files():
        rel = path.relative_to(ROOT)
        if SESSION_NAME.search(str(rel)):
            found.append(f"{rel}: the file name")
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [
            f"{rel}:{i}: {line.strip()[:80]}" for i, line in enumerate(text.splitlines(), 1) if SESSION.search(line)
        ]
    found = [f for f in found if not f.startswith("tests/test_structure.py")]
    assert not found, "the project speaks of itself alone (history goes in CHANGELOG.md, by date):\n" + "\n".join(found)


DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.(?:md|csv|jsonl|json|png)(?![A-Za-z])")
#: A path cited with the commit that holds it ("... at commit 5d849a6") is history, not a link.
AT_COMMIT = re.compile(r"\bat\s+(?:commit\s+)?`?[0-9a-f]{7,40}\b")


def test_every_docs_path_named_in_the_tree_exists():
    """Code, tests, scripts and docs name docs/ files that exist (pages move; references must follow)."""
    missing = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        lines = text.splitlines()
        for i, line in enumerate(lines):
            context = " ".join(lines[i : i + 3])  # a citation may wrap over the next lines
            for m in DOC_PATH.finditer(line):
                if not (ROOT / m.group(0)).exists() and not AT_COMMIT.search(context):
                    missing.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not missing, "paths to docs/ files that do not exist:\n" + "\n".join(sorted(set(missing)))
