#!/usr/bin/env python3
"""PyTorch autograd reference for `rlpkd grad` on a torchvision ResNet- or MobileNet-FPN export.

Builds a torchvision ResNet-FPN backbone (or MobileNetV3-FPN; random initialization, random non-zero FPN
biases and, for MobileNet, squeeze-excitation biases, frozen
batch-norm statistics calibrated on random images), exports it with tools/export_fpn.py's own `export`
(through a state_dict file, so the ONNX graph and the reference are the very same weights), writes a
random input and random targets as .npy, and computes with autograd, in float64 by default,

    L = sum over p2..p5 of mean((output - target)^2)

and dL/dp for every parameter (conv weights and FPN biases; FrozenBatchNorm2d has none).

ReLU and max-pool are not differentiable at their kinks. A float32 engine and a float64 reference can
land on different sides of a kink where an input is within rounding of it (a pre-activation ~1e-7 from
zero, two pooled values ~1e-7 apart); a single such element moves a weight gradient by ~1e-3 relative,
and PyTorch's own float32 autograd differs from its float64 autograd in the same way. `--decisions DIR`
therefore computes the reference on the engine's side of every kink: DIR holds the engine's ReLU outputs
(relu_000.npy, ... in graph order) and MaxPool indices (maxpool_000.npy, ...); the reference multiplies
each pre-activation by the engine's mask and gathers each pooled window at the engine's index. A decision
that differs from float64's anywhere but within `--kink-tolerance` of a kink is an error (the engine's
forward pass would be wrong), and how many differed is recorded.

Writes into --out-dir:
  model.onnx, weights.pt        the export (input `images`, outputs p2..p5, dynamic batch) and its weights
  inputs/images.npy             float32 [batch, 3, H, W]
  targets/<p>.npy               float32, the shape of output <p>
  <grads-dir>/<param>.npy       float32 gradient per parameter (torch names: dots only)
  manifest.json                 loss, per-output losses, parameter -> file, timings, decision statistics

Examples:
  python3 tools/torch_grad.py --arch resnet18 --opset 17 --height 72 --width 104 --batch 2 --out-dir /tmp/g
  rlpkd grad --model /tmp/g/model.onnx --input images=/tmp/g/inputs/images.npy \\
      --target p2=/tmp/g/targets/p2.npy ... --target p5=/tmp/g/targets/p5.npy --out /tmp/g/ours
  python3 tools/torch_grad.py --arch resnet18 --out-dir /tmp/g --reuse --decisions /tmp/g/decisions \\
      --grads-dir torch_grads_matched
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
    p = argparse.ArgumentParser(prog="torch_grad.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, help=" | ".join(export_fpn.ARCHS))
    p.add_argument("--opset", type=int, default=17, help="ONNX opset of the export, 13..17 (default 17)")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the input and the targets")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the autograd reference (default float64)")
    p.add_argument("--batch-norm", choices=("calibrated", "identity"), default="calibrated",
                   help="frozen batch-norm statistics: calibrated on random images (default) or torchvision's "
                        "fresh identity (a deep net's activations then grow without bound)")
    p.add_argument("--zero-bias", action="store_true",
                   help="keep torchvision's all-zero FPN biases (exported as one tied initializer)")
    p.add_argument("--out-dir", required=True, help="folder for the files (created if missing)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the export, weights, input and targets already in --out-dir")
    p.add_argument("--decisions", help="folder with the engine's relu_NNN.npy / maxpool_NNN.npy (see above)")
    p.add_argument("--kink-tolerance", type=float, default=1e-4,
                   help="largest distance from a kink, relative to the tensor's RMS, at which the engine may "
                        "decide differently from float64 (default 1e-4)")
    p.add_argument("--grads-dir", default="torch_grads", help="subfolder for the gradients (default torch_grads)")
    return p.parse_args(argv)


def save_npy(np, path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(tmp, path)


def residual_last_norms(model):
    """The batch norm closing each residual branch (BasicBlock.bn2, Bottleneck.bn3; the projection norm of
    a MobileNet InvertedResidual that has a skip connection)."""
    last = set()
    if not hasattr(model.body, "layer1"):
        for block in model.body.children():
            if getattr(block, "use_res_connect", False):
                last.add(block.block[-1][1])  # Conv2dNormActivation(conv, norm) without activation
        return last
    for layer in (model.body.layer1, model.body.layer2, model.body.layer3, model.body.layer4):
        for block in layer:
            last.add(block.bn3 if hasattr(block, "bn3") else block.bn2)
    return last


def randomize_body_biases(torch, model, generator):
    """Distinct non-zero biases for the body's biased convolutions (MobileNet's squeeze-excitation fc1/fc2,
    zero when fresh), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like the FPN's."""
    with torch.no_grad():
        for mod in model.body.modules():
            if isinstance(mod, torch.nn.Conv2d) and mod.bias is not None:
                fan_in = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                bound = 1.0 / fan_in ** 0.5
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=generator) * 2 * bound - bound)


