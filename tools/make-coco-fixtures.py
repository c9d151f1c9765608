#!/usr/bin/env python3
"""Writes the randomized COCO bbox fixtures that the COCOeval port is checked against.

    python3 tools/make-coco-fixtures.py __tests__/metrics/fixtures/coco

Standard library only, seeded (random.Random), so the files are reproducible. Each fixture is a ground truth
(`<name>.gt.json`) and a results file (`<name>.dt.json`) built to hit COCOeval's corner cases: crowd boxes,
ground truth in every area range (areas on the 32² and 96² boundaries too, and an `area` field that differs
from w·h as segment areas do), an `ignore` flag that COCOeval overwrites, empty images, non-contiguous and
unused category ids, images listed out of id order, more than 100 detections on one image, tied scores and
IoUs exactly on a threshold. The golden numbers beside them come from upstream cocoeval.py (see README.md).
"""
import json
import os
import random
import sys


def jitter_box(rng, box, amount):
    x, y, w, h = box
    dx, dy = rng.uniform(-amount, amount) * w, rng.uniform(-amount, amount) * h
    sw, sh = 1 + rng.uniform(-amount, amount), 1 + rng.uniform(-amount, amount)
    return [round(x + dx, 2), round(y + dy, 2), round(max(w * sw, 0.5), 2), round(max(h * sh, 0.5), 2)]


def random_box(rng, size, side):
    w = rng.uniform(0.5, 1.5) * side
    h = side * side / w
    w, h = min(w, size - 1), min(h, size - 1)
    return [round(rng.uniform(0, size - w), 2), round(rng.uniform(0, size - h), 2), round(w, 2), round(h, 2)]


def make_fixture(seed, n_images, n_cats, crowd_rate, tie_levels, big_image_dets, gt_id_start):
    rng = random.Random(seed)
    cat_ids = sorted(rng.sample(range(1, 91), n_cats))
    categories = [{'id': c, 'name': f'cat{c}'} for c in cat_ids]
    unused_cat = cat_ids[-1]  # listed, never annotated: its AP is -1 and it drops out of the means
    img_ids = rng.sample(range(1, 10000), n_images)
    size = 640
    images = [{'id': i, 'width': size, 'height': size, 'file_name': f'{i}.jpg'} for i in img_ids]
    rng.shuffle(images)
    anns, dets = [], []
    next_id = gt_id_start
    for n, img in enumerate(sorted(img_ids)):
        kind = n % 5
        n_gt = 0 if kind == 0 else rng.randint(1, 8)
        gts = []
        for _ in range(n_gt):
            side = rng.choice([rng.uniform(8, 31), rng.uniform(33, 95), rng.uniform(97, 300), 32, 96])
            box = random_box(rng, size, side)
            crowd = 1 if rng.random() < crowd_rate else 0
            if side in (32, 96) and not crowd:
                area = float(side * side)  # exactly on a range boundary: counts in both neighbours
            else:
                area = round(box[2] * box[3] * rng.uniform(0.55, 1.0), 3)
            ann = {'id': next_id, 'image_id': img, 'category_id': rng.choice(cat_ids[:-1]),
                   'bbox': box, 'area': area, 'iscrowd': crowd}
            if rng.random() < 0.1:
                ann['ignore'] = 1  # COCOeval replaces this with iscrowd
            next_id += 1
            anns.append(ann)
            gts.append(ann)
        for g in gts:  # true positives of varying quality, some duplicated
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
                dets.append({'image_id': img, 'category_id': g['category_id'] if rng.random() < 0.9
                             else rng.choice(cat_ids), 'bbox': jitter_box(rng, g['bbox'], rng.choice([0.02, 0.1, 0.3])),
                             'score': rng.random()})
        if kind != 1:  # false positives, also on empty images and the unused category
            for _ in range(rng.randint(0, 6)):
                dets.append({'image_id': img, 'category_id': rng.choice(cat_ids), 'bbox':
                             random_box(rng, size, rng.uniform(5, 250)), 'score': rng.random() * 0.7})
    if big_image_dets:  # one (image, category) with more than 100 detections: maxDets truncation matters
        img = sorted(img_ids)[1]
        on_img = [a for a in anns if a['image_id'] == img]
        cat = max(cat_ids[:-1], key=lambda c: sum(a['category_id'] == c for a in on_img))
        gts = [a for a in on_img if a['category_id'] == cat]
        for k in range(big_image_dets):
            g = gts[k % len(gts)] if gts and k % 3 else None
            box = jitter_box(rng, g['bbox'], 0.15) if g else random_box(rng, size, rng.uniform(10, 200))
            dets.append({'image_id': img, 'category_id': cat, 'bbox': box, 'score': rng.random()})
    for d in dets:
        d['score'] = round(d['score'] * tie_levels) / tie_levels if tie_levels else round(d['score'], 6)
    rng.shuffle(dets)
    assert unused_cat not in {a['category_id'] for a in anns}
    return {'images': images, 'annotations': anns, 'categories': categories}, dets


