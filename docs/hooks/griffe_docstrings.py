"""A griffe extension (see ``mkdocs.yml``): the packages' docstrings as mkdocstrings renders them.

The site reads the packages statically, without importing torch, TensorFlow or JAX, so:

- a docstring built at import time (``__doc__ = _doc(2)`` in a class body, as the Keras
  layers share one template) is computed here from the module's own string constants and
  undecorated top-level functions, without importing the module;
- Sphinx roles (``:class:`~a.B```, ``:math:`x```, ...) become code spans;
- an ``Example:``/``Examples::`` title followed by an unindented doctest becomes a Google
  ``Examples:`` section, so the doctest renders as code;
- the entries of a Keras ``Call arguments:`` section become a Markdown list.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|math|const):`~?([^`]+)`")
EXAMPLE_TITLE = re.compile(r"^(\s*)Examples?::?\s*$")
SECTION_TITLE = re.compile(r"^[A-Z][\w ]*:\s*$")
LIST_TITLE = re.compile(r"^(\s*)Call arguments:\s*$")
LIST_ITEM = re.compile(r"^(\s*)(\w+): (.*)$")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    if match.group(0).startswith(":math:"):
        return f"`{target}`"
    shown = target.rsplit(".", 1)[-1] if match.group(0).split("`", 1)[1].startswith("~") else target
    return f"`{shown}`"


def _examples_as_sections(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        title = EXAMPLE_TITLE.match(lines[i])
        if not title:
            out.append(lines[i])
            i += 1
            continue
        base = len(title.group(1))
        out.append(" " * base + "Examples:")
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        block: list[str] = []
        while i < len(lines):
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent <= base and SECTION_TITLE.match(line.strip()):
                break
            block.append(line)
            i += 1
        while block and not block[-1].strip():
            block.pop()
        body = textwrap.dedent("\n".join(block)).split("\n")
        out += [" " * (base + 4) + line if line.strip() else "" for line in body]
        out.append("")
    return "\n".join(out)


def _argument_lists(text: str) -> str:
    """``name: text`` entries of a Keras ``Call arguments:`` section as a Markdown list.

    griffe has no such section: it renders it as an admonition of plain text, where the
    entries would run together into one paragraph.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        title = LIST_TITLE.match(lines[i])
        i += 1
        if not title:
            continue
        item_indent: int | None = None
        while i < len(lines):
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent <= len(title.group(1)):
                break
            item = LIST_ITEM.match(line)
            if item and (item_indent is None or indent == item_indent):
                item_indent = indent
                line = f"{item.group(1)}- `{item.group(2)}`: {item.group(3)}"
            out.append(line)
            i += 1
    return "\n".join(out)


def clean(text: str) -> str:
    return _argument_lists(_examples_as_sections(ROLE.sub(_role, text)))


def _computed_docstrings(module: griffe.Module) -> dict[str, str]:
    """``{class name: docstring}`` for classes whose body assigns ``__doc__`` an expression."""
    path = module.filepath
    if not isinstance(path, Path) or path.suffix != ".py":
        return {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and [getattr(t, "id", None) for t in stmt.targets] == ["__doc__"]
                    and not isinstance(stmt.value, ast.Constant)
                ):
                    targets[node.name] = stmt.value
    if not targets:
        return {}
    # Only string constants and undecorated functions: nothing that imports or runs framework code.
    safe: list[ast.stmt] = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and not node.decorator_list)
        or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
    ]
    namespace: dict[str, Any] = {}
    try:
        exec(compile(ast.Module(body=safe, type_ignores=[]), str(path), "exec"), namespace)
    except Exception:
        return {}
    docs: dict[str, str] = {}
    for name, expr in targets.items():
        try:
            value = eval(compile(ast.Expression(body=expr), str(path), "eval"), namespace)
        except Exception:
            continue
        if isinstance(value, str):
            docs[name] = textwrap.dedent(value).strip() if value.startswith("\n") else _cleandoc(value)
    return docs


def _cleandoc(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)


class DropblockDocstrings(griffe.Extension):
    """Computed class docstrings, Sphinx roles and doctest examples, for static rendering."""

    def on_module(self, *, mod: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for name, text in _computed_docstrings(mod).items():
            member = mod.members.get(name)
            if isinstance(member, griffe.Class) and member.docstring is None:
                member.docstring = griffe.Docstring(
                    clean(text),
                    lineno=member.lineno,
                    parent=member,
                    parser=loader.docstring_parser,
                    parser_options=loader.docstring_options,
                )

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = clean(obj.docstring.value)
            stack += [m for m in obj.members.values() if not m.is_alias]  # type: ignore[misc]
