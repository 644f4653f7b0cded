"""``tinyharness package``, ``tinyharness check`` and ``tinyharness system init``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import UsageError
from .types import choice, count, finite, registered_sut


def _system_option(value: str) -> tuple[str | None, Path]:
    """``[SUT=]PATH``: a path that exists is a path even when it holds '='."""
    sut, sep, path = value.partition("=")
    if sep and sut and not Path(value).exists():
        return sut.strip(), Path(path)
    return None, Path(value)


@click.command("package")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("--submitter", required=True, metavar="ORG", help="Organisation name (the submitter "
              "folder): letters, digits, '.', '_' and '-'.")
@click.option("--division", required=True, type=choice("closed", "open"),
              help="closed: reference models, quality targets enforced; open: anything goes, an "
              "accuracy below target is accepted.")
@click.option("--system", "systems", required=True, multiple=True, metavar="[SUT=]SYSTEM.json",
              help="System description (see 'tinyharness system init'); its file name is the system "
              "id. Repeat as SUT=FILE to give each SUT its own system; a plain FILE serves the SUTs "
              "not named otherwise.")
@click.option("--output", required=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Package folder to create, or PATH.tar.gz for a deterministic archive.")
def package_cmd(runs, submitter, division, systems, output) -> None:
    """Package finished, VALID run directories as an MLPerf Tiny submission tree.

    \b
    <division>/<submitter>/systems/<system>.json
    <division>/<submitter>/results/<system>/<model>/{accuracy,performance}/
        log.txt, results.txt (the lines the MLCommons checker parses), results.json
    <division>/<submitter>/tinyharness/<system>/<model>/<run>/   (the run directories)
    manifest.json                                                 (sha256 and size of each file)

    A run of mode 'all' gives both accuracy and performance; separate accuracy and performance
    runs of one benchmark on one SUT are combined when they used the same model. Only
    single-stream runs of the MLPerf Tiny benchmarks (kws01, vww01, ic01, ic02, ad01) can be
    packaged; the closed division needs a reference model (or a model on a device), the open one
    accepts a run INVALID only for its accuracy. 'tinyharness check' applies the same rules, and
    checks the package before it is written. The rules: 'tinyharness docs mlperf-tiny-rules'.
    """
    from ..submission.package import build

    parsed = [_system_option(s) for s in systems]
    if sum(1 for sut, _ in parsed if sut is None) > 1:
        raise UsageError("give at most one plain --system FILE; name the SUT of the others (SUT=FILE)")
    built = build(list(runs), submitter, division, parsed, output)
    click.echo(f"package: {built}")


@click.command("check")
@click.argument("path", type=click.Path(path_type=Path), metavar="PATH")
@click.option("--version", "rules_version", type=choice("v1.0", "v1.1", "v1.2", "v1.3", "v1.4"),
              help="The MLPerf Tiny round whose rules apply. Default: the round a folder of PATH names "
              "(e.g. tiny_results_v1.1, v1.1), else the newest whose layout fits the tree.")
@click.option("--submitter", metavar="ORG", help="Check only this submitter folder (<division>/ORG).")
@click.option("--max-member-size", type=finite(0, 1 << 20, min_open=True), default=64, show_default=True,
              metavar="MiB", help="Archives: the largest member accepted (above 0, at most 1 TiB).")
@click.option("--max-total-size", type=finite(0, 1 << 20, min_open=True), default=512, show_default=True,
              metavar="MiB", help="Archives: the largest total of member sizes accepted (above 0, at "
              "most 1 TiB).")
@click.option("--max-members", type=count(1, 1_000_000), default=10_000, show_default=True, metavar="N",
              help="Archives: the most members accepted (1 to 1,000,000).")
@click.option("--json", "as_json", is_flag=True, help="Print {rules, rules_from, package, violations, "
              "notes} as JSON.")
def check_cmd(path, rules_version, submitter, max_member_size, max_total_size, max_members, as_json) -> None:
    """Check an MLPerf Tiny results tree (folder or .tar.gz), tinyharness-made or not, and print
    EVERY violation as 'PATH-IN-TREE: rule: message', then the notes as 'PATH-IN-TREE: note:
    message'. Exit code 1 when there is any violation, 0 otherwise (notes never fail a check).

    \b
    The MLCommons rules of the round (--version): layout, the files of each test folder, the
    system descriptions, the result lines (closed-division quality targets, energy, sww), and the
    MLPerf Tiny windows wherever results.txt shows them (5, each at least 10 s, the median
    line their median). What the MLCommons checker only warns about is a note, not a violation.
    A tinyharness package (manifest.json) also has its checksums, its stricter layout and its
    embedded runs (tinyharness/) verified, every figure recomputed; a tree without them gets the
    note "not a tinyharness package". The rules used are named in the last line.

    An archive is never trusted: it is read member by member into a private temporary folder
    (links, devices, FIFOs, '..' and absolute names, duplicates, oversized members and
    compression bombs are refused and reported), which is removed afterwards. Every rule
    checked: 'tinyharness docs mlperf-tiny-rules'.
    """
    from ..submission.archive import MiB, Limits
    from ..submission.check import check_tree

    if not path.exists():
        raise UsageError(f"{path} does not exist")
    limits = Limits(member_bytes=max(1, int(max_member_size * MiB)),
                    total_bytes=max(1, int(max_total_size * MiB)), members=max_members)
    report = check_tree(path, limits, version=rules_version, submitter=submitter)
    found = report.found
    rules = f"MLPerf Tiny {report.version} rules"
    why = f"{report.version_from}; " if report.version_from else ""
    if as_json:
        click.echo(json.dumps({"rules": report.version, "rules_from": report.version_from,
                               "package": report.package, "violations": [v.__dict__ for v in found],
                               "notes": [{"path": n.path, "message": n.message} for n in report.notes]},
                              indent=1))
    else:
        for line in [*found, *report.notes]:  # notes after the violations: 'PATH: note: message'
            click.echo(str(line))
    if found:
        click.echo(f"{path}: {len(found)} violation{'s' if len(found) != 1 else ''} under the {rules}"
                   + (f" ({report.version_from})" if report.version_from else ""), err=True)
        sys.exit(1)
    if not as_json:
        checked = ("manifest, layout, system descriptions, result lines and embedded runs all pass"
                   if report.package else "layout, system descriptions and result lines pass; not a "
                   "tinyharness package, nothing recomputed")
        click.echo(f"{path}: OK under the {rules} ({why}{checked})")


@click.group("system")
def system() -> None:
    """MLPerf Tiny system descriptions (systems/<system_desc_id>.json)."""


@system.command("init")
@click.option("--output", type=click.Path(path_type=Path), metavar="SYSTEM.json",
              help="Write here (the file name is the system id) instead of printing.")
@click.option("--sut", metavar="NAME", callback=registered_sut,
              help="Fill 'Inference Framework' and 'Software Libraries' "
              "for this SUT only (default: list every installed runtime).")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR",
              help="Take the SUT and what it recorded (a board, its processor, the compilers: "
              "e.g. a 'dut qemu' run's emulated board) from this run directory.")
@click.option("--submitter", default="", metavar="ORG", help="The 'Submitter' field.")
@click.option("--division", type=choice("closed", "open"), help="The 'Division' field.")
@click.option("--status", type=choice("available", "preview", "rdi"), default="available",
              show_default=True, help="The 'Status' field (the checker requires it).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
def system_init(output, sut, run_dir, submitter, division, status, force) -> None:
    """Write a system description with every MLPerf Tiny field: what the harness detects (CPU
    model and frequency, memory, OS, Python, runtime versions) filled in, the rest as empty strings
    to complete by hand. There is never a 'system_type' key (the MLPerf Tiny checker raises on it).
    """
    from ..submission import outputs
    from ..submission.system_json import blanks, describe, render

    if output is not None:  # before detecting anything: /proc, a folder, a file's child
        outputs.prepare(output, force=force)
    recorded = None
    if run_dir is not None:
        sut, recorded = _recorded_sut(run_dir, sut)
    doc = describe(sut=sut, submitter=submitter, division=division or "", status=status,
                   recorded=recorded)
    empty = [key for key in blanks(doc) if key not in ("Submitter", "Division")]  # package sets them
    if output is None:
        click.echo(render(doc).decode("utf-8"), nl=False)
    else:
        from ..fileio import atomic_write

        with outputs.writing(output):
            atomic_write(output, render(doc))
        click.echo(f"system description: {output} (complete the empty fields by hand)", err=True)
    if empty:
        click.echo(f"note: the closed division needs {', '.join(empty)} filled ('N/A' where one "
                   "does not apply)", err=True)


def _recorded_sut(run_dir: Path, sut: str | None) -> tuple[str, dict]:
    """(the SUT name, its recorded describe().extra) from a run directory's summary.json."""
    from ..fileio import loads_json, read_bounded

    path = Path(run_dir) / "summary.json"
    doc = loads_json(read_bounded(path, 1 << 24, "summary").decode("utf-8", "replace"), str(path))
    name = doc.get("sut") if isinstance(doc, dict) else None
    if not isinstance(name, str):
        raise UsageError(f"{path}: not a tinyharness run summary (no 'sut')")
    if sut is not None and sut != name:
        raise UsageError(f"--sut {sut} but the run {run_dir} is of SUT {name}: give one of them")
    extra = ((doc.get("system") or {}).get("sut") or {}).get("extra")
    return registered_sut(None, None, name), extra if isinstance(extra, dict) else {}
