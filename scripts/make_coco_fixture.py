#!/usr/bin/env python3
"""Writes crates/datasets/tests/fixtures/coco_eval.json, the reference for the detection metrics
of `datasets::detection_metrics` (tests in crates/datasets/tests/detection_metrics.rs).

    python3 -m pip install pycocotools numpy     # pycocotools 2.0.x
    python3 scripts/make_coco_fixture.py         # from any directory

Run once; the JSON is committed and the Rust tests need no Python. The problem is random but
seeded (SEED), so a rerun with the same pycocotools/numpy writes the same file.

The problem: 12 images, 4 categories, 68 ground-truth boxes (4 `iscrowd` regions; small,
medium and large objects by the COCO area ranges, with the `area` field -- a mask area in real
COCO -- set below the box area for most boxes, and a few areas exactly on the 32^2 and 96^2
boundaries) and 149 detections: jittered true positives over a spread of IoUs, near-duplicates,
misses, wrong categories, background false positives, detections inside crowd regions,
detections of a category that has no ground truth, scores on a 0.05 grid (many ties, within
and across images), one image/category pair with more than 10 detections (so maxDets 1/10/100
differ), an image without any ground truth, and hand-placed boxes whose IoU is exactly 0.5 and
0.75 (the thresholds are inclusive in both references).

Expected values written:
  * `coco_stats`: the 12 numbers of pycocotools `COCOeval(gt, dt, 'bbox')` after
    evaluate/accumulate/summarize with default parameters (-1 where undefined);
  * `coco_category_ap`: per category, the mean of `eval['precision'][:, :, k, 0, 2]` over
    entries > -1 (AP at IoU .50:.95, area all, maxDets 100), -1 where undefined;
  * `coco_iou_thresholds`, `coco_recall_thresholds`: `Params('bbox').iouThrs` / `.recThrs`, so
    the Rust side can check it builds bit-identical thresholds (np.linspace rounding matters:
    e.g. recThrs[35] is 0.35000000000000003, not 0.35);
  * `voc_ap`, `voc_map`: PASCAL VOC all-point AP at IoU 0.5 per category and their mean over
    the categories with at least one non-crowd ground truth, from `voc_eval` below, an
    independent implementation of the PASCAL VOC devkit's VOCevaldet.m / VOCap.m (VOC2010+):
      - detections of a category are sorted by descending score with a stable sort (ties keep
        their input order, as MATLAB's sort does);
      - a detection takes the ground truth of its image and category with the largest IoU
        (first one on ties); it is a true positive when that IoU >= 0.5 (the devkit's
        `ovmax >= VOCopts.minoverlap`; the common Python port uses `>`) and that ground truth
        is not yet taken, a false positive otherwise;
      - `iscrowd` ground truth plays the devkit's "difficult" role: not counted in the
        positives, and a detection whose best match it is counts as neither TP nor FP;
      - IoU on continuous xywh boxes with plain areas (COCO's convention; the devkit's +1 on
        inclusive pixel corners is the same thing after converting its corners to xywh);
      - AP = area under the monotone precision envelope, summed where recall changes.
"""
import contextlib
import importlib.metadata
import io
import json
import os
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

SEED = 20240611
NUM_IMAGES = 12
CATEGORIES = [1, 2, 3, 4]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "datasets", "tests", "fixtures",
                   "coco_eval.json")


def r1(v):
    """Round to one decimal (keeps the JSON short and the values exact in decimal)."""
    return float(round(float(v), 1))


