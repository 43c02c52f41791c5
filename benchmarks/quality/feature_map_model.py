#!/usr/bin/python3
"""Writes a copy of an ONNX model whose last 7x7 feature map (`out_relu`, [N, 1280, 7, 7]) is a graph output beside
`embedding`, for `ris-bench colour-regions` (region vectors pooled from the same inference). Needs Debian's python3-onnx.

usage: feature_map_model.py IN.onnx OUT.onnx
"""
import sys

import onnx
from onnx import TensorProto, helper

source, target = sys.argv[1], sys.argv[2]
model = onnx.load(source)
model.graph.output.append(helper.make_tensor_value_info("out_relu", TensorProto.FLOAT, ["N", 1280, 7, 7]))
onnx.checker.check_model(model)
onnx.save(model, target)
