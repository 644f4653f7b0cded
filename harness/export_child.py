"""The converter of ``tinyharness models export``, run as a script in a child interpreter that
may be another virtual environment's (so it imports nothing from tinyharness).

    python export_child.py '{"source": ..., "output": ..., "to": "torch"|"executorch",
                             "precision": "float"|"int8", "calibration": NPY|null}'

It prints one JSON line last: ``{"ok": true, "versions": ..., "info": ...}`` or ``{"error": ...}``
(exit 3). int8 is PyTorch's PT2E static quantization with ExecuTorch's XNNPACKQuantizer
(symmetric int8, per-channel weights, per-tensor activations), observers calibrated on the given
float32 inputs; the program keeps float input and output.
"""

import json
import re
import sys
import types


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(3)


def needs(job):
    need = ["torch", "onnx", "onnx2torch"]
    if job["to"] == "executorch" or job["precision"] == "int8":
        need.append("executorch")
    if job["precision"] == "int8":
        need.append("torchao")
    return need


def stand_in_torchvision():
    """onnx2torch imports torchvision for its NMS and RoiAlign converters only; PyPI's torchvision
    does not import beside every torch build, so a stand-in that refuses those ops takes its place."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

        def refuse(*args, **kwargs):
            raise RuntimeError("torchvision is not installed: NMS and RoiAlign cannot be exported")
        ops.nms = ops.roi_align = ops.box_convert = refuse
        tv.ops = ops
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops


def input_shape(onnx, graph):
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        fail(f"supports one input and one output, the model has {len(inputs)} and "
             f"{len(graph.output)}")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        fail(f"the input is {onnx.TensorProto.DataType.Name(tensor.elem_type).lower()}, not "
             "float: export the float model")
    shape = []
    for axis, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif axis == 0:
            shape.append(1)  # batch 1, as every SUT runs
        else:
            fail(f"input dimension {axis} is dynamic")
    return inputs[0].name, shape


def to_module(torch, model, example):
    """onnx2torch's module, made exportable: static reshapes and identifier submodule names."""
    from onnx2torch import convert
    from onnx2torch.node_converters.reshape import OnnxReshape
    from torch.fx.passes.shape_prop import ShapeProp

    module = convert(model).eval()
    # onnx2torch's Reshape reads its target shape from a tensor (data-dependent for torch.export):
    # with batch 1 every shape is static, so each Reshape becomes torch.reshape to its shape.
    ShapeProp(module).propagate(example)
    static = 0
    for node in list(module.graph.nodes):
        if node.op == "call_module" and isinstance(module.get_submodule(node.target), OnnxReshape):
            with module.graph.inserting_after(node):
                new = module.graph.call_function(
                    torch.reshape, (node.args[0], tuple(node.meta["tensor_meta"].shape)))
            node.replace_all_uses_with(new)
            module.graph.erase_node(node)
            static += 1
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    # Submodules are named after the ONNX nodes ("model/dense/BiasAdd;model/Relu"): torch.export
    # keeps those paths in each node's nn_module_stack, which torch.export.load cannot split back
    # where they hold ',' or ';'. Each called submodule gets an identifier of its own.
    owned, used = {}, set()
    params = dict(module.named_parameters())
    for node in module.graph.nodes:
        if node.op == "call_module":
            if node.target not in owned:
                safe = re.sub(r"\W", "_", node.target) or "m"
                while safe in used:
                    safe += "_"
                used.add(safe)
                owned[node.target] = (safe, module.get_submodule(node.target))
            node.target = owned[node.target][0]
        elif node.op == "get_attr":
            owned.setdefault(node.target, (node.target, params[node.target] if node.target in params
                                           else module.get_buffer(node.target)))
    return torch.fx.GraphModule(dict(owned.values()), module.graph), static


def quantize(torch, program, example, calibration, shape):
    """PT2E: prepare with the XNNPACK quantizer, run the calibration inputs, convert, re-export."""
    import numpy as np
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    inputs = np.load(calibration, allow_pickle=False)
    with torch.no_grad():
        for x in inputs:
            prepared(torch.from_numpy(np.ascontiguousarray(x.reshape(shape))))
        converted = convert_pt2e(prepared)
        program = torch.export.export(converted, (example,), strict=False)
    info = {"method": "PT2E static post-training quantization (torchao.quantization.pt2e "
                      "prepare_pt2e/convert_pt2e)",
            "quantizer": "executorch XNNPACKQuantizer, get_symmetric_quantization_config("
                         "is_per_channel=True)",
            "weights": "int8 symmetric, per output channel",
            "activations": "int8 per tensor, min/max observers",
            "calibration_inputs": int(len(inputs)),
            "quantized_ops": sum(1 for n in program.graph.nodes if n.op == "call_function"
                                 and "quantize_per" in str(n.target))}
    return program, info, [torch.from_numpy(np.ascontiguousarray(x.reshape(shape)))
                           for x in inputs[:4]]


def save(torch, job, program, info):
    """Write the program; return a callable that runs what a reader loads back."""
    if job["to"] == "torch":
        torch.export.save(program, job["output"])
        return torch.export.load(job["output"]).module()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    calls = [n for n in edge.exported_program().graph.nodes if n.op == "call_function"]
    delegated = [n for n in calls if "executorch_call_delegate" in str(n.target)]
    info["delegate"] = "XnnpackBackend" if delegated else None
    info["delegated_calls"] = len(delegated)
    info["portable_ops"] = sorted({str(n.target) for n in calls if n not in delegated
                                   and str(n.target) != "<built-in function getitem>"})
    with open(job["output"], "wb") as out:
        out.write(edge.to_executorch().buffer)
    program = Runtime.get().load_program(job["output"])  # must outlive its method
    method = program.load_method("forward")
    return lambda x: (program, method.execute([x])[0])[1]


def check(job, name, shape, run, inputs):
    """Largest difference from ONNX Runtime on the float model, where the child has it."""
    import numpy as np
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(job["source"], providers=["CPUExecutionProvider"])
    diff = 0.0
    for x in inputs:
        want = sess.run(None, {name: x.numpy().reshape(shape)})[0]
        got = run(x)
        got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
        diff = max(diff, float(np.abs(got.reshape(want.shape) - want).max()))
    return {"against": f"onnxruntime {ort.__version__} on the float model",
            "inputs": len(inputs), "max_abs_diff": diff}


def main():
    job = json.loads(sys.argv[1])
    import importlib.metadata as md
    import importlib.util as u

    need = needs(job)
    missing = [m for m in need if u.find_spec(m) is None]
    if missing:
        fail("missing " + " and ".join(missing))
    stand_in_torchvision()
    import numpy as np
    import onnx
    import torch

    def version(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    versions = {name: version(name) for name in need}
    model = onnx.load(job["source"])
    name, shape = input_shape(onnx, model.graph)
    torch.manual_seed(0)
    example = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    module, static = to_module(torch, model, example)
    with torch.no_grad():
        program = torch.export.export(module, (example,), strict=False)
    info = {"input": {"name": name, "shape": shape, "dtype": "float32"},
            "static_reshapes": static}
    rng = np.random.default_rng(1)
    inputs = [example] + [torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
                          for _ in range(3)]
    if job["precision"] == "int8":
        # random inputs lie outside the calibrated ranges: checked on calibration inputs instead
        program, info["quantization"], inputs = quantize(torch, program, example,
                                                         job["calibration"], shape)
    run = save(torch, job, program, info)
    info["check"] = check(job, name, shape, run, inputs)
    print(json.dumps({"ok": True, "versions": versions, "info": info}))


if __name__ == "__main__":
    main()
