#!/usr/bin/env python3
"""OpenCV baseline for visage: time OpenCV's own YuNet + SFace pipeline.

Runs the per-image pipeline the way OpenCV users write it -- cv2.imread,
FaceDetectorYN (input size = image size, one retry with a 125 px border when
no face is found), largest face, FaceRecognizerSF.alignCrop and .feature --
on the same images and ONNX models as the Rust server, so the two can be
compared. Each file is run once to warm up, then timed --repeat times.

Prints a machine-parsable summary (one "key value..." line each) to stdout;
--embeddings writes "path<TAB>128 L2-normalised floats" for cross-checking.

Set up the interpreter with scripts/python-env.sh, e.g.
    "$(scripts/python-env.sh)" scripts/opencv_baseline.py --models models --threads 1 img/*.jpg
"""

import argparse
import os
import sys
from time import perf_counter

import cv2
import numpy as np

DETECTOR = "face_detection_yunet_2023mar.onnx"
RECOGNIZER = "face_recognition_sface_2021dec.onnx"
BORDER = 125
STAGES = ("decode", "detect", "align", "embed", "total")


def detect(detector, img):
    """Detect faces at the image's own size; returns (image used, faces or None)."""
    h, w = img.shape[:2]
    detector.setInputSize((w, h))
    return img, detector.detect(img)[1]


def run_once(detector, recognizer, path):
    """One full pipeline run; returns (per-stage seconds, feature or None)."""
    t0 = perf_counter()
    img = cv2.imread(path)
    t1 = perf_counter()
    if img is None:
        raise SystemExit(f"opencv_baseline: cannot read {path}")
    img, faces = detect(detector, img)
    if faces is None:
        padded = cv2.copyMakeBorder(img, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT)
        img, faces = detect(detector, padded)
    t2 = perf_counter()
    times = {"decode": t1 - t0, "detect": t2 - t1}
    feature = None
    if faces is not None:
        face = faces[np.argmax(faces[:, 2] * faces[:, 3])]
        crop = recognizer.alignCrop(img, face)
        t3 = perf_counter()
        feature = recognizer.feature(crop)
        t4 = perf_counter()
        times.update(align=t3 - t2, embed=t4 - t3)
    times["total"] = perf_counter() - t0
    return times, feature


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help=f"dir with {DETECTOR} and {RECOGNIZER}")
    ap.add_argument("--threads", type=int, help="cv2.setNumThreads(N)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per file (default 3)")
    ap.add_argument("--embeddings", metavar="OUT.tsv", help="write path and feature per file")
    ap.add_argument("files", nargs="+", metavar="FILE")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    detector = cv2.FaceDetectorYN.create(
        os.path.join(args.models, DETECTOR), "", (320, 320), 0.9, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(os.path.join(args.models, RECOGNIZER), "")

    samples = {stage: [] for stage in STAGES}
    missing = []
    features = []
    for path in args.files:
        _, feature = run_once(detector, recognizer, path)  # warm-up
        if feature is None:
            missing.append(path)
        else:
            v = feature.ravel().astype(np.float64)
            features.append((path, v / np.linalg.norm(v)))
        for _ in range(args.repeat):
            times, _ = run_once(detector, recognizer, path)
            for stage, t in times.items():
                samples[stage].append(t * 1000.0)

    for path in missing:
        print(f"opencv_baseline: no face in {path}", file=sys.stderr)
    if args.embeddings:
        with open(args.embeddings, "w") as out:
            for path, v in features:
                out.write(path + "\t" + "\t".join(f"{x:.7g}" for x in v) + "\n")

    print("opencv_version", cv2.__version__)
    print("images", len(args.files))
    print("faces_missing", len(missing))
    for stage in STAGES:
        ms = samples[stage] or [float("nan")]
        p50, p95 = np.percentile(ms, [50, 95])
        print(f"stage {stage} p50_ms {p50:.3f} p95_ms {p95:.3f}")
    total = samples["total"]
    print(f"mean_total_ms {np.mean(total):.3f}")
    print(f"images_per_s {len(total) / (sum(total) / 1000.0):.3f}")


if __name__ == "__main__":
    main()