def make_problem(rng):
    images = list(range(1, NUM_IMAGES + 1))
    gts = []
    dets = []

    def add_gt(image, cat, bbox, area=None, crowd=0):
        if area is None:
            # A mask inside the box: 55-100 % of the box area, sometimes the full box.
            frac = 1.0 if rng.random() < 0.3 else rng.uniform(0.55, 1.0)
            area = r1(bbox[2] * bbox[3] * frac)
        gts.append({"id": len(gts) + 1, "image_id": image, "category_id": cat, "bbox": [r1(v) for v in bbox],
                    "area": float(area), "iscrowd": crowd})

    def score():
        # A 0.05 grid: many exact ties.
        return float(round(rng.integers(1, 20) * 0.05, 2))

    def add_det(image, cat, bbox, s=None):
        dets.append({"image_id": image, "category_id": cat, "bbox": [r1(max(v, 0.0)) if i >= 2 else r1(v)
                                                                      for i, v in enumerate(bbox)],
                     "score": score() if s is None else s})

    def random_box(kind):
        lo, hi = {"small": (6, 30), "medium": (34, 90), "large": (100, 260)}[kind]
        w = rng.uniform(lo, hi)
        h = w * rng.uniform(0.6, 1.6)
        if kind == "small":
            h = min(h, 31.0)
        x = rng.uniform(0, 640 - w)
        y = rng.uniform(0, 480 - h)
        return [x, y, w, h]

    def jitter(b, scale):
        x, y, w, h = b
        return [x + rng.normal(0, scale) * w, y + rng.normal(0, scale) * h, w * np.exp(rng.normal(0, scale)),
                h * np.exp(rng.normal(0, scale))]

    # Random objects on images 1..11 (image 12 has no ground truth at all).
    for image in images[:11]:
        for _ in range(rng.integers(3, 6)):
            kind = rng.choice(["small", "medium", "large"], p=[0.35, 0.4, 0.25])
            add_gt(image, int(rng.choice(CATEGORIES)), random_box(kind))

    # Crowd regions (large), with detections inside them.
    for image, cat in [(2, 1), (5, 3), (8, 2), (10, 4)]:
        x, y = rng.uniform(0, 300), rng.uniform(0, 200)
        box = [x, y, rng.uniform(150, 300), rng.uniform(120, 250)]
        add_gt(image, cat, box, crowd=1)
        for _ in range(rng.integers(1, 4)):
            w, h = rng.uniform(10, 60), rng.uniform(10, 60)
            add_det(image, cat, [box[0] + rng.uniform(0, box[2] - w), box[1] + rng.uniform(0, box[3] - h), w, h])

    # Many objects of one category on image 3: 12 ground truths, at least 14 detections on the pair.
    for _ in range(12):
        add_gt(3, 2, random_box(rng.choice(["small", "medium"])))

    # Boundary areas: exactly 32^2 and 96^2 (both ranges are inclusive at both ends).
    add_gt(4, 3, [200.0, 150.0, 32.0, 32.0], area=1024.0)
    add_gt(6, 1, [50.0, 60.0, 96.0, 96.0], area=9216.0)
    add_gt(9, 4, [300.0, 300.0, 40.0, 30.0], area=1024.0)

    # Exact IoU boundary cases on image 11: IoU exactly 0.5 and exactly 0.75 (only candidates).
    add_gt(11, 2, [400.0, 100.0, 40.0, 40.0], area=1600.0)
    add_det(11, 2, [400.0, 100.0, 40.0, 20.0], 0.6)  # IoU 800 / 1600 = 0.5
    add_gt(11, 3, [100.0, 300.0, 40.0, 40.0], area=1600.0)
    add_det(11, 3, [100.0, 300.0, 40.0, 30.0], 0.7)  # IoU 1200 / 1600 = 0.75

    # Detections for every non-crowd ground truth not placed by hand.
    for g in list(gts):
        if g["iscrowd"] or g["image_id"] == 11 and g["bbox"][0] in (400.0, 100.0):
            continue
        b = g["bbox"]
        u = rng.random()
        if u < 0.15 and (g["image_id"], g["category_id"]) != (3, 2):
            continue  # a miss
        scale = rng.choice([0.02, 0.06, 0.12, 0.25])
        add_det(g["image_id"], g["category_id"], jitter(b, scale))
        if rng.random() < 0.4:
            add_det(g["image_id"], g["category_id"], jitter(b, 0.05))  # near-duplicate
        if rng.random() < 0.25:
            add_det(g["image_id"], g["category_id"], jitter(b, 0.3))  # poorly localised
        if rng.random() < 0.12:
            other = int(rng.choice([c for c in CATEGORIES if c != g["category_id"]]))
            add_det(g["image_id"], other, jitter(b, 0.03))  # right place, wrong category

    # Extra detections on the crowded pair (image 3, category 2) to exceed 10.
    pair = [d for d in dets if d["image_id"] == 3 and d["category_id"] == 2]
    while len(pair) < 14:
        add_det(3, 2, random_box("medium"))
        pair.append(dets[-1])

    # Background false positives, some on the image without ground truth.
    for _ in range(40):
        image = int(rng.choice(images))
        add_det(image, int(rng.choice(CATEGORIES)), random_box(rng.choice(["small", "medium", "large"])))
    # Detections of a category without ground truth (ignored by both evaluations).
    add_det(4, 9, random_box("medium"))
    add_det(12, 9, random_box("small"))
    # Unmatched detections with box areas exactly on the boundaries.
    add_det(7, 2, [10.0, 10.0, 32.0, 32.0])
    add_det(7, 2, [300.0, 10.0, 96.0, 96.0])

    # Shuffle the detection order (the evaluations sort it; ties keep the shuffled order).
    order = rng.permutation(len(dets))
    dets = [dets[i] for i in order]
    return images, gts, dets


def coco_eval(images, gts, dets):
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in images], "categories": [{"id": c} for c in CATEGORIES],
                  "annotations": [dict(g) for g in gts]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([dict(d) for d in dets])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]
    category_ap = {}
    for k, cat in enumerate(ev.params.catIds):
        s = precision[:, :, k, 0, 2]
        category_ap[str(cat)] = float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0
    return ev, [float(v) for v in ev.stats], category_ap


