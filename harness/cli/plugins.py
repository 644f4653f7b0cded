"""``tinyharness plugins``: the installed plugins, a new plugin's package (``plugins new``) and the
conformance kit's ``plugins check``.

Only click is imported here: the listing imports the plugin loader when it runs, ``new`` the
scaffold, and ``check`` is attached the first time the group's commands are looked up, so
``tinyharness --help`` imports none of them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..errors import UsageError

CHECK_MODULE = "plugins_check"  # harness/cli/plugins_check.py: the conformance kit's command


def attach_check(group: click.Group) -> bool:
    """Add the conformance kit's ``check`` command to ``group``; False when its module is not
    there. A module that is there but fails to import gets a stand-in ``check`` that says why
    (exit 2), so the listing, which diagnoses broken installs, keeps working."""
    try:
        from .plugins_check import check
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.{CHECK_MODULE}":
            return False
        check = _unavailable(exc)
    except Exception as exc:  # a broken kit must not take 'plugins' down
        check = _unavailable(exc)
    group.add_command(check, "check")
    return True


def _unavailable(exc: Exception) -> click.Command:
    from ..errors import first_line

    why = f"{type(exc).__name__}: {first_line(exc)}"

    @click.command("check", context_settings={"ignore_unknown_options": True},
                   help=f"Unavailable in this installation ({why}).")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def check(args) -> None:
        raise UsageError(f"'tinyharness plugins check' is unavailable: {why}")

    return check


class PluginsGroup(click.Group):
    """The ``plugins`` group: ``check`` comes from the conformance kit's module, attached when
    the group's commands are first looked up (``--help``, a subcommand), never at import."""

    _attached = False

    def _attach(self) -> None:
        if not self._attached:
            self._attached = True
            attach_check(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._attach()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._attach()
        return super().get_command(ctx, name)


@click.group(cls=PluginsGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List the installed plugins (without a subcommand), write a new one, check one.

    The listing shows every distribution with entry points in the group 'tinyharness', the
    built-in SUTs' own (tinyharness) included: each entry point with the hooks it implements, the
    SUTs and commands it registers, and its status: loaded, skipped (not in TINYHARNESS_PLUGINS),
    shadowed (another distribution's entry point has its name) or failed, with the error on one
    line. --json adds each entry point's module.

    Write a SUT plugin: 'tinyharness plugins new NAME', then 'tinyharness docs writing-a-sut'.
    """
    if ctx.invoked_subcommand is not None:
        if as_json:
            raise UsageError("--json is the listing's option ('tinyharness plugins --json'); give "
                             f"'{ctx.invoked_subcommand}' its own options after its name")
        return
    rows = listing()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from ..tables import Col, print_table

    print_table((Col("plugin", key=True), "distribution", "hooks", "registers", "status"),
                [(ep["name"], _version(row), ", ".join(ep["hooks"]) or "-", _registered(ep),
                  ep["status"] + (f": {ep['error']}" if ep["error"] else ""))
                 for row in rows for ep in row["entry_points"]])


def _registered(ep: dict) -> str:
    """What an entry point registers, as 'SUT serial, command dut'."""
    found = ([f"SUT {s}" for s in ep["suts"]] + [f"command {c}" for c in ep["commands"]]
             + ([f"metrics {', '.join(ep['metrics'])}"] if ep.get("metrics") else []))
    return ", ".join(found) or "-"


def _version(row: dict) -> str:
    if row["distribution"] is None:
        return "(no distribution)"
    return f"{row['distribution']} {row['version']}"


# -- the listing -----------------------------------------------------------------------------------
def listing() -> list[dict]:
    """Every plugin distribution of the entry-point group, sorted by name: ``distribution``,
    ``version`` and its ``entry_points``, each with ``name``, ``module``, ``status`` (loaded,
    skipped, shadowed, failed), ``error`` (one line, or None), ``hooks``, ``suts``, ``commands``
    and ``metrics``. Plugins registered at run time without an entry point (the Python API) come
    last, under the distribution None."""
    from importlib import metadata

    from ..plugins import ENV_ALLOW, GROUP, plugin_manager

    pm = plugin_manager()  # imports the allowed entry points; a failure is a warning on stderr
    allowed = _allowed(ENV_ALLOW)
    load_errors = _load_errors()
    # The entry point of each name that Python hands the loader (the first on sys.path); the
    # others of that name are shadowed, and never imported here.
    winners = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
    dists: dict[tuple[str, str], list[dict]] = {}
    for dist, ep in _group_entry_points(GROUP):
        row = {"name": ep.name, "module": ep.value, "status": "loaded", "error": None,
               "hooks": [], "suts": [], "commands": [], "metrics": []}
        winner, plugin = winners.get(ep.name), pm.get_plugin(ep.name)
        if winner is not None and (winner.value, _dist_name(winner)) != (ep.value, _dist_name(ep)):
            row.update(status="shadowed", error=f"the entry point name {ep.name!r} is taken by "
                       f"{winner.value} ({_dist_name(winner)}); rename one of them")
        elif allowed is not None and ep.name not in allowed:
            row.update(status="skipped", error=f"not in {ENV_ALLOW}")
        elif plugin is None:
            row.update(status="failed", error=load_errors.get(ep.name) or _load_error(ep))
        elif not _is(plugin, ep):
            row.update(status="shadowed", error=f"the plugin name {ep.name!r} is taken by "
                       f"{_owner(plugin)}; rename one of them")
        else:
            row.update(_registers(pm, ep.name, plugin))
        dists.setdefault((dist.metadata["Name"], dist.version), []).append(row)
    rows = [{"distribution": name, "version": version, "entry_points": eps}
            for (name, version), eps in sorted(dists.items(), key=lambda kv: kv[0][0].lower())]
    named = {ep["name"] for row in rows for ep in row["entry_points"]}
    others = sorted(name for name, plugin in pm.list_name_plugin()
                    if name not in named and plugin is not None)  # pluggy keeps blocked names
    extra = []
    for name in others:
        plugin = pm.get_plugin(name)
        extra.append({"name": name, "module": _owner(plugin), "status": "loaded", "error": None,
                      "hooks": [], "suts": [], "commands": [], **_registers(pm, name, plugin)})
    if extra:
        rows.append({"distribution": None, "version": None, "entry_points": extra})
    return rows


def _group_entry_points(group: str):
    """(distribution, entry point) of every entry point in ``group``, sorted by name, of every
    installed distribution: the first copy of each on sys.path, as Python imports it (a second
    copy, e.g. a stale .egg-info, is not listed)."""
    import re
    from importlib import metadata

    seen, found = set(), []
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        key = re.sub(r"[-_.]+", "-", name or "").lower()
        if not name or key in seen:
            continue
        seen.add(key)
        found += [(dist, ep) for ep in dist.entry_points if ep.group == group]
    return sorted(found, key=lambda pair: (pair[1].name, pair[0].metadata["Name"].lower()))


def _dist_name(ep) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _allowed(env: str) -> set[str] | None:
    value = os.environ.get(env)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_errors() -> dict[str, str]:
    """{entry point name: one-line error} from the loader, where it keeps them."""
    from .. import plugins as loader

    found = getattr(loader, "load_errors", None)
    return dict(found()) if callable(found) else {}


def _load_error(ep) -> str:
    """Why an entry point did not load: its import tried again (a failed import leaves nothing
    in sys.modules, so it fails the same way), as ``Type: first line``."""
    from ..errors import first_line

    try:
        ep.load()
    except Exception as exc:
        return f"{type(exc).__name__}: {first_line(exc)}"
    return "not loaded (it imports now: a failure that did not repeat)"


def _is(plugin: object, ep) -> bool:
    """Whether ``plugin`` (registered under ep's name) is the object ``ep`` names, found without
    importing anything."""
    module = sys.modules.get(ep.module)
    if module is None:
        return False
    target = module
    for part in ep.attr.split(".") if ep.attr else ():
        target = getattr(target, part, None)
    return target is plugin


def _owner(plugin: object) -> str:
    """A registered plugin object as the module (or object) it is."""
    name = getattr(plugin, "__name__", None)
    return name if isinstance(name, str) else f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def _registers(pm, name: str, plugin: object) -> dict:
    """The hooks ``plugin`` implements and the SUTs and commands its hooks register, each hook
    called on its own (a scratch click group for the commands): a hook that raises makes the
    status ``failed`` with its error, the others are still listed."""
    from ..errors import first_line

    hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
    found: dict = {"hooks": hooks, "suts": [], "commands": [], "metrics": []}
    errors = []
    for impl in pm.hook.register_suts.get_hookimpls():
        if impl.plugin_name != name:
            continue
        classes: list = []
        try:
            impl.function(register=classes.append)
        except Exception as exc:
            errors.append(f"register_suts: {type(exc).__name__}: {first_line(exc)}")
        for cls in classes:
            sut = getattr(cls, "name", None) if isinstance(cls, type) else None
            if isinstance(sut, str) and sut:
                found["suts"].append(sut)
            else:
                errors.append(f"register_suts: {cls!r} is not a named SUT class")
    for impl in pm.hook.register_commands.get_hookimpls():
        if impl.plugin_name != name:
            continue
        scratch = click.Group("scratch")
        try:
            impl.function(cli=scratch)
        except Exception as exc:
            errors.append(f"register_commands: {type(exc).__name__}: {first_line(exc)}")
        found["commands"] += sorted(scratch.commands)
    for impl in pm.hook.register_metrics.get_hookimpls():
        if impl.plugin_name != name:
            continue
        metrics: list = []
        try:
            impl.function(register=metrics.append)
        except Exception as exc:
            errors.append(f"register_metrics: {type(exc).__name__}: {first_line(exc)}")
        found["metrics"] += [str(getattr(m, "name", m)) for m in metrics]
    found["suts"].sort()
    if errors:
        found.update(status="failed", error="; ".join(errors))
    return found


# -- plugins new -----------------------------------------------------------------------------------
@plugins.command("new")
@click.argument("name")
@click.option("--output", metavar="DIR", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the package NAME/ into.")
@click.option("--force", is_flag=True, help="Write the package's files over an existing NAME/ "
              "(its other files stay).")
def new(name: str, output: Path, force: bool) -> None:
    """Write a new SUT plugin package NAME/.

    The package installs and passes its own tests as written. NAME is the SUT's name: lower-case letters and digits, words joined by single hyphens
    (acme-npu). It is also the entry point's name; the distribution is tinyharness-NAME and the
    import package tinyharness_NAME ('-' as '_'). A NAME that an installed plugin or a SUT already
    has is refused (with --force, a warning).

    \b
    The package:
      pyproject.toml             entry point NAME in the group 'tinyharness'
      src/<package>/plugin.py    the register_suts hook (no numpy, no runtime)
      src/<package>/sut.py       the SUT, on ONNX Runtime (replace YOUR RUNTIME),
                                 and its typed --sut-option config
      tests/test_conformance.py  the conformance kit, one test a rule
      README.md, .gitignore

    \b
    Then: pip install -e NAME; tinyharness run --sut NAME; cd NAME && pytest.
    The walk-through: 'tinyharness docs writing-a-sut'.
    """
    from ..scaffold import Names, write

    names = Names.of(name)  # a bad name: one line, exit 2, before anything is looked up
    taken = _taken(names.sut)
    if taken and not force:
        raise UsageError(f"{taken}; choose another name")
    if taken:
        click.echo(f"warning: {taken}", err=True)
    root = write(names.sut, output, force=force)
    shown = root.as_posix()
    click.echo(f"wrote {shown}/: the SUT {names.sut!r} in {shown}/src/{names.package}/sut.py\n"
               "next:\n"
               f"  pip install -e {shown}\n"
               f"  tinyharness run --sut {names.sut}\n"
               f"  cd {shown} && pytest\n"
               "guide: tinyharness docs writing-a-sut")


def _taken(name: str) -> str | None:
    """Why ``name`` is already in use (an installed entry point, a registered SUT), or None."""
    from importlib import metadata

    from ..plugins import GROUP

    for ep in metadata.entry_points(group=GROUP):
        if ep.name == name:
            dist = getattr(ep, "dist", None)
            owner = f" of {dist.metadata['Name']} {dist.version}" if dist is not None else ""
            return f"{name!r} is already an installed plugin (an entry point{owner})"
    from ..plugins import registry

    try:
        reg = registry()
    except UsageError:  # a broken plugin: the entry points above are what can be checked
        return None
    if name in reg.suts:
        return f"{name!r} is already a SUT (registered by plugin {reg.origin[name]!r})"
    return None
