#!/usr/bin/env python3
"""Prove scripts/liveness_convert.py exact against the mirrored reference ONNX conversions.

    python test_liveness_convert.py [MODELS_DIR] [--fixtures DIR]

MODELS_DIR holds the upstream MiniFASNet checkpoints (*.pth) and, beside each, the reference
conversion (same name, .onnx). For each pair this converts the .pth into a temporary directory
and checks, with ONNX Runtime, that:
  * the input/output names and shapes equal the reference's;
  * converting twice gives the same bytes;
  * on random 0..255 inputs and on 80x80 BGR versions of the fixture images (whole image
    resized, and a centre square crop resized), the softmax class-1 ("live") probability is
    within 1e-4 of the reference's (the max logit difference is reported too).
It also re-saves the first checkpoint in torch's zip layout (one shared storage, offsets,
non-contiguous strides; written without torch) and checks that it converts to the same bytes.
Exits non-zero on any failure; the last line reads "liveness-convert: N passed, N failed".
"""

import argparse
import collections
import contextlib
import io
import os
import pickle
import sys
import tempfile
import time
import types
import zipfile

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import liveness_convert  # noqa: E402

TOLERANCE = 1e-4  # on the softmax class-1 probability
N_RANDOM = 8
FIXTURES = ("image_F1.jpg", "image_F2.jpg", "image_T1.jpg")


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_inputs(hw, seed=20240611):
    rng = np.random.default_rng(seed)
    for i in range(N_RANDOM):
        yield f"random#{i}", rng.uniform(0, 255, (1, 3, *hw)).astype(np.float32)