def calibrate_batch_norm(torch, model, images, generator):
    """Gives every FrozenBatchNorm2d the statistics of its input on `images` and a random affine map.

    torchvision's fresh FrozenBatchNorm2d is the identity, so a deep random ResNet's activations grow
    without bound (ResNet-101: outputs ~1e4, loss ~1e9) and its gradient is ill-conditioned: PyTorch's
    float32 autograd then differs from its float64 autograd by more than 1e-3. Statistics taken layer by
    layer (each from the calibrated layers before it) keep activations O(1); the norm closing each
    residual branch gets a small scale (gamma in [0.05, 0.15]), as trained ResNets tend to have, so the
    residual stream does not amplify rounding either. The folded Mul/Add constants become distinct per
    channel and layer.
    """
    from torchvision.ops.misc import FrozenBatchNorm2d

    last = residual_last_norms(model)

    def pre_hook(module, inputs):
        x = inputs[0].detach().to(torch.float64)
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        # A floor relative to the layer's mean variance: a channel that is (nearly) constant on the
        # calibration images must not get a huge scale that amplifies rounding on other inputs.
        var = var + 0.1 * var.mean() + 1e-6
        n = mean.numel()
        module.running_mean.copy_(mean.to(module.running_mean.dtype))
        module.running_var.copy_(var.to(module.running_var.dtype))
        if module in last:
            module.weight.copy_(torch.rand(n, generator=generator) * 0.1 + 0.05)
        else:
            module.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.5)
        module.bias.copy_((torch.rand(n, generator=generator) - 0.5) * 0.2)

    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    handles = [m.register_forward_pre_hook(pre_hook) for m in norms]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return len(norms)


def build_and_export(args, out_dir):
    """Weights -> weights.pt -> export_fpn.export (which loads them strictly) -> the exported module."""
    import torch

    model_path = os.path.join(out_dir, "model.onnx")
    weights_path = os.path.join(out_dir, "weights.pt")
    export_fpn.import_torch()
    torch.manual_seed(args.seed)
    source = export_fpn.build_backbone(torch, export_fpn.normalize_arch(args.arch))
    gen = torch.Generator().manual_seed(args.seed + 1)
    if not args.zero_bias:
        export_fpn.randomize_fpn_biases(torch, source, gen)
        randomize_body_biases(torch, source, gen)
    calibrated = 0
    if args.batch_norm == "calibrated":
        source.fpn.extra_blocks = None
        calib = torch.randn(2, 3, args.height, args.width, generator=gen)
        calibrated = calibrate_batch_norm(torch, source, calib, gen)
    torch.save(source.state_dict(), weights_path)
    ns = argparse.Namespace(arch=args.arch, out=model_path, weights=weights_path, opset=args.opset,
                            height=args.height, width=args.width, batch=args.batch, p6=False, seed=args.seed,
                            random_bias=False, quiet=True)
    export_fpn.check_args(ns)
    model, _source, outputs, _example = export_fpn.export(ns)
    return model, outputs, calibrated


def load_exported(args, out_dir):
    """The module of an earlier run, rebuilt from weights.pt."""
    import torch

    ns = argparse.Namespace(arch=args.arch)
    arch = export_fpn.normalize_arch(ns.arch)
    model = export_fpn.build_backbone(torch, arch)
    export_fpn.apply_weights(model, export_fpn.load_state_dict(torch, os.path.join(out_dir, "weights.pt")),
                             os.path.join(out_dir, "weights.pt"))
    model.fpn.extra_blocks = None
    model.eval()
    return model, ["p2", "p3", "p4", "p5"]


