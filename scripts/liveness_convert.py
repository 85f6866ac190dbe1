#!/usr/bin/env python3
"""Convert an upstream MiniFASNet liveness checkpoint (.pth) to ONNX, without torch.

    python liveness_convert.py IN.pth OUT.onnx

Needs only numpy and onnx (pinned by scripts/python-env.sh).

Input format
------------
The checkpoints of minivision-ai/Silent-Face-Anti-Spoofing (resources/anti_spoof_models/ at
commit b6d5f04ad78778917853b25c778acef6d5626d15) are bare `state_dict`s of a model wrapped in
`nn.DataParallel` (every key starts with `module.`). Two torch.save layouts exist, both read here:

* legacy (torch < 1.6; what upstream ships): a run of pickles in one file -- magic number,
  protocol version, sys_info, the state dict itself, then the list of storage keys; after that,
  for each key in that order, an int64 element count and the storage's raw little-endian bytes.
* zip (torch >= 1.6): `<archive>/data.pkl` holds the state dict; each storage is the raw
  file `<archive>/data/<key>` (byte order in `<archive>/byteorder`, little if absent).

In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)` and a storage as a persistent id `('storage', torch.FloatStorage, key, ...)`.
The unpickler below maps just those globals (plus `collections.OrderedDict`) and refuses
any other, so a checkpoint cannot run code. Tensors become numpy arrays with the saved
shape, strides and offset. `num_batches_tracked` (int64) entries are read and ignored.

Architecture (upstream src/model_lib/MiniFASNet.py)
---------------------------------------------------
Conv_block = Conv2d(bias=False) + BatchNorm2d + PReLU(per channel); Linear_block = the same
without PReLU. Depth_Wise = Conv_block 1x1 -> depthwise Conv_block 3x3 (stride s) ->
Linear_block 1x1 ("project"), plus the input when it is a residual block. The network:

    conv1 (3x3, stride 2) -> conv2_dw (3x3 depthwise)
    -> conv_23 (Depth_Wise, stride 2) -> conv_3 (residual Depth_Wise x N)
    -> conv_34 (stride 2) -> conv_4 (residual x N) -> conv_45 (stride 2) -> conv_5 (residual x N)
    -> conv_6_sep (Conv_block 1x1 to 512) -> conv_6_dw (Linear_block, depthwise k x k, no pad)
    -> flatten -> linear (512->128, no bias) -> BatchNorm1d -> [dropout] -> prob (128->3, no bias)

The SE variants (MiniFASNetV1SE/V2SE) give the last block of each residual stage a
squeeze-excitation on the projected branch before the residual add:
x * sigmoid(bn2(fc2(relu(bn1(fc1(avgpool(x))))))), fc1/fc2 being 1x1 convs without bias.
V1 and V2 differ only in channel widths, which are read from the weight shapes, so the
variant is inferred from the keys: any `se_module` key means SE. The file name (upstream
names them like `2.7_80x80_MiniFASNetV2.pth`) supplies the variant's name and the input size;
without it the input side is 16 x the conv_6_dw kernel. Strides, paddings and the SE
reduction are not stored in a state dict; they are fixed by the upstream code, as above.

Output graph
------------
ONNX opset 11 (IR 6), input `input` float32 [1,3,H,W] (BGR, raw 0..255, NCHW), output `logits`
float32 [1,3] (raw logits; softmax class 1 = live). Every BatchNorm (eps 1e-5, PyTorch's
default, which upstream keeps) is folded into the conv or linear before it; dropout is dropped.
Ops used: Conv, PRelu, Add, GlobalAveragePool, Relu, Sigmoid, Mul, Flatten, MatMul.
The output is deterministic: the same .pth gives the same bytes.
"""

import argparse
import collections
import io
import os
import pickle
import re
import struct
import sys
import time
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-5
OPSET = 11
IR_VERSION = 6
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class name -> numpy dtype of one element
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


# ----------------------------------------------------------------------------------------
# Reading a .pth without torch
# ----------------------------------------------------------------------------------------