def threshold_fixture():
    """IoUs exactly 0.5 and 0.75, a crowd match, a duplicate, a gt with id 0, tied scores and tied IoUs."""
    images = [{'id': 7, 'width': 100, 'height': 100}, {'id': 3, 'width': 100, 'height': 100}]
    anns = [
        {'id': 0, 'image_id': 3, 'category_id': 5, 'bbox': [0, 0, 20, 10], 'area': 200, 'iscrowd': 0},
        {'id': 1, 'image_id': 3, 'category_id': 5, 'bbox': [40, 40, 20, 20], 'area': 400, 'iscrowd': 0},
        {'id': 2, 'image_id': 7, 'category_id': 5, 'bbox': [0, 0, 20, 10], 'area': 200, 'iscrowd': 0},
        {'id': 3, 'image_id': 7, 'category_id': 5, 'bbox': [50, 50, 40, 40], 'area': 1600, 'iscrowd': 1},
        {'id': 4, 'image_id': 7, 'category_id': 9, 'bbox': [10, 10, 40, 30], 'area': 1200, 'iscrowd': 0},
        {'id': 5, 'image_id': 3, 'category_id': 14, 'bbox': [70, 0, 20, 20], 'area': 400, 'iscrowd': 0},
        {'id': 6, 'image_id': 3, 'category_id': 14, 'bbox': [72, 0, 20, 20], 'area': 400, 'iscrowd': 0},
    ]
    dets = [
        {'image_id': 3, 'category_id': 5, 'bbox': [0, 0, 10, 10], 'score': 0.9},   # IoU 0.5 with gt id 0
        {'image_id': 3, 'category_id': 5, 'bbox': [40, 40, 20, 15], 'score': 0.8},  # IoU 0.75
        {'image_id': 7, 'category_id': 5, 'bbox': [0, 0, 15, 10], 'score': 0.8},   # IoU 0.75
        {'image_id': 7, 'category_id': 5, 'bbox': [0, 0, 20, 10], 'score': 0.8},   # exact, tied score
        {'image_id': 7, 'category_id': 5, 'bbox': [60, 60, 10, 10], 'score': 0.95},  # inside the crowd
        {'image_id': 7, 'category_id': 5, 'bbox': [55, 55, 10, 10], 'score': 0.7},   # inside the crowd again
        {'image_id': 7, 'category_id': 9, 'bbox': [10, 10, 40, 30], 'score': 0.5},
        {'image_id': 7, 'category_id': 9, 'bbox': [12, 10, 40, 30], 'score': 0.5},  # duplicate: a false positive
        {'image_id': 3, 'category_id': 14, 'bbox': [71, 0, 20, 20], 'score': 0.9},  # equal IoU with ids 5 and 6
        {'image_id': 3, 'category_id': 14, 'bbox': [68, 0, 20, 20], 'score': 0.4},  # IoU .82 with 5, .67 with 6
    ]
    categories = [{'id': 5, 'name': 'five'}, {'id': 9, 'name': 'nine'}, {'id': 12, 'name': 'twelve'}, {'id': 14, 'name': 'fourteen'}]
    return {'images': images, 'annotations': anns, 'categories': categories}, dets


FIXTURES = {
    'thresholds': threshold_fixture,
    'random-a': lambda: make_fixture(1, 12, 5, 0.1, 0, 0, 1),
    'random-b': lambda: make_fixture(2, 20, 8, 0.2, 10, 0, 1000),
    'random-c': lambda: make_fixture(3, 10, 4, 0.15, 4, 130, 0),
    'random-d': lambda: make_fixture(4, 25, 10, 0.05, 20, 0, 50),
    'random-e': lambda: make_fixture(5, 15, 6, 0.3, 0, 105, 7),
    'random-f': lambda: make_fixture(6, 8, 3, 0.25, 3, 0, 1),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else '__tests__/metrics/fixtures/coco'
    os.makedirs(out, exist_ok=True)
    for name, make in FIXTURES.items():
        gt, dt = make()
        for suffix, data in (('gt', gt), ('dt', dt)):
            with open(os.path.join(out, f'{name}.{suffix}.json'), 'w') as f:
                json.dump(data, f, separators=(',', ':'))
                f.write('\n')


if __name__ == '__main__':
    main()
