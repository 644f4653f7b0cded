"""``tinyharness models export``: a benchmark's float ONNX model to PyTorch .pt2 or ExecuTorch .pte.

Only click is imported here; the command imports the rest when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .types import choice


@click.command("export")
@click.argument("target", metavar="BENCHMARK|MODEL.onnx")
@click.option("--to", "to", type=choice("torch", "executorch"), required=True,
              help="torch: a torch.export program (.pt2); executorch: an ExecuTorch program "
              "(.pte) lowered to the XNNPACK delegate.")
@click.option("--precision", type=choice("float", "int8"), default="float", show_default=True,
              help="float keeps the ONNX model's float32 weights; int8 quantizes them and the "
              "activations with PT2E and the XNNPACK quantizer (needs --calibration).")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), metavar="LIST",
              help="int8: the calibration set, a text file naming the benchmark's dataset files "
              "(one per line; a y_labels.csv works), or a .npy array of float32 inputs. MLPerf "
              "Tiny allows only the benchmark's official calibration samples.")
@click.option("--dataset", type=click.Path(path_type=Path), metavar="DIR",
              help="Dataset folder the calibration list's files are in (default: the benchmark's, "
              "as for run).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder for the model and its sidecar JSON (default: the model cache's "
              "exported/<store_dir>/, or exported/local/ for a MODEL.onnx path).")
@click.option("--python", "python", metavar="PATH", envvar="TINYHARNESS_EXPORT_PYTHON",
              show_envvar=True, help="Python that has torch, onnx and onnx2torch (and executorch "
              "for --to executorch); default: this one.")
def export(target, to, precision, calibration, dataset, output, python) -> None:
    """Export a benchmark's pinned float ONNX model (or one MODEL.onnx file) to PyTorch or
    ExecuTorch: onnx2torch, then torch.export; for ExecuTorch, then
    to_edge_transform_and_lower with the XNNPACK partitioner. With --precision int8, PT2E
    quantization in between, calibrated on --calibration's inputs.

    The converter runs in a child process, so PyTorch is never loaded here. Beside the model,
    <file>.json records the source's sha256, the converter and its versions, and the largest
    difference from ONNX Runtime on a few random inputs. Exported models are open-division models,
    not reference models: run one with --model PATH and a SUT that reads the format (torch-cpu,
    executorch-cpu)."""
    from ..export import export as export_model
    from ..export import plan
    from ..model_store import ModelStore

    store = ModelStore()
    job = plan(target, to, precision, output, store, calibration, dataset)
    done = export_model(job, python or sys.executable, store)
    check, quant = done.meta.get("check"), done.meta.get("quantization")
    click.echo(f"{done.source.name} -> {job.output}\n  sha256 {done.sha256}")
    if "delegate" in done.meta:
        click.echo(f"  delegate: {done.meta['delegate'] or 'none (portable kernels only)'}")
    if quant:
        click.echo(f"  int8: {quant['quantized_ops']} quantize ops, calibrated on "
                   f"{quant['calibration']['samples']} inputs of {quant['calibration']['source']}")
    if check:
        what = "calibration" if quant else "random"
        click.echo(f"  max |difference| from {check['against']}: {check['max_abs_diff']:.3g} "
                   f"({check['inputs']} {what} inputs)")
    click.echo(f"  {done.meta['converter']}\n  sidecar {done.sidecar}; {done.meta['division']}")