class Decisions:
    """Routes every ReLU and max-pool of the reference through the engine's decisions (see the module doc)."""

    def __init__(self, torch, np, folder, tolerance):
        self.torch, self.np, self.tolerance = torch, np, tolerance
        names = sorted(os.listdir(folder))
        self.relu = [os.path.join(folder, f) for f in names if f.startswith("relu_") and f.endswith(".npy")]
        self.pool = [os.path.join(folder, f) for f in names if f.startswith("maxpool_") and f.endswith(".npy")]
        self.relu_calls = 0
        self.pool_calls = 0
        self.stats = {"relu_tensors": len(self.relu), "relu_elements": 0, "relu_flipped": 0,
                      "maxpool_tensors": len(self.pool), "maxpool_windows": 0, "maxpool_flipped": 0,
                      "largest_flip_margin": 0.0}

    def _flip(self, margin, what):
        self.stats["largest_flip_margin"] = max(self.stats["largest_flip_margin"], float(margin))
        if margin > self.tolerance:
            raise RuntimeError(f"{what}: the engine decided differently from float64 at a point {margin:.3g} "
                               f"(relative to RMS) from the kink, more than --kink-tolerance {self.tolerance}; "
                               "its forward pass disagrees with PyTorch there")

    def relu_hook(self, module, inputs, output):
        torch = self.torch
        k = self.relu_calls
        self.relu_calls += 1
        if k >= len(self.relu):
            raise RuntimeError(f"the reference calls ReLU more often than the {len(self.relu)} decisions given")
        a = inputs[0]
        y = torch.from_numpy(self.np.load(self.relu[k]))
        if tuple(y.shape) != tuple(a.shape):
            raise RuntimeError(f"ReLU call {k}: decision {os.path.basename(self.relu[k])} has shape "
                               f"{tuple(y.shape)}, the pre-activation {tuple(a.shape)} (graph order differs?)")
        rms = float(a.detach().pow(2).mean().sqrt()) or 1.0
        mask = y > 0
        flipped = mask != (a.detach() > 0)
        self.stats["relu_elements"] += a.numel()
        n = int(flipped.sum())
        if n:
            self.stats["relu_flipped"] += n
            self._flip(float(a.detach()[flipped].abs().max()) / rms, f"ReLU call {k}")
        if float((torch.relu(a.detach()) - y.to(a.dtype)).abs().max()) > 1e-2 * rms:
            raise RuntimeError(f"ReLU call {k}: the engine's output differs from the reference's by more than "
                               f"1e-2 RMS (graph order differs from the module's call order?)")
        return a * mask.to(a.dtype)

    def pool_hook(self, module, inputs, output):
        torch = self.torch
        k = self.pool_calls
        self.pool_calls += 1
        if k >= len(self.pool):
            raise RuntimeError(f"the reference max-pools more often than the {len(self.pool)} decisions given")
        x = inputs[0]
        n, c, h, w = x.shape
        idx = torch.from_numpy(self.np.load(self.pool[k])).to(torch.int64)
        if tuple(idx.shape) != tuple(output.shape):
            raise RuntimeError(f"max-pool {k}: indices {tuple(idx.shape)} vs output {tuple(output.shape)}")
        # onnxruntime's indices are flat over N*C*H*W; make them per plane.
        offsets = (torch.arange(n * c, dtype=torch.int64) * (h * w)).view(n, c, 1, 1)
        plane = idx - offsets
        if int(plane.min()) < 0 or int(plane.max()) >= h * w:
            raise RuntimeError(f"max-pool {k}: an index points outside its channel plane")
        y = x.flatten(2).gather(2, plane.flatten(2)).view_as(output)
        gap = (output.detach() - y.detach())  # >= 0; > 0 where the engine picked another element
        self.stats["maxpool_windows"] += output.numel()
        flipped = gap > 0
        m = int(flipped.sum())
        if m:
            self.stats["maxpool_flipped"] += m
            rms = float(x.detach().pow(2).mean().sqrt()) or 1.0
            self._flip(float(gap[flipped].max()) / rms, f"max-pool {k}")
        return y

    def attach(self, torch, model):
        for mod in model.modules():
            if isinstance(mod, torch.nn.ReLU):
                mod.inplace = False
                mod.register_forward_hook(self.relu_hook)
            elif isinstance(mod, torch.nn.MaxPool2d):
                mod.register_forward_hook(self.pool_hook)

    def finish(self):
        if self.relu_calls != len(self.relu) or self.pool_calls != len(self.pool):
            raise RuntimeError(f"the reference made {self.relu_calls} ReLU and {self.pool_calls} max-pool calls; "
                               f"the decisions cover {len(self.relu)} and {len(self.pool)}")


