"""digits01's PyTorch and ExecuTorch artefacts, built by ``build_digits01.py`` from the trained
weights:

- ``digits01_float.pt2``: ``torch.export`` program of the MLP, dynamic batch dimension;
- ``digits01_pt2e_int8.pt2``: the same after PT2E static quantization with ExecuTorch's
  XNNPACKQuantizer (symmetric int8, per-channel weights), calibrated on the training split;
- ``digits01_float.pte`` / ``digits01_pt2e_int8.pte``: those programs at batch 1, lowered to the
  XNNPACK delegate.

The metadata that names where the build ran (stack traces with absolute paths, the ids of the
graphs a node came from) is dropped before saving, so two builds with the same torch and
executorch give the same bytes.
"""

from __future__ import annotations

import io

import numpy as np

HIDDEN = 32
PT2_MAX_BATCH = 65536  # the exported program's dynamic batch dimension: 1 to this
_UNSTABLE_META = ("stack_trace", "from_node")


def torch_module(p: dict):
    """The MLP as a torch ``nn.Module`` in eval mode, float32, with the trained weights: raw 0..16
    pixels [N, 8, 8, 1] in, softmax probabilities [N, 10] out (the ONNX graph's ops)."""
    import torch

    class Digits01MLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(64, HIDDEN)
            self.fc2 = torch.nn.Linear(HIDDEN, 10)

        def forward(self, x):
            h = torch.relu(self.fc1(x.reshape(x.shape[0], 64)))
            return torch.softmax(self.fc2(h), dim=-1)

    # The class's module path is recorded in each node's nn_module_stack: pin it, so the bytes do
    # not depend on how the script was run (__main__ or imported).
    Digits01MLP.__module__ = "digits01"
    m = Digits01MLP().eval()
    with torch.no_grad():
        for layer, fc in ((1, m.fc1), (2, m.fc2)):
            fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(p[f"w{layer}"].T)))  # [out, in]
            fc.bias.copy_(torch.from_numpy(np.ascontiguousarray(p[f"b{layer}"])))
    for param in m.parameters():
        param.requires_grad_(False)
    return m


def _export(module, batch: int | None):
    """``torch.export`` at a dynamic batch (``batch=None``) or a fixed one."""
    import torch

    if batch is None:
        dim = torch.export.Dim("batch", min=1, max=PT2_MAX_BATCH)
        # 2: a batch of 1 would be specialised away
        return torch.export.export(module, (torch.zeros(2, 8, 8, 1),),
                                   dynamic_shapes={"x": {0: dim}}, strict=False)
    return torch.export.export(module, (torch.zeros(batch, 8, 8, 1),), strict=False)


def _stable(ep):
    """``ep`` without the node metadata that names where the build ran."""
    for node in ep.graph.nodes:
        for key in _UNSTABLE_META:
            node.meta.pop(key, None)
    return ep


def _saved(ep) -> bytes:
    import torch

    _stable(ep)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def quantized_module(p: dict, x_calib: np.ndarray):
    """PT2E int8 of :func:`torch_module`: observers placed by the XNNPACK quantizer, calibrated on
    ``x_calib`` (float32 [N, 8, 8, 1], the training split), then converted."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(_export(torch_module(p), None).module(), quantizer)
    with torch.no_grad():
        prepared(torch.from_numpy(np.ascontiguousarray(x_calib, dtype=np.float32)))
    return convert_pt2e(prepared)


def pt2_bytes(module) -> bytes:
    """The module as a ``torch.export`` program with a dynamic batch (the SUT batches offline)."""
    return _saved(_export(module, None))


def pte_bytes(module) -> bytes:
    """The module at batch 1 lowered to ExecuTorch's XNNPACK delegate (``.pte``)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(_stable(_export(module, 1)), partitioner=[XnnpackPartitioner()])
    return bytes(edge.to_executorch().buffer)


def scores(model_bytes: bytes, fmt: str, x: np.ndarray) -> np.ndarray:
    """Output of a saved .pt2 or .pte on float32 inputs [N, 8, 8, 1], one sample at a time for the
    .pte (batch 1), as the SUTs run them."""
    import torch

    if fmt == "pt2":
        import torch.ao.quantization.fx._decomposed  # noqa: F401  (the int8 program's ops)

        program = torch.export.load(io.BytesIO(model_bytes)).module()
        with torch.no_grad():
            return program(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(model_bytes)  # must outlive its method
    method = program.load_method("forward")
    return np.concatenate([method.execute([torch.from_numpy(np.ascontiguousarray(
        row[np.newaxis], dtype=np.float32))])[0].numpy() for row in x])
