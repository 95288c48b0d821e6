"""One import package, ``hotline``, over the design's top-level folders.

``schemas/``, ``streams/``, ``sinks/``, ``reports/``, ``deploy/`` and ``seed/`` stay at the top of the
repository; they are imported as ``hotline.schemas``, ``hotline.streams``, ... through the symlinks
``hotline/<name> -> ../<name>``, and the wheel ships them under ``hotline/`` only. Nothing may use the
bare names any more: in an installed environment they do not exist (tests/packaging checks that).
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("schemas", "streams", "sinks", "reports", "deploy", "seed")
NOT_SOURCES = {".git", ".venv", "var", "build", "dist", "test-artifacts", "__pycache__"}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _files(suffix: str) -> list[Path]:
    """The project's own files with this suffix, each once (the symlinked folders are walked at the top)."""
    found: list[Path] = []
    for top, dirs, files in os.walk(REPO):  # does not follow symlinks: hotline/streams is streams/
        dirs[:] = [d for d in dirs if d not in NOT_SOURCES and not d.startswith(".") and not d.endswith(".egg-info")]
        found += [Path(top, f) for f in files if f.endswith(suffix)]
    return sorted(found)


def _children(sub: str) -> set[str]:
    folder = REPO / sub
    return {p.stem if p.suffix == ".py" else p.name for p in folder.iterdir() if not p.name.startswith(("_", "."))}


def _bare(name: str) -> bool:
    return name.split(".")[0] in SUBPACKAGES


def test_the_subpackages_are_top_level_folders_linked_into_hotline() -> None:
    for sub in SUBPACKAGES:
        folder, link = REPO / sub, REPO / "hotline" / sub
        assert folder.is_dir() and not folder.is_symlink(), f"{sub}/ must stay a real top-level folder"
        assert (folder / "__init__.py").is_file(), f"{sub}/ is the package hotline.{sub}"
        assert link.is_symlink() and os.readlink(link) == f"../{sub}", f"hotline/{sub} must link to ../{sub}"


def test_no_python_file_imports_a_bare_subpackage_name() -> None:
    offences: list[str] = []
    for path in _files(".py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # "streams.app" as a patch target, an import_module() argument, a `-m` module, a logger name
                parts = node.value.split(".")
                if len(parts) > 1 and parts[0] in SUBPACKAGES and parts[1] in _children(parts[0]):
                    names = [node.value]
            offences += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names if _bare(n)]
    assert not offences, "use hotline.<name>:\n" + "\n".join(offences)


def test_the_docs_name_modules_by_their_import_names() -> None:
    pattern = re.compile(
        r"(?<![\w./-])("
        + "|".join(SUBPACKAGES)
        + r")\.("
        + "|".join(sorted({c for sub in SUBPACKAGES for c in _children(sub)}, key=len, reverse=True))
        + r")\b"
    )
    offences = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for path in _files(".md")
        for text in [path.read_text(encoding="utf-8")]
        for m in pattern.finditer(text)
        if m.group(2) in _children(m.group(1))
    ]
    assert not offences, "use hotline.<name>:\n" + "\n".join(offences)


def test_every_package_folder_is_in_the_packages_list() -> None:
    """A new subpackage or data folder under a linked folder must be listed, or the wheel silently lacks it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    data = [
        pattern.removeprefix("*")
        for patterns in PYPROJECT["tool"]["setuptools"]["package-data"].values()
        for pattern in patterns
    ]
    wanted = {"hotline"}
    for sub in (*SUBPACKAGES, "hotline"):  # hotline/'s own folders too (its links to the others are not walked)
        for top, dirs, files in os.walk(REPO / sub):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if any(f.endswith((".py", *data)) for f in files):
                rel = Path(top).relative_to(REPO)
                wanted.add(".".join(rel.parts if sub == "hotline" else ("hotline", *rel.parts)))
    assert sorted(wanted - listed) == [], "add to [tool.setuptools] packages"
    assert sorted(listed - wanted) == [], "listed but not a folder with code or data"


def test_the_metadata_is_what_current_setuptools_expects() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0", "an SPDX expression, not a table"
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")], "SPDX replaces these"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"": "."}, "keeps editable installs a plain .pth"


# Data flows one way: each layer imports only the layers below it. ``hotline.settings`` (the one
# place configuration is read), ``hotline.heap`` (the process's memory policy) and
# ``hotline.connections`` (the per-client cap and idle timeout of every HTTP server) are read by all.
LAYERS = {"seed": 0, "schemas": 0, "sinks": 1, "streams": 2, "reports": 3, "deploy": 3}
EVERY_LAYER_READS = {"hotline.settings", "hotline.heap", "hotline.connections"}
# A module ranked apart from its folder. The store process (``hotline store``) lives beside the
# stores and the client it serves, but it runs the streams' rules for them (the filter of stored
# ids, the race check of a write, restating a store a migration asks to): it ranks with the
# layers above the streams, so it may import them and nothing in sinks or streams may import it.
PLACED = {"hotline.sinks.server": 3}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``hotline.`` import in a file, top-level or inside a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("hotline.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hotline"):
            module = node.module or ""
            if module == "hotline":  # from hotline import streams
                found += [(node.lineno, f"hotline.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return found


def _module(path: Path) -> str:
    """A source file's import name: ``sinks/server.py`` is ``hotline.sinks.server``."""
    return ".".join(("hotline", *path.relative_to(REPO).with_suffix("").parts))


def test_imports_run_one_way() -> None:
    """schemas → sinks → streams → reports and deploy → the command line (``hotline``): never back."""
    upward: list[str] = []
    for layer, folder_rank in LAYERS.items():
        for path in sorted((REPO / layer).rglob("*.py")):
            rank = PLACED.get(_module(path), folder_rank)
            for line, module in _imports(path):
                target = PLACED.get(module, LAYERS.get(module.split(".")[1]))
                if module in EVERY_LAYER_READS or (target is not None and target <= rank):
                    continue
                upward.append(f"{path.relative_to(REPO)}:{line}: {module}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)
