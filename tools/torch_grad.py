#!/usr/bin/env python3
"""PyTorch autograd reference for `rlpkd grad` on a torchvision ResNet-FPN export.

Builds the torchvision ResNet-FPN backbone exactly as tools/export_fpn.py does (it calls that tool's
`export`, so the ONNX file is exported from the very module whose gradients are taken: no re-seeding,
no weight files), writes a random input and random targets as .npy, and computes with autograd

    L = sum over p2..p5 of mean((output - target)^2)

and dL/dp for every parameter of the module (conv weights and FPN biases; FrozenBatchNorm has none), by
default in float64 from the same float32 values, so the reference's own rounding is negligible.

Writes into --out-dir:
  model.onnx                    the export (input `images`, outputs p2..p5, dynamic batch)
  inputs/images.npy             float32 [batch, 3, H, W]
  targets/<p>.npy               float32, the shape of output <p>
  torch_grads/<param>.npy       float32 gradient per parameter (torch names: dots only)
  manifest.json                 {loss, outputs: {p: loss}, parameters: {name: file}, inputs, targets, ...}

Example:
  python3 tools/torch_grad.py --arch resnet18 --opset 17 --height 72 --width 104 --batch 2 --out-dir /tmp/g
  rlpkd grad --model /tmp/g/model.onnx --input images=/tmp/g/inputs/images.npy \
      --target p2=/tmp/g/targets/p2.npy ... --out /tmp/g/ours
"""
import argparse
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_fpn  # noqa: E402  (tools/export_fpn.py, next to this file)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="torch_grad.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", required=True, help="resnet18 | resnet34 | resnet50 | resnet101")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset of the export, 13..17 (default 17)")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the input and the targets")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the autograd reference (default float64)")
    p.add_argument("--zero-bias", action="store_true",
                   help="keep torchvision's all-zero FPN biases (exported as one tied initializer)")
    p.add_argument("--out-dir", required=True, help="folder for the files (created if missing)")
    return p.parse_args(argv)


def save_npy(np, path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def run(args):
    import numpy as np
    import torch

    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "model.onnx")
    ns = argparse.Namespace(arch=args.arch, out=model_path, weights=None, opset=args.opset, height=args.height,
                            width=args.width, batch=args.batch, p6=False, seed=args.seed,
                            random_bias=not args.zero_bias, quiet=True)
    export_fpn.check_args(ns)
    t0 = time.time()
    model, _source, outputs, _example = export_fpn.export(ns)
    export_s = time.time() - t0

    gen = torch.Generator().manual_seed(args.seed + 1000)
    images = torch.randn(args.batch, 3, args.height, args.width, generator=gen, dtype=torch.float32)
    with torch.no_grad():
        feats = model(images)
    # Targets near the outputs' scale, so every level's term matters.
    targets = {}
    for name, key in zip(outputs, feats.keys()):
        f = feats[key]
        targets[name] = (torch.randn(f.shape, generator=gen, dtype=torch.float32) * f.std()).contiguous()

    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    ref = copy.deepcopy(model).to(dtype)
    ref.eval()
    for prm in ref.parameters():
        prm.requires_grad_(True)
        prm.grad = None
    t0 = time.time()
    res = ref(images.to(dtype))
    per_output = {}
    loss = None
    for name, key in zip(outputs, res.keys()):
        term = torch.mean((res[key] - targets[name].to(dtype)) ** 2)
        per_output[name] = float(term)
        loss = term if loss is None else loss + term
    loss.backward()
    grad_s = time.time() - t0

    manifest = {
        "arch": args.arch, "opset": args.opset, "batch": args.batch, "height": args.height, "width": args.width,
        "seed": args.seed, "dtype": args.dtype, "torch": torch.__version__,
        "loss": float(loss), "outputs": per_output, "model": "model.onnx",
        "inputs": {"images": "inputs/images.npy"},
        "targets": {name: f"targets/{name}.npy" for name in outputs},
        "parameters": {}, "timings": {"export_s": round(export_s, 3), "grad_s": round(grad_s, 3)},
    }
    save_npy(np, os.path.join(out_dir, "inputs", "images.npy"), images.numpy())
    for name in outputs:
        save_npy(np, os.path.join(out_dir, "targets", f"{name}.npy"), targets[name].numpy())
    for pname, prm in ref.named_parameters():
        if prm.grad is None:
            raise RuntimeError(f"parameter {pname} got no gradient")
        rel = f"torch_grads/{pname}.npy"
        save_npy(np, os.path.join(out_dir, rel), prm.grad.detach().to(torch.float32).numpy())
        manifest["parameters"][pname] = rel
    tmp = os.path.join(out_dir, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "manifest.json"))
    return manifest


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        manifest = run(args)
    except export_fpn.ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir}: {len(manifest['parameters'])} gradients, loss {manifest['loss']:.6g} "
          f"({args.dtype}; export {manifest['timings']['export_s']} s, autograd {manifest['timings']['grad_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
