#!/usr/bin/python3
"""Static int8 quantisation of a float ONNX CNN into the QDQ format ONNX Runtime's CPU EP fuses.

Three steps, because this machine has python3-onnx but no Python ONNX Runtime (only .NET can run a model):

  A. instrument: a copy of the float model whose graph outputs also include every activation tensor that
     needs a scale (see plan()).
       /usr/bin/python3 models/tools/quantize_int8.py instrument MODEL.onnx INSTRUMENTED.onnx
  B. in .NET: ris-calibrate --model INSTRUMENTED.onnx --images DIR[,DIR...] --views luma,colour --json RANGES.json
     (preprocesses like the product, records per-tensor min/max, percentiles and channel means).
  C. quantize: the QDQ model.
       /usr/bin/python3 models/tools/quantize_int8.py quantize MODEL.onnx RANGES.json OUT.onnx [--method p99.999|minmax|...]
  and for checking ORT's fusion, on a model saved with SessionOptions.OptimizedModelFilePath:
       /usr/bin/python3 models/tools/quantize_int8.py ops OPTIMIZED.onnx

The QDQ model:
  - Conv: input DequantizeLinear(uint8, per tensor) -> Conv with weight DequantizeLinear(int8 initializer,
    symmetric per output channel, axis 0) and bias DequantizeLinear(int32 initializer, scale input_scale *
    weight_scale, axis 0) -> output QuantizeLinear(uint8). A Conv whose only consumer is Clip/Relu keeps it;
    the QuantizeLinear goes after the activation and gets zero point 0 and a range inside [0, 6], so ORT's
    ClipQuantFusion drops the Clip and the Conv fuses into QLinearConv.
  - Add of two activations: DequantizeLinear on both inputs, QuantizeLinear on the output (QLinearAdd).
  - Every other op (Transpose, GlobalAveragePool, Flatten, ...) stays float and reads a DequantizeLinear.
  - Each quantised tensor has one QuantizeLinear and one DequantizeLinear per consumer (ORT's node-unit
    selectors want a DequantizeLinear feeding only its own node); graph outputs keep their names and float
    type (a dedicated DequantizeLinear produces each one), graph inputs stay float.
  - Bias correction (unless --no-bias-correction): each Conv's bias absorbs the mean output change that rounding its
    weights causes, from calibrate's per-channel input means.
Generic over any opset >= 13 model built from these ops: rerun it when the float model changes (models/tools/make_int8.sh).
"""
import argparse
import hashlib
import json
import os
import sys
from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ACTIVATIONS = {"Clip", "Relu"}
LAYOUT_OPS = {"Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten"}


def consumers_of(graph):
    uses = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                uses[name].append(node)
    return uses


def producers_of(graph):
    return {out: node for node in graph.node for out in node.output}


def initializer_map(graph):
    return {init.name: init for init in graph.initializer}


def quantized_nodes(graph):
    """Nodes that become integer ops: Conv with a constant 4-D weight, Add of two activations."""
    inits = initializer_map(graph)
    chosen = []
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) >= 2 and node.input[1] in inits \
                and len(inits[node.input[1]].dims) == 4 and node.input[0] not in inits:
            chosen.append(node)
        elif node.op_type == "Add" and len(node.input) == 2 and all(i not in inits for i in node.input):
            chosen.append(node)
    return chosen


def activation_bounds(node, inits):
    """(low, high) of a Clip/Relu with constant bounds, else None."""
    if node.op_type == "Relu":
        return (0.0, float("inf"))
    if node.op_type == "Clip":
        def const(index, default):
            if len(node.input) > index and node.input[index]:
                if node.input[index] not in inits:
                    return None
                return float(numpy_helper.to_array(inits[node.input[index]]))
            return default
        low, high = const(1, float("-inf")), const(2, float("inf"))
        if low is None or high is None:
            return None
        return (low, high)
    return None


