#!/usr/bin/env python3
"""Export a torchvision ResNet-FPN backbone to ONNX for rl-pyramidkd.

The graph is what torchvision's ``resnet_fpn_backbone`` gives under ``torch.onnx.export``: frozen
batch-norm folded to Mul/Add constants, nearest Resize with sizes from Shape ops, PyTorch parameter names
(``body.layer1.0.conv1.weight``, ``fpn.inner_blocks.0.0.bias``, ...). Input ``images`` [batch, 3, H, W]
with a dynamic batch axis; outputs ``p2``..``p5`` (strides 4/8/16/32) and, with ``--p6``, torchvision's
``pool`` level as ``p6`` (stride 64).

Works with torch >= 1.13 / torchvision >= 0.14 (Debian bookworm's python3-torch, python3-torchvision).

Examples:
  python3 tools/export_fpn.py --arch resnet101 --out onnx-graphs/teacher.onnx
  python3 tools/export_fpn.py --arch resnet50 --weights r50_fpn.pth --height 512 --width 640 --out s.onnx

Note: with fresh (random) initialization the eight FPN biases are all zero and torch.onnx.export stores
them as ONE initializer read through Identity nodes (identical frozen batch-norm constants too). rlpkd
unties them when it trains; pass --random-bias to export distinct, non-zero biases instead.
"""
import argparse
import collections
import math
import os
import sys
import tempfile
import warnings


def _has_modules(names):
    import importlib.util
    return all(importlib.util.find_spec(n) is not None for n in names)


