"""Every public callable of tinycnn has a docstring.

Public means: each module's ``__all__`` (or, without one, its names that do not start with
``_`` and are defined in it), and for each public class the methods and properties it
defines whose names do not start with ``_``. An override may inherit its docstring from the
method it overrides (``inspect.getdoc`` does that), as ``help()`` shows it.
"""
import importlib
import inspect
import pkgutil

import tinycnn

MODULES = sorted(m.name for m in pkgutil.walk_packages(tinycnn.__path__, "tinycnn.")
                 if not m.name.endswith("__main__"))


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and getattr(obj, "__module__", None) == module.__name__]
    return names


def undocumented():
    """``["tinycnn.optim.SGD.step", ...]`` for every public callable without a docstring."""
    missing, seen = [], set()
    for name in ["tinycnn"] + MODULES:
        module = importlib.import_module(name)
        if not inspect.getdoc(module):
            missing.append(name)
        for attr in public_names(module):
            obj = getattr(module, attr)
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            where = f"{getattr(obj, '__module__', name)}.{getattr(obj, '__qualname__', attr)}"
            if not inspect.getdoc(obj):
                missing.append(where)
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if member.startswith("_") or not (callable(value) or isinstance(value, (property, staticmethod, classmethod))):
                        continue
                    if not inspect.getdoc(getattr(obj, member) if not isinstance(value, property) else value) \
                            and not _inherited_doc(obj, member):
                        missing.append(f"{where}.{member}")
    return missing


def _inherited_doc(cls, member):
    return any(inspect.getdoc(getattr(base, member, None)) for base in cls.__mro__[1:]
               if member in vars(base))


def test_every_public_callable_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} public callables without a docstring:\n" + "\n".join(missing)


def test_the_walk_sees_the_api():
    """The check is not vacuous: it visits the classes and methods a user calls."""
    names = {n for m in ["tinycnn"] + MODULES for n in public_names(importlib.import_module(m))}
    assert {"Sequential", "Conv2D", "SGD", "gradcheck", "load_model", "Parameter"} <= names
