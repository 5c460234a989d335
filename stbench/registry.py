"""One generic registry for every kind of component, and plugin discovery.

Third-party plugins are found through the entry-point groups ``stbench.temporal``, ``stbench.models``,
``stbench.encoders``, ``stbench.datasets`` and ``stbench.metrics``. An entry point's
value is either a module, whose import registers components with the decorators below, or a single
class / function (``"pkg.mod:Attr"``), registered under the entry point's name as a lazy entry:
listed without importing anything, imported on first use. ``REG.register("name", obj="mod:attr",
**meta)`` makes a lazy entry directly. Code that is not installed is loaded with
``load_plugin("path/to/file.py" | "package.module")`` (the CLI's ``--plugin``).

stbench's own components are listed in :mod:`stbench.builtin_index`: the modules that register them
(``MODULES``, written by hand) and which name each registers (``INDEX``, generated and checked by a test).
Looking a built-in name up imports the one module the index names for it; listing (``names()``,
wildcards) and an unknown name import every built-in module.

A plugin that fails to import is never skipped silently: the failure is printed to stderr once,
with the plugin's name and its error, and kept in :data:`PLUGIN_ERRORS` for ``stbench list``.

    from stbench.registry import TEMPORAL

    @TEMPORAL.register()            # name defaults to the lower-cased class name
    class MyModule(ParallelTemporal):
        ...
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from stbench import builtin_index

BUILTIN = "built-in"


class RegistryError(KeyError):
    """Unknown or duplicate name; its message is one line meant for the user."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(ImportError):
    """A plugin named by the user could not be loaded."""


@dataclass
class Entry:
    name: str
    obj: Any  # the component; a "module:attr" string until first use for a lazy entry (see Registry.register)
    kind: str
    source: str = BUILTIN  # "built-in", "plugin <dist>" or "plugin <file/module>"
    meta: dict[str, Any] = field(default_factory=dict)
    lazy: bool = False  # obj is still a "module:attr" placeholder
    module: str = ""  # the module whose import registered it (for the built-in index)

    def resolve(self) -> Any:
        """Import a lazy entry's target (once) and return the component."""
        if self.lazy:
            mod, _, attr = str(self.obj).partition(":")
            try:
                target: Any = importlib.import_module(mod)
                for part in attr.split("."):
                    target = getattr(target, part)
            except Exception as exc:  # noqa: BLE001 - named, one line, for the user
                raise PluginError(f"{self.kind} '{self.name}' ({self.source}) points to '{self.obj}', which "
                                  f"cannot be imported: {type(exc).__name__}: {exc}") from exc
            self.obj, self.lazy = target, False
        return self.obj


_CURRENT_SOURCE: list[str] = [BUILTIN]


@contextlib.contextmanager
def _source(label: str) -> Iterator[None]:
    _CURRENT_SOURCE.append(label)
    try:
        yield
    finally:
        _CURRENT_SOURCE.pop()


