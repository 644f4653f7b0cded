"""The ``registration-light`` rule: a SUT's capabilities are readable without importing its runtime.

``tinyharness suts`` and ``--help`` register every plugin's SUTs and read their class attributes;
only ``SUT.load`` may import the runtime. The rule checks it in a fresh interpreter (this one has
imported everything already), given this process's ``sys.path``:

1. The plugin's entry point (group ``tinyharness``) is loaded when the SUT was registered through
   one; the module it names must import neither the runtime nor numpy (``--help`` imports it).
   A SUT class given directly, or registered at run time, is imported from its own module instead.
2. ``register_suts(register)`` is called and the SUT's capabilities are read: ``name``,
   ``runtime``, ``model_formats``, ``scenarios``, ``timing`` and ``options()``.
3. None of the runtime's top-level modules may be in ``sys.modules`` then.

The runtime's modules: for a built-in SUT, :data:`tinyharness.plugins.RUNTIME_MODULES`; for any
other, the SUT's ``runtime`` attribute read as a distribution name (the top-level modules
``importlib.metadata.packages_distributions()`` gives for it) and as an import name (``-`` read as
``_``, where such a module can be found). numpy and tinyharness are never counted: every SUT module
may import them. A runtime that maps to no module leaves step 3 unchecked (the rule is skipped).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from typing import Any

from .subject import Failed, Skipped, Subject, one_line

EXEMPT = frozenset({"numpy", "tinyharness"})
TIMEOUT_S = 120
MARK = "TINYHARNESS-REGISTRATION "

CHILD = r'''
import importlib, json, sys

args = json.loads(sys.argv[1])
sys.path[:] = args["path"]


def fresh(before):
    return sorted(m for m in args["watch"] if m in sys.modules and m not in before)


def check():
    import tinyharness.hookspecs  # click and pluggy: what loading any plugin costs anyway

    before, out, cls = set(sys.modules), {}, None
    if args["entry_point"]:
        from importlib import metadata

        eps = [e for e in metadata.entry_points(group="tinyharness") if e.name == args["entry_point"]]
        if eps:
            plugin = eps[0].load()
            out["entry_module"] = eps[0].value
            out["at_import"] = fresh(before)
            out["numpy_at_import"] = "numpy" in sys.modules and "numpy" not in before
            found = []
            plugin.register_suts(register=found.append)
            cls = next((c for c in found if getattr(c, "name", None) == args["name"]), None)
            if cls is None:
                out["error"] = (f"register_suts() of entry point {eps[0].name!r} did not register "
                                f"{args['name']!r} (it registered {[getattr(c, 'name', c) for c in found]})")
                return out
    if cls is None:
        cls = importlib.import_module(args["module"])
        for part in args["qualname"].split("."):
            cls = getattr(cls, part)
    out["capabilities"] = {"name": cls.name, "runtime": cls.runtime,
                           "model_formats": list(cls.model_formats),
                           "scenarios": [str(s) for s in cls.scenarios],
                           "timing": str(cls.timing), "options": sorted(cls.options())}
    out["loaded"] = fresh(before)
    return out


try:
    result = check()
except BaseException as exc:
    result = {"error": f"{type(exc).__name__}: {exc}"}
print("TINYHARNESS-REGISTRATION " + json.dumps(result))
'''


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_modules(cls) -> tuple[list[str], str]:
    """The top-level modules of ``cls``'s runtime (see the module), and where they came from."""
    from ..plugins import RUNTIME_MODULES, _importable, registry

    if cls.name in RUNTIME_MODULES and registry().suts.get(cls.name) is cls:
        return sorted(set(RUNTIME_MODULES[cls.name]) - EXEMPT), "tinyharness.plugins.RUNTIME_MODULES"
    runtime = (cls.runtime or "").strip()
    if not runtime:
        return [], "the SUT sets no runtime"
    wanted = _norm(runtime)
    modules = {module for module, dists in metadata.packages_distributions().items()
               if wanted in {_norm(d) for d in dists} and module.isidentifier()}
    guess = runtime.split(".")[0].replace("-", "_")
    if guess.isidentifier() and _importable(guess):
        modules.add(guess)
    return sorted(modules - EXEMPT), f"runtime = {runtime!r}"


def entry_point_of(cls) -> str | None:
    """The name of the entry point whose plugin registered ``cls`` in this process, if any."""
    from ..plugins import GROUP, registry

    reg = registry()
    if reg.suts.get(cls.name) is not cls:
        return None
    origin = reg.origin.get(cls.name)
    return origin if any(ep.name == origin for ep in metadata.entry_points(group=GROUP)) else None


def registration_light(subject: Subject) -> tuple[str, dict[str, Any]]:
    cls = subject.cls
    watch, source = runtime_modules(cls)
    entry = entry_point_of(cls)
    importable = cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__
    if entry is None and not importable:
        raise Skipped(f"{cls.__module__}.{cls.__qualname__} cannot be imported in a fresh process "
                      "(defined in __main__ or in a function) and no entry point registers it")
    args = {"path": [p for p in sys.path if isinstance(p, str)], "watch": watch,
            "entry_point": entry, "module": cls.__module__, "qualname": cls.__qualname__,
            "name": cls.name}
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD,
                               json.dumps(args)], capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Failed(f"registering the SUT in a fresh process took over {TIMEOUT_S} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise Failed(f"the fresh process checking registration exited {proc.returncode}: "
                     f"{one_line(tail)}")
    out = json.loads(lines[-1][len(MARK):])
    where = f"entry point {entry!r} ({out.get('entry_module')})" if out.get("entry_module") \
        else f"module {cls.__module__}"
    detail = {"via": where, "runtime_modules": watch, "runtime_modules_from": source,
              "capabilities": out.get("capabilities")}
    if out.get("error"):
        raise Failed(f"in a fresh process, registering through {where} failed: {out['error']}",
                     detail)
    if out.get("at_import"):
        raise Failed(f"importing {where} imported the runtime ({', '.join(out['at_import'])}); "
                     "import it inside SUT.load()", detail)
    if out.get("numpy_at_import"):
        raise Failed(f"importing {where} imported numpy: the module an entry point names must "
                     "stay light (tinyharness --help imports it); import the SUT class inside "
                     "register_suts()", detail)
    if out.get("loaded"):
        raise Failed(f"registering through {where} and reading the capabilities imported the "
                     f"runtime ({', '.join(out['loaded'])}); import it inside SUT.load()", detail)
    if not watch:
        if _norm(cls.runtime or "") in EXEMPT:
            return (f"registered through {where}; runtime {cls.runtime!r} is tinyharness's own "
                    "dependency", detail)
        raise Skipped(f"registered through {where}, but {source} names no importable module to "
                      "check: set the SUT's runtime to its distribution or import name")
    return (f"registered through {where} without importing {', '.join(watch)}", detail)