class StorageType:
    """Stands in for a torch.*Storage class: only its element dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class StorageRef:
    """A storage named by a persistent id; its bytes are attached once they are read."""

    def __init__(self, key, storage_type, numel):
        self.key = key
        self.dtype = storage_type.dtype
        self.numel = numel
        self.data = None  # numpy 1-D array of self.dtype, set by attach()

    def attach(self, raw, byteorder="little"):
        dtype = self.dtype.newbyteorder("<" if byteorder == "little" else ">")
        if len(raw) < self.numel * dtype.itemsize:
            raise ValueError(f"storage {self.key}: {len(raw)} bytes, need {self.numel * dtype.itemsize}")
        self.data = np.frombuffer(raw, dtype=dtype, count=self.numel).astype(self.dtype)


class TensorRef:
    """A tensor waiting for its storage's bytes (the legacy format stores them after the pickle)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)

    def to_numpy(self):
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} was never read")
        if not self.size:  # 0-d, e.g. num_batches_tracked
            return np.array(data[self.offset])
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or last >= data.size:
            raise ValueError(f"tensor out of bounds of storage {self.storage.key}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * item for s in self.stride]
        )
        return np.array(view, copy=True)  # contiguous, owns its memory


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    # _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a torch checkpoint into TensorRefs, allowing only the globals a state dict uses."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages  # key -> StorageRef, shared across the pickles of one file

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"checkpoint uses {module}.{name}, which a state dict should not")

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view_metadata); zip: the first five
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4 checkpoints) are not supported")
        if key not in self.storages:
            self.storages[key] = StorageRef(key, storage_type, numel)
        return self.storages[key]


def _read_legacy(f):
    storages = {}
    if CheckpointUnpickler(f, storages).load() != LEGACY_MAGIC:
        raise ValueError("not a torch checkpoint (bad magic number)")
    CheckpointUnpickler(f, storages).load()  # protocol version
    sys_info = CheckpointUnpickler(f, storages).load()
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian legacy checkpoints are not supported")
    obj = CheckpointUnpickler(f, storages).load()
    keys = CheckpointUnpickler(f, storages).load()
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * storage.dtype.itemsize
        storage.numel = numel
        storage.attach(f.read(nbytes))
    return obj


def _read_zip(path):
    storages = {}
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the zip, found {len(pkl)}")
        root = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if root + "byteorder" in names:
            byteorder = z.read(root + "byteorder").decode().strip()
        obj = CheckpointUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        for key, storage in storages.items():
            storage.attach(z.read(f"{root}data/{key}"), byteorder)
    return obj