class Registry:
    """Name -> component map for one kind (``temporal``, ``model``, ...)."""

    def __init__(self, kind: str, group: str, base: type | None = None, *, builtins: bool = False) -> None:
        self.kind = kind
        self.group = group
        self.base = base  # set later for kinds whose base class lives in another module
        self.builtins = builtins  # stbench's built-in modules may register here (imported on lookup)
        self._entries: dict[str, Entry] = {}

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str | None = None, *, obj: Any = None, **meta: Any) -> Any:
        """Decorator (``@REG.register()``) or direct call (``REG.register("x", obj=Cls)``).

        ``obj`` may be a ``"module:attr"`` string: a lazy entry, listed (with its ``meta``) without
        importing anything, and imported on first :meth:`get` / :meth:`entry`.
        """
        if isinstance(obj, str):
            if not name or ":" not in obj:
                raise ValueError(f"a lazy {self.kind} needs name= and obj='module:attr', got {name!r}, {obj!r}")
            self._builtin_first(name)
            if name in self._entries and self._entries[name].obj != obj:
                old = self._entries[name]
                raise RegistryError(f"duplicate {self.kind} name '{name}': already registered by {old.source}; "
                                    "choose another name")
            self._entries[name] = Entry(name, obj, self.kind, _CURRENT_SOURCE[-1], dict(meta), lazy=True,
                                        module=_registering_module())
            return obj

        def add(o: Any) -> Any:
            key = (name or getattr(o, "__name__", "")).lower()
            if not key:
                raise ValueError(f"cannot infer a {self.kind} name for {o!r}; pass name=")
            if self.base is not None and inspect.isclass(o) and not issubclass(o, self.base):
                raise TypeError(f"{self.kind} '{key}' must subclass {self.base.__name__}, got {o.__name__}")
            source = BUILTIN if _is_builtin_module(getattr(o, "__module__", None)) else _CURRENT_SOURCE[-1]
            if source != BUILTIN:
                self._builtin_first(key)
            if key in self._entries:
                old = self._entries[key]
                if old.lazy and _target_of(o) == old.obj:  # the lazy entry's own target being imported
                    old.obj, old.lazy = o, False
                    old.meta = {**old.meta, **meta}
                    return o
                if old.obj is o:
                    return o  # the same object imported twice (e.g. module reloaded by a plugin path)
                raise RegistryError(
                    f"duplicate {self.kind} name '{key}': already registered by {old.source} "
                    f"({_where(old.obj)}); choose another name"
                )
            self._entries[key] = Entry(key, o, self.kind, source, dict(meta), module=_registering_module())
            return o

        return add(obj) if obj is not None else add

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def _builtin_first(self, name: str) -> None:
        """Before a plugin registers ``name``: import the built-in files that register it (if any), so that a
        plugin reusing a built-in name is refused as a duplicate, as when every built-in was imported first."""
        if self.builtins and name not in self._entries and _CURRENT_SOURCE[-1] != BUILTIN:
            _import_builtins_for(self, name, fallback=False)

    # -- lookup ---------------------------------------------------------------------------------
    def names(self, pattern: str | None = None, *, include_tiny: bool | None = None) -> list[str]:
        """Registered names, filtered by :func:`match_names` when a pattern is given."""
        load_entry_points()
        if self.builtins:
            _import_all_builtins()
        return match_names({n: bool(e.meta.get("tiny")) for n, e in sorted(self._entries.items())}, pattern,
                           include_tiny=include_tiny)

    def entries(self) -> list[Entry]:
        out = [self._entries[n] for n in self.names()]
        for e in out:
            e.resolve()
        return out

    def __contains__(self, name: str) -> bool:
        load_entry_points()
        if name not in self._entries and self.builtins:
            _import_builtins_for(self, name)
        return name in self._entries

    def entry(self, name: str) -> Entry:
        load_entry_points()
        if name not in self._entries and self.builtins:
            _import_builtins_for(self, name)
        try:
            e = self._entries[name]
        except KeyError:
            raise RegistryError(self._unknown_message(name)) from None
        e.resolve()
        return e

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def _unknown_message(self, name: str) -> str:
        avail = sorted(self._entries)
        close = difflib.get_close_matches(name, avail, n=3, cutoff=0.5)
        msg = f"unknown {self.kind} '{name}'"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" Available: {', '.join(avail) if avail else '(none)'}."
        if PLUGIN_ERRORS:
            msg += f" ({len(PLUGIN_ERRORS)} plugin(s) failed to load: {', '.join(PLUGIN_ERRORS)})"
        return msg