def _reexec_with_torch_python(needed=("torch", "torchvision", "onnx")):
    """Run this script under the first of $RLPKD_PYTHON, python3, /usr/bin/python3 that has PyTorch.

    The same order rlpkd's tests use (src/tools/python.ts): `python3` is often a pyenv or venv Python
    without torch while Debian's python3-torch lives in /usr/bin/python3. Returns only when this
    interpreter already has them, or none has (then import_torch() reports what is missing).
    """
    import shutil
    import subprocess
    if _has_modules(needed) or os.environ.get("RLPKD_EXPORT_REEXEC") == "1":
        return
    here = os.path.realpath(sys.executable)
    probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(n) is None for n in sys.argv[1:]))"
    for cand in (os.environ.get("RLPKD_PYTHON"), "python3", "/usr/bin/python3"):
        exe = shutil.which(cand) if cand else None
        if not exe or os.path.realpath(exe) == here:
            continue
        try:
            ok = subprocess.run([exe, "-c", probe, *needed], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            if "--quiet" not in sys.argv:
                print(f"note: {sys.executable} has no {'/'.join(needed)}; running under {exe}", file=sys.stderr)
            os.environ["RLPKD_EXPORT_REEXEC"] = "1"
            os.execv(exe, [exe, os.path.abspath(__file__), *sys.argv[1:]])


if __name__ == "__main__":
    _reexec_with_torch_python()

# resnet_fpn_backbone's families, then mobilenet_backbone's (depthwise convs, Hardswish, squeeze-excitation).
RESNET_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2")
MOBILENET_ARCHS = ("mobilenet_v3_large", "mobilenet_v3_small")
ARCHS = RESNET_ARCHS + MOBILENET_ARCHS
# mobilenet_backbone's default (returned_layers [4, 5], as fasterrcnn_mobilenet_v3_large_fpn) gives two
# stride-32 maps and no finer level. Stages 1-3 (the first block at stride 4, 8, 16, as torchvision's
# stage_indices mark them) and 5 (the last layer, stride 32) make the P2..P5 pyramid the ResNets have.
MOBILENET_RETURNED_LAYERS = [1, 2, 3, 5]
MIN_OPSET, MAX_OPSET = 13, 17


class ExportError(Exception):
    """A problem the user can fix; printed as `error: ...` / `hint: ...`."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="export_fpn.py",
        description="Export a torchvision ResNet- or MobileNet-FPN backbone to ONNX (outputs p2..p5, dynamic batch).",
    )
    p.add_argument("--arch", required=True, help=" | ".join(ARCHS) + " (an '-fpn' suffix is accepted)")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--weights", help="state_dict file (.pth/.pt): a BackboneWithFPN (body.*, fpn.*), a detector "
                   "(backbone.body.*, backbone.fpn.*) or a plain classifier (ResNet conv1.*, layer1.*; MobileNet "
                   "features.*: FPN stays random)")
    p.add_argument("--opset", type=int, default=17, help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default 17)")
    p.add_argument("--height", type=int, default=224, help="input height (default 224)")
    p.add_argument("--width", type=int, default=224, help="input width (default 224)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the example input (the axis stays dynamic)")
    p.add_argument("--p6", action="store_true", help="also output torchvision's max-pooled 'pool' level as p6")
    p.add_argument("--seed", type=int, default=0, help="seed for random initialization and the example input")
    p.add_argument("--random-bias", action="store_true",
                   help="give the FPN convolutions distinct non-zero biases (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p.parse_args(argv)


def normalize_arch(arch):
    a = arch.strip().lower()
    if a.endswith("-fpn") or a.endswith("_fpn"):
        a = a[:-4]
    a = a.replace("-", "_")
    if a not in ARCHS:
        raise ExportError(f"unknown --arch '{arch}'", hint=f"use one of: {', '.join(ARCHS)}")
    return a


def check_args(args):
    args.arch = normalize_arch(args.arch)
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise ExportError(f"--opset {args.opset} is not supported",
                          hint=f"use {MIN_OPSET}..{MAX_OPSET} (torch 1.13 exports up to 17; rlpkd needs at least 13)")
    for name in ("height", "width"):
        v = getattr(args, name)
        if v < 32:
            raise ExportError(f"--{name} {v} is too small", hint="ResNet-FPN needs at least 32 pixels (stride 32)")
    if args.batch < 1:
        raise ExportError(f"--batch {args.batch} must be at least 1")
    if args.weights is not None:
        if not os.path.exists(args.weights):
            raise ExportError(f"weights file '{args.weights}' does not exist",
                              hint="check the path, or leave out --weights to export random initialization")
        if os.path.isdir(args.weights):
            raise ExportError(f"weights file '{args.weights}' is a folder", hint="pass the .pth/.pt file itself")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise ExportError(f"output folder '{out_dir}' does not exist", hint="create it first")


def import_torch():
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        raise ExportError(f"PyTorch is not importable: {e}",
                          hint="install torch and torchvision (Debian: apt install python3-torch python3-torchvision), "
                               "or set RLPKD_PYTHON to a Python that has them ($RLPKD_PYTHON, python3 and "
                               "/usr/bin/python3 were tried)")
    import torch
    import torchvision
    return torch, torchvision


def build_backbone(torch, arch):
    if arch in MOBILENET_ARCHS:
        return build_mobilenet_backbone(arch)
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    try:
        return resnet_fpn_backbone(backbone_name=arch, weights=None, trainable_layers=5)
    except TypeError:  # torchvision < 0.13 spells it pretrained=
        return resnet_fpn_backbone(arch, pretrained=False, trainable_layers=5)


def build_mobilenet_backbone(arch):
    """torchvision's mobilenet_backbone with FPN (FrozenBatchNorm2d, every layer trainable), levels p2..p5."""
    from torchvision.models.detection.backbone_utils import mobilenet_backbone
    common = dict(backbone_name=arch, fpn=True, trainable_layers=6, returned_layers=MOBILENET_RETURNED_LAYERS)
    try:
        return mobilenet_backbone(weights=None, **common)
    except TypeError:  # torchvision < 0.13 spells it pretrained=
        return mobilenet_backbone(pretrained=False, **common)


def load_state_dict(torch, path):
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many types for a bad file
        raise ExportError(f"weights file '{path}' could not be read by torch.load: {e}",
                          hint="pass a state_dict saved with torch.save(model.state_dict(), FILE)")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ExportError(f"weights file '{path}' does not hold a state_dict (got {type(obj).__name__})",
                          hint="save it with torch.save(model.state_dict(), FILE)")
    return obj


def apply_weights(model, state, path):
    keys = list(state.keys())
    if any(k.startswith("backbone.body.") or k.startswith("backbone.fpn.") for k in keys):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        target, what = model, "detector backbone"
    elif any(k.startswith("body.") or k.startswith("fpn.") for k in keys):
        target, what = model, "ResNet-FPN backbone"
    elif any(k.startswith("layer1.") or k.startswith("conv1.") for k in keys):
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        target, what = model.body, "ResNet classifier (FPN left at its initialization)"
    elif any(k.startswith("features.") for k in keys):
        # MobileNet classifier: the FPN body is its `features` (IntermediateLayerGetter keeps the indices).
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        target, what = model.body, "MobileNet classifier (FPN left at its initialization)"
    else:
        raise ExportError(f"weights file '{path}' has no FPN backbone keys (first keys: {', '.join(keys[:3])})",
                          hint="expected body.*/fpn.* (BackboneWithFPN), backbone.body.* (a detector), "
                               "conv1.*/layer1.* (a ResNet) or features.* (a MobileNet)")
    # FrozenBatchNorm2d has no num_batches_tracked; drop it rather than fail.
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (e.g. {'; '.join(wrong[:2])})")
        raise ExportError(f"weights file '{path}' does not fit this architecture: " + ", ".join(parts),
                          hint="check --arch (resnet18/34 use BasicBlock, resnet50/101 Bottleneck; a MobileNet "
                               f"detector's 2-level FPN does not fit the p2..p5 FPN of returned_layers "
                               f"{MOBILENET_RETURNED_LAYERS}: pass its backbone classifier weights instead)")
    target.load_state_dict(state, strict=True)
    return what


def randomize_fpn_biases(torch, model, generator):
    with torch.no_grad():
        for name, mod in model.fpn.named_modules():
            if isinstance(mod, torch.nn.Conv2d) and mod.bias is not None:
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                bound = 1.0 / math.sqrt(fan_in)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=generator) * 2 * bound - bound)


