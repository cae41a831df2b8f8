"""Every public name has a docstring, and every public callable that takes arguments documents them.

Public names are the entries of each subpackage's ``__all__``, and the public methods (including properties) that
public classes define themselves. Functions, and classes whose own constructor takes arguments, need an
``**Arguments:**`` section; module-level constants need an attribute docstring (a string right after the assignment).
"""

import ast
import dataclasses
import importlib
import inspect
import pathlib

import pytest

PACKAGES = [
    "pcframe",
    "pcframe.core",
    "pcframe.pc",
    "pcframe.nn",
    "pcframe.functional",
    "pcframe.utils",
    "pcframe.inference",
    "pcframe.models",
    "pcframe.analysis",
    "pcframe.diagnosis",
    "pcframe.plots",
    "pcframe.training",
]
SOURCE = pathlib.Path(importlib.import_module("pcframe").__file__).parent


def public_names():
    """(package, name, object) for every entry of every package's ``__all__`` (modules and dunders left out)."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.ismodule(obj) and not name.startswith("__"):
                yield package, name, obj


def attribute_docstrings():
    """``{name: docstring}`` of module-level assignments followed by a string, over pcframe's sources."""
    docs = {}
    for path in SOURCE.rglob("*.py"):
        body = ast.parse(path.read_text()).body
        for node, following in zip(body, body[1:]):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            is_string = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and is_string and isinstance(following.value.value, str):
                docs.update({t.id: following.value.value for t in targets if isinstance(t, ast.Name)})
    return docs


def takes_arguments(obj):
    """Whether calling `obj` takes arguments its docstring must describe (``self`` and ``cls`` excepted)."""
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj) or hasattr(obj, "_fields"):
            return bool(dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else obj._fields)
        if "__init__" not in vars(obj):
            return False
        obj = obj.__init__
    return any(name not in ("self", "cls") for name in inspect.signature(obj).parameters)


def own_methods(cls):
    """(name, function) for the public methods and properties `cls` defines itself."""
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member):
            yield name, member


NAMES = list(public_names())


@pytest.mark.parametrize(("package", "name", "obj"), NAMES, ids=[f"{p}.{n}" for p, n, _ in NAMES])
def test_public_name_is_documented(package, name, obj):
    if inspect.isclass(obj) or inspect.isroutine(obj):
        doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
        assert doc and doc.strip(), f"{package}.{name} has no docstring"
        init_doc = (vars(obj)["__init__"].__doc__ or "") if inspect.isclass(obj) and "__init__" in vars(obj) else ""
        if takes_arguments(obj):
            assert "**Arguments:**" in doc + init_doc, f"{package}.{name} takes arguments but has no **Arguments:**"
    else:
        assert attribute_docstrings().get(name, "").strip(), f"{package}.{name} has no attribute docstring"


CLASSES = [(p, n, o) for p, n, o in NAMES if inspect.isclass(o)]


@pytest.mark.parametrize(("package", "name", "cls"), CLASSES, ids=[f"{p}.{n}" for p, n, _ in CLASSES])
def test_public_methods_are_documented(package, name, cls):
    missing = [method for method, fn in own_methods(cls) if not (fn.__doc__ or "").strip()]
    assert not missing, f"{package}.{name}: methods without a docstring: {missing}"