def iou(a, b):
    """Plain-area IoU of two xywh boxes (COCO's convention)."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def voc_eval(gts, dets, category, threshold=0.5):
    """PASCAL VOC devkit semantics (see the module docstring). Returns None without positives."""
    per_image = {}
    for g in gts:
        if g["category_id"] == category:
            per_image.setdefault(g["image_id"], []).append({"bbox": g["bbox"], "difficult": bool(g["iscrowd"]),
                                                            "taken": False})
    npos = sum(1 for objs in per_image.values() for o in objs if not o["difficult"])
    if npos == 0:
        return None
    mine = sorted([d for d in dets if d["category_id"] == category], key=lambda d: -d["score"])  # stable
    tp = []
    fp = []
    for d in mine:
        objs = per_image.get(d["image_id"], [])
        best, jbest = -np.inf, None
        for j, o in enumerate(objs):
            ov = iou(d["bbox"], o["bbox"])
            if ov > best:
                best, jbest = ov, j
        if jbest is not None and best >= threshold:
            o = objs[jbest]
            if o["difficult"]:
                tp.append(0)
                fp.append(0)
            elif not o["taken"]:
                o["taken"] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        else:
            tp.append(0)
            fp.append(1)
    tp_sum = np.cumsum(tp).astype(float)
    fp_sum = np.cumsum(fp).astype(float)
    rec = tp_sum / npos
    prec = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def check_problem(gts, dets, stats):
    """The fixture exercises what it claims to."""
    pairs = {}
    for d in dets:
        pairs[(d["image_id"], d["category_id"])] = pairs.get((d["image_id"], d["category_id"]), 0) + 1
    assert max(pairs.values()) > 10, pairs
    assert sum(g["iscrowd"] for g in gts) >= 3
    areas = [g["area"] for g in gts if not g["iscrowd"]]
    assert sum(a < 32 ** 2 for a in areas) >= 5 and sum(a > 96 ** 2 for a in areas) >= 5
    assert sum(32 ** 2 <= a <= 96 ** 2 for a in areas) >= 5
    scores = [d["score"] for d in dets]
    assert len(scores) - len(set(scores)) > 50
    assert 50 <= len(gts) <= 75 and 120 <= len(dets) <= 180, (len(gts), len(dets))
    assert stats[6] < stats[7] < stats[8], stats  # AR1 < AR10 < AR100
    assert all(s > 0 for s in stats), stats
    # The hand-placed boundary cases on image 11 are the only candidates of their detections.
    for cat, x, want in [(2, 400.0, 0.5), (3, 100.0, 0.75)]:
        det = next(d for d in dets if d["image_id"] == 11 and d["category_id"] == cat and d["bbox"][0] == x)
        ious = [iou(det["bbox"], g["bbox"]) for g in gts if g["image_id"] == 11 and g["category_id"] == cat]
        assert sorted(ious)[-1] == want and sum(v > 0 for v in ious) == 1, ious


def main():
    rng = np.random.default_rng(SEED)
    images, gts, dets = make_problem(rng)
    ev, stats, category_ap = coco_eval(images, gts, dets)
    check_problem(gts, dets, stats)
    voc = {}
    for cat in CATEGORIES:
        ap = voc_eval(gts, dets, cat)
        if ap is not None:
            voc[str(cat)] = ap
    voc_map = float(np.mean(list(voc.values())))

    def lines(items):
        return "[\n" + ",\n".join("    " + json.dumps(i, separators=(",", ":")) for i in items) + "\n  ]"

    expected = {
        "coco_stats": stats,
        "coco_stat_names": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
        "coco_category_ap": category_ap,
        "voc_ap": voc,
        "voc_map": voc_map,
        "coco_iou_thresholds": [float(v) for v in ev.params.iouThrs],
        "coco_recall_thresholds": [float(v) for v in ev.params.recThrs],
    }
    text = ("{\n"
            f'  "generator": "scripts/make_coco_fixture.py, seed {SEED}, pycocotools '
            f'{importlib.metadata.version("pycocotools")}, numpy {np.__version__}",\n'
            f'  "images": {json.dumps(images)},\n'
            f'  "categories": {json.dumps(CATEGORIES)},\n'
            f'  "annotations": {lines(gts)},\n'
            f'  "detections": {lines(dets)},\n'
            '  "expected": {\n' + ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in expected.items())
            + "\n  }\n"
            "}\n")
    json.loads(text)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}: {len(images)} images, {len(gts)} ground truths "
          f"({sum(g['iscrowd'] for g in gts)} crowd), {len(dets)} detections, {len(text)} bytes")
    print("COCO stats:", " ".join(f"{s:.4f}" for s in stats))
    print("VOC AP:", voc, "mAP", voc_map)
    return 0


if __name__ == "__main__":
    sys.exit(main())