def image_inputs(fixtures_dir, hw):
    """The fixture images as BGR float32 NCHW: whole image resized, and a centre square crop."""
    for name in FIXTURES:
        img = cv2.imread(os.path.join(fixtures_dir, name), cv2.IMREAD_COLOR)  # applies EXIF orientation
        if img is None:
            raise FileNotFoundError(os.path.join(fixtures_dir, name))
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crops = {"whole": img, "centre": img[top : top + side, left : left + side]}
        for kind, crop in crops.items():
            small = cv2.resize(crop, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
            yield f"{name}:{kind}", small.transpose(2, 0, 1)[None].astype(np.float32)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def io_signature(sess):
    sig = lambda args: [(a.name, a.type, list(a.shape)) for a in args]  # noqa: E731
    return sig(sess.get_inputs()), sig(sess.get_outputs())


def compare(converted, reference, inputs):
    """Max |logit diff| and max |class-1 probability diff| over inputs, plus per-image live scores."""
    input_name = reference.get_inputs()[0].name
    max_logit = max_prob = 0.0
    scores = {}
    for label, x in inputs:
        got = converted.run(None, {input_name: x})[0]
        want = reference.run(None, {input_name: x})[0]
        max_logit = max(max_logit, float(np.abs(got - want).max()))
        p_got, p_want = softmax(got.astype(np.float64))[0, 1], softmax(want.astype(np.float64))[0, 1]
        max_prob = max(max_prob, abs(p_got - p_want))
        if not label.startswith("random"):
            scores[label] = p_got
    return max_logit, max_prob, scores


# ---------------------------------------------------------------------------------------
# A zip-layout checkpoint written without torch, to exercise that reader
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_torch_globals():
    """Temporarily provide torch.FloatStorage etc. so pickle can name them as globals."""
    torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch_mod, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch_mod._utils = utils_mod
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch_mod, "torch._utils": utils_mod})
    try:
        yield torch_mod, utils_mod
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_zip_checkpoint(state, path):
    """Save `state` (numpy arrays) as torch >= 1.6 would: archive/data.pkl + archive/data/<key>.

    All tensors of one dtype share one storage at increasing offsets, and each 4-D weight is
    stored transposed (non-contiguous strides), so the reader's offset/stride logic is tested.
    Keys get DataParallel's `module.` prefix, as upstream's have.
    """
    buffers = {np.dtype(np.float32): [], np.dtype(np.int64): []}
    storage_names = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}
    storage_keys = {np.dtype(np.float32): "0", np.dtype(np.int64): "1"}
    layout = collections.OrderedDict()  # key -> (dtype, offset, size, stride)
    for key, arr in state.items():
        chunks = buffers[arr.dtype]
        offset = sum(c.size for c in chunks)
        if arr.ndim == 4:  # store (I, O, kh, kw) contiguous; view it as (O, I, kh, kw)
            o, i, kh, kw = arr.shape
            chunks.append(np.ascontiguousarray(arr.transpose(1, 0, 2, 3)).ravel())
            stride = (kh * kw, o * kh * kw, kw, 1)
        else:
            chunks.append(np.ascontiguousarray(arr).ravel())
            stride = tuple(s // arr.itemsize for s in np.ascontiguousarray(arr).strides)
        layout["module." + key] = (arr.dtype, offset, arr.shape, stride)

    with fake_torch_globals() as (torch_mod, utils_mod):

        class Storage:
            def __init__(self, dtype):
                self.dtype = dtype

        class Tensor:
            def __init__(self, storage, offset, size, stride):
                self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, Storage):
                    numel = sum(c.size for c in buffers[obj.dtype])
                    cls = getattr(torch_mod, storage_names[obj.dtype])
                    return ("storage", cls, storage_keys[obj.dtype], "cpu", numel)
                return None

            def reducer_override(self, obj):
                if isinstance(obj, Tensor):
                    return utils_mod._rebuild_tensor_v2, obj.args
                return NotImplemented

        storages = {dt: Storage(dt) for dt in buffers}
        tensors = collections.OrderedDict(
            (k, Tensor(storages[dt], off, size, stride)) for k, (dt, off, size, stride) in layout.items()
        )
        pkl = io.BytesIO()
        Pickler(pkl, protocol=2).dump(tensors)

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
        z.writestr("archive/byteorder", "little")
        for dt, chunks in buffers.items():
            if chunks:
                z.writestr(f"archive/data/{storage_keys[dt]}", np.concatenate(chunks).astype(dt.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")


# ---------------------------------------------------------------------------------------


def check_model(pth, fixtures_dir, tmp):
    """Convert one checkpoint and compare with its reference; returns (ok, report lines)."""
    base = os.path.splitext(os.path.basename(pth))[0]
    reference_path = os.path.join(os.path.dirname(pth), base + ".onnx")
    out1, out2 = os.path.join(tmp, base + ".onnx"), os.path.join(tmp, base + ".again.onnx")
    t0 = time.perf_counter()
    desc = liveness_convert.convert(pth, out1)
    seconds = time.perf_counter() - t0
    liveness_convert.convert(pth, out2)
    failures = []
    with open(out1, "rb") as a, open(out2, "rb") as b:
        if a.read() != b.read():
            failures.append("two conversions differ")

    converted, reference = session(out1), session(reference_path)
    if io_signature(converted) != io_signature(reference):
        failures.append(f"I/O {io_signature(converted)} != reference {io_signature(reference)}")
    hw = tuple(reference.get_inputs()[0].shape[2:])
    inputs = list(random_inputs(hw)) + list(image_inputs(fixtures_dir, hw))
    max_logit, max_prob, scores = compare(converted, reference, inputs)
    if not max_prob <= TOLERANCE:
        failures.append(f"class-1 probability differs by {max_prob:.3g} > {TOLERANCE}")

    lines = [
        f"{base}: {desc}; converted in {seconds:.2f} s",
        f"  {len(inputs)} inputs: max |logit diff| {max_logit:.3g}, max |p(live) diff| {max_prob:.3g}",
        "  p(live) " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()),
    ]
    lines += [f"  FAIL: {f}" for f in failures]
    return not failures, lines


def check_zip_layout(pth, tmp):
    """The same weights re-saved in the zip layout must convert to the same bytes."""
    base = os.path.basename(pth)
    legacy_out = os.path.join(tmp, "legacy.onnx")
    liveness_convert.convert(pth, legacy_out)
    os.makedirs(os.path.join(tmp, "zip"), exist_ok=True)
    zip_pth = os.path.join(tmp, "zip", base)  # same file name: it goes into the doc string
    write_zip_checkpoint(liveness_convert.load_state_dict(pth), zip_pth)
    zip_out = os.path.join(tmp, "zip.onnx")
    liveness_convert.convert(zip_pth, zip_out)
    with open(legacy_out, "rb") as a, open(zip_out, "rb") as b:
        same = a.read() == b.read()
    line = f"zip layout ({base} re-saved, shared storage + strides): " + ("same ONNX bytes" if same else "FAIL: ONNX differs")
    return same, [line]


def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="?", default=os.path.join(root, "..", "shared", "models", "liveness"))
    ap.add_argument("--fixtures", help="fixture images (default MODELS/../../fixtures/liveness)")
    args = ap.parse_args(argv)
    fixtures = args.fixtures or os.path.join(args.models, "..", "..", "fixtures", "liveness")

    pths = sorted(
        os.path.join(args.models, f)
        for f in os.listdir(args.models)
        if f.endswith(".pth") and os.path.exists(os.path.join(args.models, f[:-4] + ".onnx"))
    )
    if not pths:
        print(f"liveness-convert: no .pth with a reference .onnx in {args.models}", file=sys.stderr)
        return 1
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="liveness-convert-") as tmp:
        checks = [lambda p=p: check_model(p, fixtures, tmp) for p in pths]
        checks.append(lambda: check_zip_layout(pths[0], tmp))
        for check in checks:
            try:
                ok, lines = check()
            except Exception as e:  # a crash is a failure, reported like one
                ok, lines = False, [f"FAIL: {type(e).__name__}: {e}"]
            print("\n".join(lines))
            passed, failed = passed + ok, failed + (not ok)
    print(f"liveness-convert: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
