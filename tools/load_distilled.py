#!/usr/bin/env python3
"""Load weights written by `rlpkd export-weights` into a torchvision ResNet-FPN backbone.

The .safetensors file is parsed here with json and numpy (the `safetensors` package is not needed): an
8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte range, then
the data. Only trainable parameters are in the file, so everything else of the model (the frozen
batch-norm statistics of torchvision's FrozenBatchNorm2d) keeps the model's own values: start from the
state_dict the ONNX graph was exported from (--base) to get the same model back.

Examples:
  python3 tools/load_distilled.py --arch resnet50 --weights student.safetensors --base r50_fpn.pth --save distilled.pth
  python3 tools/load_distilled.py --arch resnet50 --weights student.safetensors --json

As a library (tools/ on sys.path):
  from load_distilled import read_safetensors, load_distilled
  tensors, metadata = read_safetensors("student.safetensors")
  report = load_distilled(model, tensors)          # raises LoadError on unexpected names or shapes

Exit status: 0 when every tensor of the file filled a model key of the same shape, 1 otherwise (nothing is
loaded then).
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit
DTYPES = {  # safetensors dtype -> (numpy dtype, bytes per element)
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<i2", 2), "I64": ("<i8", 8),
    "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1), "U8": ("u1", 1), "BOOL": ("?", 1),
}


class LoadError(Exception):
    """A problem the user can fix; printed as `error: ...` / `hint: ...`."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


def read_safetensors(path):
    """(dict name -> torch.Tensor in file order, metadata dict) of a .safetensors file."""
    import numpy as np
    import torch

    with open(path, "rb") as f:
        raw = f.read()
    bad = lambda why: LoadError(f"'{path}' is not a valid safetensors file: {why}",
                                hint="pass a file written by `rlpkd export-weights`")
    if len(raw) < 8:
        raise bad("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(MAX_HEADER_BYTES, len(raw) - 8):
        raise bad(f"header length {n} exceeds the file or 100 MB")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"the header is not JSON ({e})")
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n:]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1].get("data_offsets", (0, 0))))
    covered, tensors = 0, {}
    for name, e in entries:
        if e.get("dtype") not in DTYPES:
            raise bad(f"tensor '{name}' has unsupported dtype {e.get('dtype')!r}")
        np_dtype, size = DTYPES[e["dtype"]]
        shape, (begin, end) = list(e["shape"]), e["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        if begin != covered or end - begin != count * size:
            raise bad(f"tensor '{name}' has data_offsets {[begin, end]} (expected to start at {covered}, "
                      f"{count * size} bytes)")
        covered = end
        array = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape).copy()
        t = torch.from_numpy(array)
        if e["dtype"] == "BF16":
            t = t.view(torch.bfloat16)  # numpy has no bfloat16: the bits travel as int16
        tensors[name] = t
    if covered != len(data):
        raise bad(f"the tensors cover {covered} data bytes, the file holds {len(data)}")
    return tensors, metadata


def load_distilled(model, tensors, prefix=""):
    """Copies `tensors` (file name -> tensor) into `model` under prefix + name; returns a report.

    Raises LoadError, changing nothing, when a name is not a key of the model's state_dict or a shape
    differs. The report lists the keys it filled, the model's parameters it did not fill, and the
    model's buffers (frozen batch-norm statistics) it left as they were.
    """
    import torch

    state = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    unexpected = [k for k in tensors if prefix + k not in state]
    wrong = [f"{k}: file {list(v.shape)}, model {list(state[prefix + k].shape)}" for k, v in tensors.items()
             if prefix + k in state and tuple(v.shape) != tuple(state[prefix + k].shape)]
    if unexpected or wrong:
        lines = [f"  not in the model: {prefix}{k}" for k in unexpected] + [f"  other shape: {w}" for w in wrong]
        raise LoadError(f"{len(unexpected)} name(s) of the file are not in the model and {len(wrong)} "
                        f"differ in shape:\n" + "\n".join(lines),
                        hint="check --arch and --prefix (a detector's backbone needs --prefix backbone.)")
    with torch.no_grad():
        for k, v in tensors.items():
            state[prefix + k].copy_(v.to(state[prefix + k].dtype))
    filled = [prefix + k for k in tensors]
    done = set(filled)
    return {
        "filled": filled,
        "parameters_not_filled": [k for k in state if k in params and k not in done],
        "buffers_kept": [k for k in state if k not in params and k not in done],
    }


def parse_args(argv):
    p = argparse.ArgumentParser(prog="load_distilled.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help=".safetensors file written by `rlpkd export-weights`")
    p.add_argument("--arch", required=True, help="resnet18 | resnet34 | resnet50 | resnet101 (an '-fpn' suffix is accepted)")
    p.add_argument("--base", help="state_dict to start from (the one the ONNX graph was exported from: its frozen "
                   "batch-norm statistics are kept); same formats as export_fpn.py --weights")
    p.add_argument("--prefix", default="", help="prepended to every name of the file (e.g. 'backbone.')")
    p.add_argument("--save", help="write the resulting state_dict here (torch.save)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import export_fpn  # same folder: architecture names, backbone construction, state_dict loading

    try:
        if not os.path.isfile(args.weights):
            raise LoadError(f"weights file '{args.weights}' does not exist", hint="check the path")
        arch = export_fpn.normalize_arch(args.arch)
        torch, _ = export_fpn.import_torch()
        model = export_fpn.build_backbone(torch, arch)
        if args.base:
            if not os.path.isfile(args.base):
                raise LoadError(f"base state_dict '{args.base}' does not exist", hint="check the path")
            export_fpn.apply_weights(model, export_fpn.load_state_dict(torch, args.base), args.base)
        tensors, metadata = read_safetensors(args.weights)
        report = load_distilled(model, tensors, args.prefix)
        if args.save:
            torch.save(model.state_dict(), args.save)
    except (LoadError, export_fpn.ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"metadata": metadata, **report}, indent=2))
        return 0
    print(f"filled {len(report['filled'])} keys of a torchvision {arch}-FPN backbone from {args.weights}"
          + (f" ({metadata.get('checkpoint')})" if metadata.get("checkpoint") else ""))
    kept = report["buffers_kept"]
    print(f"  kept the model's own values for {len(kept)} buffers (frozen batch-norm statistics)"
          + ("" if args.base else "; they are torchvision's defaults: pass --base to start from the exported model"))
    missing = report["parameters_not_filled"]
    if missing:
        print(f"  WARNING: {len(missing)} parameters were not in the file and keep their starting values: "
              + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if args.save:
        print(f"  saved the state_dict to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