def export(args):
    torch, torchvision = import_torch()
    torch.manual_seed(args.seed)
    model = build_backbone(torch, args.arch)
    source = "random initialization (seed %d)" % args.seed
    if args.weights is not None:
        source = apply_weights(model, load_state_dict(torch, args.weights), args.weights) + f" from '{args.weights}'"
    gen = torch.Generator().manual_seed(args.seed + 1)
    if args.random_bias:
        randomize_fpn_biases(torch, model, gen)
    if not args.p6:
        model.fpn.extra_blocks = None  # FeaturePyramidNetwork skips the 'pool' level
    model.eval()
    outputs = ["p2", "p3", "p4", "p5"] + (["p6"] if args.p6 else [])
    example = torch.randn(args.batch, 3, args.height, args.width, generator=gen)
    dynamic = {name: {0: "batch"} for name in ["images"] + outputs}
    out = os.path.abspath(args.out)
    fd, tmp = tempfile.mkstemp(prefix=".export_fpn-", suffix=".onnx", dir=os.path.dirname(out))
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with torch.no_grad():
                torch.onnx.export(model, example, tmp, input_names=["images"], output_names=outputs,
                                  dynamic_axes=dynamic, opset_version=args.opset, do_constant_folding=True)
        # mkstemp creates the file 0600; give the export the usual permissions of a new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return model, source, outputs, example


def summarize(path, model, source, outputs, example):
    params = sum(p.numel() for p in model.parameters())
    lines = [f"wrote {path}: {source}", f"  trainable parameters: {params:,}"]
    try:
        import onnx
    except ImportError:
        lines.append("  (install python3-onnx for a graph summary and check)")
        return lines
    m = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(m)
    ops = collections.Counter(n.op_type for n in m.graph.node)
    lines.append("  ops: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))))
    import torch
    with torch.no_grad():
        res = model(example)
    shapes = [tuple(v.shape) for v in res.values()]
    lines.append("  outputs: " + ", ".join(f"{n} {list(s)}" for n, s in zip(outputs, shapes)))
    inits = {t.name for t in m.graph.initializer}
    tied = [n for n in m.graph.node if n.op_type == "Identity" and n.input[0] in inits
            and (n.input[0].startswith("body.") or n.input[0].startswith("fpn."))]
    if tied:
        lines.append(f"  note: {len(tied)} parameter(s) share an identical initializer through Identity nodes "
                     f"(e.g. {tied[0].output[0]} reads {tied[0].input[0]}); rlpkd unties them for training")
    return lines


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_args(args)
        model, source, outputs, example = export(args)
        lines = summarize(args.out, model, source, outputs, example)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return 1
    if not args.quiet:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