def _materialise(obj):
    if isinstance(obj, TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def load_state_dict(path):
    """Read a .pth state dict (legacy or zip layout) as an OrderedDict of numpy arrays."""
    if zipfile.is_zipfile(path):
        obj = _read_zip(path)
    else:
        with open(path, "rb") as f:
            obj = _read_legacy(f)
    obj = _materialise(obj)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return strip_prefixes(obj)


def strip_prefixes(state):
    """Drop DataParallel's `module.` (and a wrapper's `model.`) so keys start at `conv1.`."""
    out = collections.OrderedDict()
    for key, value in state.items():
        for prefix in ("module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    if "conv1.conv.weight" not in out:
        raise ValueError("not a MiniFASNet state dict: no conv1.conv.weight")
    return out


# ----------------------------------------------------------------------------------------
# Architecture detection
# ----------------------------------------------------------------------------------------


def detect_architecture(state, path):
    """Return (name, use_se, input_hw) from the state dict keys and, if it helps, the file name."""
    use_se = any(".se_module." in k for k in state)
    kernel = state["conv_6_dw.conv.weight"].shape[2:]
    base = os.path.basename(path)
    m = re.search(r"MiniFASNetV(\d)(SE)?", base)
    if m:
        if bool(m.group(2)) != use_se:
            raise ValueError(f"{base}: name says {m.group(0)} but the keys say SE={use_se}")
        name = m.group(0)
    else:
        name = "MiniFASNet" + ("SE" if use_se else "")
    m = re.search(r"(\d+)x(\d+)", base)
    if m:
        hw = (int(m.group(1)), int(m.group(2)))
        # upstream: conv_6_dw kernel = ((h + 15) // 16, (w + 15) // 16)
        if tuple((v + 15) // 16 for v in hw) != tuple(kernel):
            raise ValueError(f"{base}: input {hw} does not fit conv_6_dw kernel {tuple(kernel)}")
    else:
        hw = (kernel[0] * 16, kernel[1] * 16)
    return name, use_se, hw


def residual_blocks(state, stage):
    """Indices of the Depth_Wise blocks in a residual stage (e.g. conv_3.model.0 ..)."""
    pat = re.compile(re.escape(stage) + r"\.model\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state for m in [pat.match(k)] if m})


# ----------------------------------------------------------------------------------------
# Graph building
# ----------------------------------------------------------------------------------------


def fold_bn(weight, bias, state, bn):
    """Fold BatchNorm `bn` (keys bn.weight/bias/running_mean/running_var) into a conv/linear."""
    gamma = state[bn + ".weight"].astype(np.float64)
    beta = state[bn + ".bias"].astype(np.float64)
    mean = state[bn + ".running_mean"].astype(np.float64)
    var = state[bn + ".running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    b = beta - mean * scale
    if bias is not None:
        b = b + bias.astype(np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


class Graph:
    """Accumulates ONNX nodes and initializers; tracks each tensor's channel count."""

    def __init__(self, input_channels):
        self.nodes, self.initializers = [], []
        self.channels = {INPUT_NAME: input_channels}

    def _tensor_name(self, module):
        return module.replace(".", "_")

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, output, channels, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        self.channels[output] = channels
        return output

    def conv(self, x, module, weight, bias, stride, pad):
        out_c, in_per_group, kh, kw = weight.shape
        groups = self.channels[x] // in_per_group
        name = self._tensor_name(module)
        return self.node(
            "Conv",
            [x, self.const(name + "_w", weight), self.const(name + "_b", bias)],
            name,
            out_c,
            group=groups,
            kernel_shape=[kh, kw],
            pads=[pad, pad, pad, pad],
            strides=[stride, stride],
        )

    def prelu(self, x, module, slope):
        name = self._tensor_name(module)
        slope = slope.astype(np.float32).reshape(-1, 1, 1)  # broadcast over H, W
        return self.node("PRelu", [x, self.const(name + "_slope", slope)], name, self.channels[x])

    def unary(self, op, x, module):
        return self.node(op, [x], self._tensor_name(module), self.channels[x])

    def binary(self, op, a, b, module):
        return self.node(op, [a, b], self._tensor_name(module), self.channels[a])


def conv_block(g, state, x, module, stride, pad, act=True):
    """Conv_block (conv + BN + PReLU) or, with act=False, Linear_block (conv + BN)."""
    w, b = fold_bn(state[module + ".conv.weight"], state.get(module + ".conv.bias"), state, module + ".bn")
    y = g.conv(x, module + ".conv", w, b, stride, pad)
    if act:
        y = g.prelu(y, module + ".prelu", state[module + ".prelu.weight"])
    return y


def se_module(g, state, x, module):
    """Squeeze-excitation: x * sigmoid(bn2(fc2(relu(bn1(fc1(avgpool(x)))))))."""
    s = g.unary("GlobalAveragePool", x, module + ".pool")
    for fc, bn in (("fc1", "bn1"), ("fc2", "bn2")):
        w, b = fold_bn(state[f"{module}.{fc}.weight"], state.get(f"{module}.{fc}.bias"), state, f"{module}.{bn}")
        s = g.conv(s, f"{module}.{fc}", w, b, 1, 0)
        s = g.unary("Relu" if fc == "fc1" else "Sigmoid", s, f"{module}.{fc}.act")
    return g.binary("Mul", x, s, module + ".scale")


def depth_wise(g, state, x, module, stride, residual):
    """Depth_Wise / Depth_Wise_SE: 1x1 expand, 3x3 depthwise, 1x1 project [, SE] [, + x]."""
    y = conv_block(g, state, x, module + ".conv", 1, 0)
    y = conv_block(g, state, y, module + ".conv_dw", stride, 1)
    y = conv_block(g, state, y, module + ".project", 1, 0, act=False)
    if module + ".se_module.fc1.weight" in state:
        y = se_module(g, state, y, module + ".se_module")
    if residual:
        y = g.binary("Add", x, y, module + ".add")
    return y


def head(g, state, x):
    """flatten -> linear (+ BatchNorm1d folded in) -> prob, as MatMuls with transposed weights."""
    x = g.node("Flatten", [x], "flatten", g.channels[x], axis=1)
    w, b = fold_bn(state["linear.weight"], state.get("linear.bias"), state, "bn")
    x = g.node("MatMul", [x, g.const("linear_wT", w.T)], "linear", w.shape[0])
    x = g.node("Add", [x, g.const("linear_b", b)], "linear_bn", w.shape[0])
    prob = state["prob.weight"].astype(np.float32)
    y = g.node("MatMul", [x, g.const("prob_wT", prob.T)], "prob" if "prob.bias" in state else OUTPUT_NAME, prob.shape[0])
    if "prob.bias" in state:
        y = g.node("Add", [y, g.const("prob_b", state["prob.bias"].astype(np.float32))], OUTPUT_NAME, prob.shape[0])
    return y


def build_graph(state):
    """Walk the upstream MiniFASNet layout and return the Graph (output tensor = OUTPUT_NAME)."""
    g = Graph(input_channels=state["conv1.conv.weight"].shape[1])
    x = conv_block(g, state, INPUT_NAME, "conv1", 2, 1)
    x = conv_block(g, state, x, "conv2_dw", 1, 1)
    for down, stage in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        x = depth_wise(g, state, x, down, 2, residual=False)
        for i in residual_blocks(state, stage):
            x = depth_wise(g, state, x, f"{stage}.model.{i}", 1, residual=True)
    x = conv_block(g, state, x, "conv_6_sep", 1, 0)
    x = conv_block(g, state, x, "conv_6_dw", 1, 0, act=False)
    head(g, state, x)
    return g


class TrackedState(dict):
    """A state dict that remembers which keys were read, to catch weights the layout ignored."""

    def __init__(self, *args):
        super().__init__(*args)
        self.used = set()

    def __getitem__(self, key):
        self.used.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            return self[key]
        return default

    def unused(self):
        return [k for k in self if k not in self.used]


def make_model(state, name, input_hw, doc):
    g = build_graph(state)
    n_classes = state["prob.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, g.channels[INPUT_NAME], *input_hw])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, n_classes])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="visage liveness_convert.py",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(src, dst):
    """Convert src (.pth) to dst (.onnx); returns a short description of what was built."""
    state = load_state_dict(src)
    name, use_se, hw = detect_architecture(state, src)
    state = TrackedState((k, v) for k, v in state.items() if not k.endswith(".num_batches_tracked"))
    doc = (
        f"{name} from {os.path.basename(src)} (Silent-Face-Anti-Spoofing); BatchNorm folded (eps {BN_EPS}); "
        f"input BGR 0..255 NCHW {hw[0]}x{hw[1]}; output raw logits, softmax class 1 = live"
    )
    model = make_model(state, name, hw, doc)
    if state.unused():
        raise ValueError(f"weights not used by the {name} layout: {state.unused()[:5]}")
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, dst)
    n_params = sum(int(v.size) for k, v in state.items() if ".running_" not in k)
    return f"{name} (SE={use_se}), input {hw[0]}x{hw[1]}, {n_params} params, {len(model.graph.node)} nodes"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="upstream MiniFASNet state dict (.pth)")
    ap.add_argument("dst", help="ONNX file to write")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        desc = convert(args.src, args.dst)
    except (OSError, ValueError, pickle.UnpicklingError) as e:
        sys.exit(f"liveness_convert: {args.src}: {e}")
    print(f"{args.dst}: {desc}; {time.perf_counter() - t0:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
