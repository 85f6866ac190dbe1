#!/usr/bin/env python3
"""OpenCV's own YuNet + SFace pipeline on an LFW View-2 pairs file, as `visage eval lfw` runs
it: every image of the pairs once, on all cores (one process per core, one OpenCV thread
each), then the same k-fold protocol (each fold's threshold chosen on the other folds).

The subject of an LFW image is the face whose box centre is nearest the image centre (as in
visage); an image without a face is embedded from its central square, resized to 112x112.
Detection runs at the image's own size, with one retry inside a 125 px border when nothing
is found: the way OpenCV's samples use FaceDetectorYN.

Prints "key value" lines: images, no_face, seconds (embedding every image, from process
start), images_per_s, fold accuracies, accuracy.

    "$(scripts/python-env.sh | tail -n 1)" scripts/opencv_lfw.py --models models \
        --dataset ../shared/datasets/lfw --pairs pairs.txt
"""

import argparse
import os
import sys
from multiprocessing import Pool
from time import perf_counter

START = perf_counter()

import cv2  # noqa: E402  (timed from process start, like the Rust binary)
import numpy as np  # noqa: E402

DETECTOR = "face_detection_yunet_2023mar.onnx"
RECOGNIZER = "face_recognition_sface_2021dec.onnx"
BORDER = 125

_models = {}


def _init(models):
    cv2.setNumThreads(1)
    _models["det"] = cv2.FaceDetectorYN.create(os.path.join(models, DETECTOR), "", (320, 320))
    _models["rec"] = cv2.FaceRecognizerSF.create(os.path.join(models, RECOGNIZER), "")


def _detect(img):
    h, w = img.shape[:2]
    _models["det"].setInputSize((w, h))
    return _models["det"].detect(img)[1]


def _embed(path):
    img = cv2.imread(path)
    if img is None:
        raise SystemExit(f"opencv_lfw: cannot read {path}")
    h, w = img.shape[:2]
    used, faces, shift = img, _detect(img), 0
    if faces is None:
        used = cv2.copyMakeBorder(img, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT)
        faces, shift = _detect(used), BORDER
    if faces is None:
        side = min(w, h) // 2
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = cv2.resize(img[y0:y0 + side, x0:x0 + side], (112, 112))
        return path, False, _models["rec"].feature(crop).flatten()
    cx, cy = w / 2 + shift, h / 2 + shift
    centres = np.hypot(faces[:, 0] + faces[:, 2] / 2 - cx, faces[:, 1] + faces[:, 3] / 2 - cy)
    face = faces[int(np.argmin(centres))]
    crop = _models["rec"].alignCrop(used, face)
    return path, True, _models["rec"].feature(crop).flatten()


def read_pairs(path, root):
    with open(path) as f:
        folds, per_fold = map(int, f.readline().split())
        pairs = []
        for line in f:
            p = line.split()
            if len(p) == 3:
                pairs.append(((p[0], int(p[1])), (p[0], int(p[2])), True))
            elif len(p) == 4:
                pairs.append(((p[0], int(p[1])), (p[2], int(p[3])), False))
    def image(name_number):
        name, number = name_number
        return os.path.join(root, name, f"{name}_{number:04d}.jpg")
    return folds, [(image(a), image(b), same) for a, b, same in pairs]


def best_threshold(scored):
    scored = sorted(scored)
    correct = sum(1 for _, same in scored if same)
    best = (correct, scored[0][0] - 1e-6)
    for i, (score, same) in enumerate(scored):
        correct += -1 if same else 1
        nxt = scored[i + 1][0] if i + 1 < len(scored) else score + 1e-6
        if correct > best[0] and nxt > score:
            best = (correct, (score + nxt) / 2)
    return best[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--scores", help="write each pair's images, same, cosine (tab-separated)")
    args = ap.parse_args()

    folds, pairs = read_pairs(args.pairs, args.dataset)
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    with Pool(args.jobs, initializer=_init, initargs=(args.models,)) as pool:
        results = pool.map(_embed, images, chunksize=16)
    seconds = perf_counter() - START
    features = {path: f / np.linalg.norm(f) for path, _, f in results}
    no_face = sum(1 for _, found, _ in results if not found)
    scored = [(float(features[a] @ features[b]), same) for a, b, same in pairs]
    if args.scores:
        with open(args.scores, "w") as out:
            for (a, b, same), (score, _) in zip(pairs, scored):
                out.write(f"{a}\t{b}\t{str(same).lower()}\t{score:.6f}\n")

    print(f"opencv {cv2.__version__}")
    print(f"images {len(images)}")
    print(f"no_face {no_face}")
    print(f"seconds {seconds:.2f}")
    print(f"images_per_s {len(images) / seconds:.1f}")
    per_fold = len(scored) // folds
    accuracies = []
    for k in range(folds):
        this = scored[k * per_fold:(k + 1) * per_fold]
        others = scored[:k * per_fold] + scored[(k + 1) * per_fold:]
        t = best_threshold(others)
        acc = 100.0 * sum(1 for s, same in this if (s > t) == same) / len(this)
        accuracies.append(acc)
        print(f"fold {k + 1} threshold {t:.4f} accuracy {acc:.2f}")
    print(f"accuracy {np.mean(accuracies):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