def plan(model):
    """Which tensors get a QuantizeLinear: the activation inputs of quantised nodes, and their outputs (or the
    output of the Clip/Relu that alone consumes a Conv output). Returns (tensors in graph order, quantised node
    names, {tensor: (low, high)} fixed bounds of activations, {tensor: graph input it is a layout of})."""
    graph = model.graph
    inits = initializer_map(graph)
    uses = consumers_of(graph)
    producers = producers_of(graph)
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input} - set(inits)
    qnodes = quantized_nodes(graph)
    tensors, bounds = [], {}

    def add(name):
        if name not in tensors:
            tensors.append(name)

    for node in qnodes:
        for name in node.input[:1] if node.op_type == "Conv" else node.input:
            add(name)
        out = node.output[0]
        users = uses.get(out, [])
        if node.op_type == "Conv" and len(users) == 1 and out not in outputs \
                and activation_bounds(users[0], inits) is not None:
            act = users[0]
            bounds[act.output[0]] = activation_bounds(act, inits)
            add(act.output[0])
        else:
            add(out)

    # Tensors that are only a relayout of a graph input take the input's declared range.
    from_input = {}
    for name in tensors:
        cursor = name
        while cursor in producers and producers[cursor].op_type in LAYOUT_OPS:
            cursor = producers[cursor].input[0]
        if cursor in inputs:
            from_input[name] = cursor
    order = {out: i for i, node in enumerate(graph.node) for out in node.output}
    tensors.sort(key=lambda t: order.get(t, -1))
    return tensors, {n.name for n in qnodes}, bounds, from_input


def check_opset(model):
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if version < 13:
        sys.exit(f"opset {version}: per-channel QuantizeLinear/DequantizeLinear need opset 13 or later")
    # Nodes are told apart by name below: give unnamed (or same-named) nodes a unique one.
    seen = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def instrument(args):
    model = onnx.load(args.model)
    check_opset(model)
    tensors, _, _, _ = plan(model)
    existing = {o.name for o in model.graph.output}
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    inferred.update({v.name: v for v in model.graph.input})
    for name in tensors:
        if name not in existing:
            if name not in inferred:
                sys.exit(f"shape inference found no type for {name}")
            model.graph.output.append(inferred[name])
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(json.dumps({"model": args.model, "out": args.out, "tensors": len(tensors)}))


def choose_range(name, ranges, method, bounds, from_input, input_range):
    if name in from_input:
        low, high = input_range
    else:
        if name not in ranges:
            sys.exit(f"no calibration range for tensor {name}: rerun instrument and calibrate on this model")
        entry = ranges[name]
        if method == "minmax":
            low, high = entry["min"], entry["max"]
        else:
            p = entry["percentiles"].get(method[1:])
            if p is None:
                sys.exit(f"{name}: ranges.json has no percentile {method[1:]} (has {sorted(entry['percentiles'])})")
            low, high = p["low"], p["high"]
    if name in bounds:
        lo_bound, hi_bound = bounds[name]
        low, high = max(low, lo_bound), min(high, hi_bound)
    # The range must hold 0 exactly (zero padding, ReLU zeros).
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-8:
        high = low + 1e-8
    scale = np.float32((high - low) / 255.0)
    zero = int(np.clip(np.round(-low / scale), 0, 255))
    if name in bounds and bounds[name][0] >= 0:
        zero = 0  # Clip(0, x) / Relu output: range [0, 255 * scale], within the activation's own bounds.
    return scale, np.uint8(zero), (float(low), float(high))


