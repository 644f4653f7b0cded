"""What each install of tinyharness costs: venv size, install time, wheel downloads.

For each extra ('' = the core) a fresh venv (``python -m venv``) under a scratch folder, a timed
``pip install "<repo>[extra]"`` (non-editable), then ``du`` of the venv. With ``--run`` the
onnxruntime venv also runs the embedded digits01 benchmark (``tinyharness run --sut
onnxruntime-cpu``) and times it; with ``--cold`` that venv is installed once more with
``--no-cache-dir`` (every wheel downloaded); with ``--downloads`` ``pip download`` of each extra
gives the bytes of wheels it fetches (done before
the install, so that the timed install reads pip's cache).

    python bench/install_footprint.py --run --cold --downloads            # about 10 minutes
    python bench/install_footprint.py --extras onnxruntime report        # just these

Prints one table row per extra; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXTRAS = ("", "onnxruntime", "openvino", "litert", "report", "all", "dev")


def du_mb(path: Path) -> float:
    """Disk use as ``du -sm`` counts it (MiB of blocks)."""
    return float(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True,
                                check=True).stdout.split()[0])


def sh(cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, done


def target(extra: str) -> str:
    return f"{REPO}[{extra}]" if extra else str(REPO)


def install(scratch: Path, extra: str, cache: bool = True) -> dict:
    venv = scratch / f"venv-{extra or 'core'}{'' if cache else '-cold'}"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"] + ([] if cache else ["--no-cache-dir"])
    seconds, done = sh(pip + [target(extra)])
    if done.returncode:
        return {"extra": extra, "error": done.stderr[-2000:]}
    return {"extra": extra or "(core)", "venv": str(venv), "venv_mb": round(du_mb(venv), 1),
            "install_s": round(seconds, 1), "cache": cache}


def run_digits(venv: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="th-run-"))
    env = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    seconds, done = sh([str(venv / "bin" / "tinyharness"), "run", "--sut", "onnxruntime-cpu"],
                       cwd=work, env=env)
    valid = "VALID" in done.stdout and "INVALID" not in done.stdout
    return {"run_s": round(seconds, 1), "run_rc": done.returncode, "valid": valid and done.returncode == 0,
            "run_tail": done.stdout[-600:] + done.stderr[-600:]}


def downloads(scratch: Path, extra: str) -> float:
    folder = scratch / f"dl-{extra or 'core'}"
    shutil.rmtree(folder, ignore_errors=True)
    _, done = sh([sys.executable, "-m", "pip", "download", "-q", "-d", str(folder), target(extra)])
    if done.returncode:
        return float("nan")
    return round(sum(p.stat().st_size for p in folder.iterdir()
                     if not p.name.startswith("tinyharness")) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", nargs="*", default=list(EXTRAS), help="'' or core for the core")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "th-footprint")
    parser.add_argument("--run", action="store_true", help="run digits01 in the onnxruntime venv")
    parser.add_argument("--cold", action="store_true", help="also install [onnxruntime] with --no-cache-dir")
    parser.add_argument("--downloads", action="store_true", help="pip download each extra, sum the wheels")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    for extra in ["" if e == "core" else e for e in args.extras]:
        fetched = downloads(args.scratch, extra) if args.downloads else None  # also fills pip's cache
        row = install(args.scratch, extra)
        if fetched is not None:
            row["download_mb"] = fetched
        if extra == "onnxruntime" and args.run and "error" not in row:
            row.update(run_digits(Path(row["venv"])))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "run_tail"}), flush=True)
    if args.cold and "onnxruntime" in args.extras:
        row = install(args.scratch, "onnxruntime", cache=False)
        if args.run and "error" not in row:
            row.update(run_digits(Path(row["venv"])))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "run_tail"}), flush=True)
    print(f"\n{'extra':<14}{'venv MiB':>9}{'install s':>11}{'wheels MB':>11}")
    for row in rows:
        if "error" in row:
            print(f"{row['extra']:<14} failed: {row['error'].splitlines()[-1] if row['error'] else '?'}")
            continue
        name = row["extra"] + ("" if row["cache"] else " (cold)")
        print(f"{name:<14}{row['venv_mb']:>9.1f}{row['install_s']:>11.1f}{row.get('download_mb', float('nan')):>11.1f}"
              + (f"   digits01 {row['run_s']} s, {'VALID' if row['valid'] else 'NOT VALID'}"
                 if "run_s" in row else ""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