def match_names(names: dict[str, bool], pattern: str | None, *, include_tiny: bool | None = None) -> list[str]:
    """THE wildcard rule (API, ``stbench run --models`` and ``stbench list``): ``names`` maps each name to
    whether it is a tiny test variant; ``pattern`` is a comma list of fnmatch patterns or plain names.
    A plain name matches itself; a wildcard matches tiny variants only when it mentions ``tiny``
    (``tau*`` -> tau; ``*tiny`` -> every tiny variant). No pattern: every name. ``include_tiny`` overrides."""
    if not pattern:
        return [n for n, tiny in names.items() if include_tiny is not False or not tiny]
    out: list[str] = []
    for pat in (p.strip() for p in pattern.split(",")):
        if not pat:
            continue
        wild = any(c in pat for c in "*?[")
        tiny_ok = include_tiny if include_tiny is not None else (not wild or "tiny" in pat)
        out += [n for n, tiny in names.items() if fnmatch.fnmatchcase(n, pat) and (tiny_ok or not tiny)]
    return list(dict.fromkeys(out))


def _target_of(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _where(obj: Any) -> str:
    mod = getattr(obj, "__module__", "?")
    return f"{mod}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


MODELS = Registry("model", "stbench.models", builtins=True)
ENCODERS = Registry("encoder", "stbench.encoders", builtins=True)
DECODERS = Registry("decoder", "stbench.encoders", builtins=True)
TEMPORAL = Registry("temporal module", "stbench.temporal", builtins=True)
DATASETS = Registry("dataset", "stbench.datasets", builtins=True)
METRICS = Registry("metric", "stbench.metrics", builtins=True)

# entry-point group -> the registry that a single class/function entry point is added to
_GROUPS: dict[str, Registry] = {
    "stbench.temporal": TEMPORAL,
    "stbench.models": MODELS,
    "stbench.encoders": ENCODERS,
    "stbench.datasets": DATASETS,
    "stbench.metrics": METRICS,
}

PLUGIN_ERRORS: dict[str, str] = {}  # plugin label -> "ExcType: message"
_LOADED = False
_LOADING = False


def _report_failure(label: str, exc: BaseException) -> None:
    err = f"{type(exc).__name__}: {exc}"
    if label not in PLUGIN_ERRORS:
        PLUGIN_ERRORS[label] = err
        print(f"stbench: plugin {label} failed to load and was NOT registered: {err}", file=sys.stderr)


def _add_loaded(obj: Any, name: str, group: str) -> None:
    """Register what an entry point / plugin attribute resolved to."""
    if isinstance(obj, types.ModuleType):
        return  # its import registered its components through the decorators
    reg = _GROUPS[group]
    if name in reg._entries and reg._entries[name].obj is obj:
        return
    if inspect.isclass(obj) or callable(obj):
        reg.register(name, obj=obj)


def load_entry_points(force: bool = False) -> None:
    """Read every entry point of the stbench groups once: plugins are imported (or, for a ``"module:attr"``
    value, listed as lazy entries); stbench's own modules come from :mod:`stbench.builtin_index` instead."""
    global _LOADED, _LOADING
    if (_LOADED and not force) or _LOADING:
        return
    _LOADING = True
    try:
        eps = []
        for group in _GROUPS:
            eps += [(group, ep) for ep in entry_points(group=group)]
        eps.sort(key=lambda ge: _dist_name(ge[1]) != "stbench")  # built-ins first
        for group, ep in eps:
            dist = _dist_name(ep)
            label = BUILTIN if dist == "stbench" else f"plugin {dist or ep.value}"
            with _source(label):
                try:
                    if ":" in ep.value:  # a single component: listed now, imported on use
                        reg = _GROUPS[group]
                        reg._builtin_first(ep.name)
                        if ep.name not in reg._entries:
                            reg.register(ep.name, obj=ep.value.replace(" ", ""))
                        continue
                    if dist != "stbench":  # stbench's own modules: stbench.builtin_index, imported on lookup
                        _add_loaded(ep.load(), ep.name, group)
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
                    if dist == "stbench":
                        raise
                    _report_failure(f"'{ep.name}' ({dist}, group {group})", exc)
        _LOADED = True
    finally:
        _LOADING = False


# -- built-in modules, imported on demand (stbench.builtin_index) -------------------------------------------
BUILTIN_REGISTRIES = (MODELS, ENCODERS, DECODERS, TEMPORAL, DATASETS, METRICS)
_ALL_IMPORTED = False


def _is_builtin_module(module: str | None) -> bool:
    return bool(module) and (module == "stbench" or module.startswith("stbench."))


def _registering_module() -> str:
    """The module whose import is running the registration: the nearest module-level frame on the stack."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name != "<module>":
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def _import_builtin(module: str) -> None:
    with _source(BUILTIN):
        importlib.import_module(module)


def _import_builtins_for(reg: Registry, name: str, *, fallback: bool = True) -> None:
    """Import the built-in module the index names for ``name`` on ``reg``; with ``fallback``, every built-in
    module when that did not register it (an unknown name then lists every name in its error)."""
    if _ALL_IMPORTED:
        return
    module = builtin_index.INDEX.get(reg.kind, {}).get(name)
    if module is not None:
        _import_builtin(module)
        if name in reg._entries:
            return
    if fallback:
        _import_all_builtins()


def _import_all_builtins() -> None:
    """Import every built-in module (listing and wildcards need every name)."""
    global _ALL_IMPORTED
    if _ALL_IMPORTED:
        return
    for module in builtin_index.MODULES:
        _import_builtin(module)
    _ALL_IMPORTED = True


def builtin_index_now() -> dict[str, dict[str, str]]:
    """The name -> module index as the modules of ``builtin_index.MODULES`` register their components now
    (imports all of them); ``tests/test_registry_lazy.py`` checks it equals the committed ``INDEX``."""
    _import_all_builtins()
    return {reg.kind: {name: e.module for name, e in sorted(reg._entries.items())
                       if e.source == BUILTIN and e.module in builtin_index.MODULES}
            for reg in BUILTIN_REGISTRIES}


def write_builtin_index() -> Path:
    """Rewrite the ``INDEX`` literal of ``stbench/builtin_index.py`` from :func:`builtin_index_now`."""
    lines = ["INDEX: dict[str, dict[str, str]] = {"]
    for kind, names in builtin_index_now().items():
        lines.append(f"    {json.dumps(kind)}: {{")
        lines += [f"        {json.dumps(name)}: {json.dumps(mod)}," for name, mod in names.items()]
        lines.append("    },")
    lines.append("}")
    path = Path(builtin_index.__file__)
    text = path.read_text(encoding="utf-8")
    start = text.index(lines[0])
    end = re.compile(r"^}$", re.M).search(text, start).end()
    path.write_text(text[:start] + "\n".join(lines) + text[end:], encoding="utf-8")
    return path


def _dist_name(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ""


def load_plugin(spec: str) -> None:
    """Import a plugin given as a ``.py`` file path or an importable module name.

    Raises :class:`PluginError` with a one-line message when it cannot be imported.
    """
    load_entry_points()
    path = Path(spec)
    label = f"plugin {spec}"
    try:
        with _source(label):
            if spec.endswith(".py") or path.is_file():
                if not path.is_file():
                    raise FileNotFoundError(f"no such file: {spec}")
                mod_name = f"stbench_plugin_{path.stem}"
                if mod_name in sys.modules:
                    return
                sp = importlib.util.spec_from_file_location(mod_name, path)
                assert sp is not None and sp.loader is not None
                module = importlib.util.module_from_spec(sp)
                sys.modules[mod_name] = module
                try:
                    sp.loader.exec_module(module)
                except BaseException:
                    del sys.modules[mod_name]
                    raise
            else:
                importlib.import_module(spec)
    except RegistryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(
            f"plugin '{spec}' failed to load: {type(exc).__name__}: {exc} "
            "(pass a .py file path or an importable module name)"
        ) from exc


if __name__ == "__main__":  # `python -m stbench.registry`: regenerate the built-in index
    from stbench import registry as _registry  # the imported module, whose registries the built-ins fill

    print(f"wrote the index of {len(builtin_index.MODULES)} modules to {_registry.write_builtin_index()}")