def run(args):
    export_fpn.import_torch()  # a clear error (with the apt command) when PyTorch is missing
    import numpy as np
    import torch

    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    t0 = time.time()
    if args.reuse:
        if not os.path.exists(manifest_path):
            raise export_fpn.ExportError(f"--reuse: '{out_dir}' holds no earlier run (manifest.json missing)",
                                         hint="run once without --reuse first")
        with open(manifest_path) as f:
            manifest = json.load(f)
        if export_fpn.normalize_arch(manifest["arch"]) != export_fpn.normalize_arch(args.arch):
            raise export_fpn.ExportError(f"--reuse: '{out_dir}' holds a {manifest['arch']} export, not {args.arch}")
        model, outputs = load_exported(args, out_dir)
        images = torch.from_numpy(np.load(os.path.join(out_dir, "inputs", "images.npy")))
        targets = {name: torch.from_numpy(np.load(os.path.join(out_dir, "targets", f"{name}.npy")))
                   for name in outputs}
    else:
        model, outputs, calibrated = build_and_export(args, out_dir)
        gen = torch.Generator().manual_seed(args.seed + 1000)
        images = torch.randn(args.batch, 3, args.height, args.width, generator=gen, dtype=torch.float32)
        with torch.no_grad():
            feats = model(images)
        # Targets near the outputs' scale, so every level's term matters.
        targets = {}
        for name, key in zip(outputs, feats.keys()):
            f = feats[key]
            targets[name] = (torch.randn(f.shape, generator=gen, dtype=torch.float32) * f.std()).contiguous()
        save_npy(np, os.path.join(out_dir, "inputs", "images.npy"), images.numpy())
        for name in outputs:
            save_npy(np, os.path.join(out_dir, "targets", f"{name}.npy"), targets[name].numpy())
        manifest = {
            "arch": args.arch, "opset": args.opset, "batch": args.batch, "height": args.height,
            "width": args.width, "seed": args.seed, "torch": torch.__version__, "batch_norm": args.batch_norm,
            "calibrated_batch_norms": calibrated, "model": "model.onnx", "weights": "weights.pt",
            "inputs": {"images": "inputs/images.npy"},
            "targets": {name: f"targets/{name}.npy" for name in outputs},
            "timings": {"export_s": round(time.time() - t0, 3)},
        }

    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    ref = copy.deepcopy(model).to(dtype)
    ref.eval()
    decisions = None
    if args.decisions:
        decisions = Decisions(torch, np, args.decisions, args.kink_tolerance)
        decisions.attach(torch, ref)
    for prm in ref.parameters():
        prm.requires_grad_(True)
        prm.grad = None
    t0 = time.time()
    res = ref(images.to(dtype))
    if decisions:
        decisions.finish()
    per_output = {}
    loss = None
    for name, key in zip(outputs, res.keys()):
        term = torch.mean((res[key] - targets[name].to(dtype)) ** 2)
        per_output[name] = float(term)
        loss = term if loss is None else loss + term
    loss.backward()
    grad_s = time.time() - t0

    files = {}
    for pname, prm in ref.named_parameters():
        if prm.grad is None:
            raise RuntimeError(f"parameter {pname} got no gradient")
        rel = f"{args.grads_dir}/{pname}.npy"
        save_npy(np, os.path.join(out_dir, rel), prm.grad.detach().to(torch.float32).numpy())
        files[pname] = rel
    manifest.setdefault("references", {})[args.grads_dir] = {
        "dtype": args.dtype, "loss": float(loss), "outputs": per_output, "parameters": files,
        "grad_s": round(grad_s, 3), "decisions": decisions.stats if decisions else None,
    }
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, manifest_path)
    return manifest, manifest["references"][args.grads_dir]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _manifest, ref = run(args)
    except export_fpn.ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    extra = ""
    if ref["decisions"]:
        d = ref["decisions"]
        extra = (f"; engine decisions: {d['relu_flipped']} of {d['relu_elements']} ReLU inputs and "
                 f"{d['maxpool_flipped']} of {d['maxpool_windows']} max-pool windows differ from float64 "
                 f"(all within {d['largest_flip_margin']:.2g} RMS of a kink)")
    print(f"wrote {args.out_dir}/{args.grads_dir}: {len(ref['parameters'])} gradients, loss {ref['loss']:.6g} "
          f"({args.dtype}, autograd {ref['grad_s']} s){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