def weight_error_shift(node, w, w_quantized, input_stats):
    """Bias correction: the mean change of every output channel that rounding the weights causes, from the mean of
    every input channel (calibrate's channelMeans). Each kernel tap is weighted by the share of output positions where
    it reads inside the image rather than the zero padding. None when the statistics are missing."""
    means = input_stats.get("channelMeans")
    shape = input_stats.get("shape")
    if not means or not shape or len(shape) != 3:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    groups = attrs.get("group", 1)
    c_out, c_in_group, kh, kw = w.shape
    strides = attrs.get("strides", [1, 1])
    dilations = attrs.get("dilations", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    height, width = shape[1], shape[2]

    def valid_share(size, kernel, stride, dilation, pad_begin, pad_end):
        outputs = (size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)) // stride + 1
        share = np.zeros(kernel)
        for k in range(kernel):
            positions = np.arange(outputs) * stride - pad_begin + k * dilation
            share[k] = np.mean((positions >= 0) & (positions < size))
        return share

    share = np.outer(valid_share(height, kh, strides[0], dilations[0], pads[0], pads[2]),
                     valid_share(width, kw, strides[1], dilations[1], pads[1], pads[3]))
    means = np.asarray(means, np.float64).reshape(groups, c_in_group)
    per_output = means[np.arange(c_out) // (c_out // groups)]  # [c_out, c_in_group]
    return np.einsum("cikl,ci,kl->c", w_quantized - w, per_output, share)


def quantize(args):
    model = onnx.load(args.model)
    check_opset(model)
    with open(args.ranges) as f:
        calib = json.load(f)
    ranges = calib["tensors"]
    input_range = tuple(float(v) for v in args.input_range.split(","))
    graph = model.graph
    inits = initializer_map(graph)
    tensors, qnode_names, bounds, from_input = plan(model)
    # Diagnostics only (the result no longer fuses fully): leave some activations, or all weights, in float.
    keep_float = set(args.keep_float.split(",")) if args.keep_float else set()
    if args.float_activations:
        keep_float.update(tensors)
    tensors = [t for t in tensors if t not in keep_float]
    graph_outputs = {o.name for o in graph.output}

    new_inits, qparams, report = [], {}, []

    def const(name, array):
        new_inits.append(numpy_helper.from_array(array, name))
        return name

    for name in tensors:
        scale, zero, (low, high) = choose_range(name, ranges, args.method, bounds, from_input, input_range)
        qparams[name] = (const(name + "__scale", np.array(scale, np.float32)), const(name + "__zero", np.array(zero, np.uint8)), scale)
        report.append({"tensor": name, "low": low, "high": high, "scale": float(scale), "zero": int(zero)})

    uses = consumers_of(graph)
    old_nodes = list(graph.node)
    nodes = []
    dq_count = defaultdict(int)
    corrected = []
    dq_source = {}

    def dequantized(tensor, consumer):
        """A DequantizeLinear of tensor's quantised form for one consumer."""
        scale_name, zero_name, _ = qparams[tensor]
        dq_count[tensor] += 1
        out = f"{tensor}__dq{dq_count[tensor]}"
        dq_source[out] = tensor
        nodes.append(helper.make_node("DequantizeLinear", [tensor + "__q", scale_name, zero_name], [out],
                                      name=f"{tensor}__DequantizeLinear{dq_count[tensor]}_for_{consumer}"))
        return out

    # Graph inputs that are quantised directly (no layout op before them).
    for name in tensors:
        if name in {i.name for i in graph.input}:
            scale_name, zero_name, _ = qparams[name]
            nodes.append(helper.make_node("QuantizeLinear", [name, scale_name, zero_name], [name + "__q"], name=name + "__QuantizeLinear"))

    renamed = {}  # quantised tensor -> float name its producer now writes
    for node in old_nodes:
        # Inputs: quantised tensors are read through a DequantizeLinear of their own.
        for i, name in enumerate(node.input):
            if name in qparams:
                node.input[i] = dequantized(name, node.name)
        float_weight_nodes = set(args.float_weight_nodes.split(",")) if args.float_weight_nodes else set()
        if node.name in qnode_names and node.op_type == "Conv" and not args.float_weights \
                and node.name not in float_weight_nodes:
            x_scale = qparams[dq_source[node.input[0]]][2] if node.input[0] in dq_source else None
            w_name = node.input[1]
            w = numpy_helper.to_array(inits[w_name]).astype(np.float64)
            absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            w_scale = absmax / 127.0
            if len(node.input) > 2 and node.input[2] and x_scale is not None:
                # Dead channels (all-zero weights, only a bias) and tiny ones: a scale large enough that the
                # int32 bias at scale input * weight fits with room to spare.
                b_abs = np.abs(numpy_helper.to_array(inits[node.input[2]]).astype(np.float64))
                w_scale = np.maximum(w_scale, b_abs / (float(x_scale) * 2.0**30))
            w_scale = np.where(w_scale > 0, w_scale, 1.0).astype(np.float32)
            wq = np.clip(np.round(w / w_scale.astype(np.float64).reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
            const(w_name + "__int8", wq)
            const(w_name + "__scale", w_scale)
            const(w_name + "__zero", np.zeros(w.shape[0], np.int8))
            nodes.append(helper.make_node("DequantizeLinear", [w_name + "__int8", w_name + "__scale", w_name + "__zero"],
                                          [w_name + "__dq"], name=w_name + "__DequantizeLinear", axis=0))
            node.input[1] = w_name + "__dq"
            if len(node.input) > 2 and node.input[2] and x_scale is not None:
                b_name = node.input[2]
                b = numpy_helper.to_array(inits[b_name]).astype(np.float64)
                if not args.no_bias_correction:
                    shift = weight_error_shift(node, w, wq.astype(np.float64) * w_scale.astype(np.float64).reshape(-1, 1, 1, 1),
                                               ranges.get(dq_source[node.input[0]], {}))
                    if shift is not None:
                        b = b - shift
                        corrected.append(node.name)
                b_scale = (np.float32(x_scale) * w_scale).astype(np.float32)
                bq = np.round(b / b_scale.astype(np.float64))
                if np.abs(bq).max() >= 2**31 - 1:
                    sys.exit(f"{node.name}: bias does not fit int32 at scale input*weight")
                const(b_name + "__int32", bq.astype(np.int32))
                const(b_name + "__scale", b_scale)
                const(b_name + "__zero", np.zeros(b.shape[0], np.int32))
                nodes.append(helper.make_node("DequantizeLinear", [b_name + "__int32", b_name + "__scale", b_name + "__zero"],
                                              [b_name + "__dq"], name=b_name + "__DequantizeLinear", axis=0))
                node.input[2] = b_name + "__dq"
        # Outputs: a quantised tensor's producer writes a float tensor that only its QuantizeLinear reads.
        quantised_out = [o for o in node.output if o in qparams]
        for i, name in enumerate(node.output):
            if name in qparams:
                renamed[name] = name + "__f"
                node.output[i] = name + "__f"
        nodes.append(node)
        for name in quantised_out:
            scale_name, zero_name, _ = qparams[name]
            nodes.append(helper.make_node("QuantizeLinear", [renamed[name], scale_name, zero_name], [name + "__q"],
                                          name=name + "__QuantizeLinear"))
            if name in graph_outputs:
                nodes.append(helper.make_node("DequantizeLinear", [name + "__q", scale_name, zero_name], [name],
                                              name=name + "__DequantizeLinear_output"))

    # Float initializers that were replaced by their quantised forms are dropped.
    still_used = {i for n in nodes for i in n.input}
    kept = [init for init in graph.initializer if init.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    model.producer_name = "quantize_int8.py"
    model.doc_string = f"Static int8 QDQ quantisation of {os.path.basename(args.model)}: activations uint8 per tensor ({args.method}), weights int8 per channel"
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"method": args.method, "calibrationImages": calib.get("images"), "tensors": report}, f, indent=1)
    counts = defaultdict(int)
    for n in nodes:
        counts[n.op_type] += 1
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(json.dumps({"out": args.out, "sha256": digest, "quantizedTensors": len(tensors), "biasCorrected": len(corrected), "ops": dict(sorted(counts.items()))}))


def ops(args):
    model = onnx.load(args.model)
    counts = defaultdict(int)
    for n in model.graph.node:
        counts[(n.domain or "ai.onnx") + ":" + n.op_type] += 1
    print(json.dumps(dict(sorted(counts.items())), indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("instrument", help="step A: expose every tensor that needs a scale as a graph output")
    a.add_argument("model")
    a.add_argument("out")
    a.set_defaults(run=instrument)
    c = sub.add_parser("quantize", help="step C: write the QDQ model from ris-calibrate's ranges")
    c.add_argument("model")
    c.add_argument("ranges")
    c.add_argument("out")
    c.add_argument("--method", default="p99.999", help="pNN.NN, a percentile recorded by calibrate (default p99.999), or minmax")
    c.add_argument("--input-range", default="0,1", help="range of graph inputs (and their transposes); the contract says [0, 1]")
    c.add_argument("--keep-float", help="diagnostic: comma-separated activation tensors left unquantised")
    c.add_argument("--float-activations", action="store_true", help="diagnostic: quantise weights only")
    c.add_argument("--float-weights", action="store_true", help="diagnostic: quantise activations only")
    c.add_argument("--float-weight-nodes", help="diagnostic: comma-separated Conv nodes whose weights stay float")
    c.add_argument("--no-bias-correction", action="store_true", help="skip correcting biases for the mean weight rounding error")
    c.add_argument("--report", help="write the chosen range, scale and zero point of every tensor here")
    c.set_defaults(run=quantize)
    o = sub.add_parser("ops", help="count the ops of a model (e.g. ORT's optimised dump)")
    o.add_argument("model")
    o.set_defaults(run=ops)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
