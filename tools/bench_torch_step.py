#!/usr/bin/env python3
"""PyTorch reference for `rlpkd bench train-step`: one feature-distillation step in eager mode.

The step is the one rl-pyramidkd times: a torchvision ResNet-FPN teacher forward without gradients, the
student's forward, the sum over the four FPN levels (p2..p5, torchvision keys '0'..'3') of the mean squared
error to the teacher's features, backward, and an AdamW update. Both backbones are torchvision's
``resnet_fpn_backbone`` with FrozenBatchNorm2d and trainable_layers=5 (every conv trains), random weights.

Prints one JSON object: medianMs, p90Ms, minMs, peakRssMB (resource.getrusage ru_maxrss, the process's
true peak resident set), the per-step times and the settings.

Example:
  python3 tools/bench_torch_step.py --teacher resnet101 --student resnet50 --batch 2 --size 224 --steps 10
"""
import argparse
import json
import resource
import statistics
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench_torch_step.py", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="resnet101", help="teacher backbone (default resnet101)")
    p.add_argument("--student", default="resnet50", help="student backbone (default resnet50)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def backbone(name):
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import misc as misc_nn_ops

    arch = name.lower().replace("-fpn", "").replace("_fpn", "")
    try:
        # torchvision >= 0.13
        return resnet_fpn_backbone(
            backbone_name=arch, weights=None, norm_layer=misc_nn_ops.FrozenBatchNorm2d, trainable_layers=5
        )
    except TypeError:
        return resnet_fpn_backbone(arch, pretrained=False, norm_layer=misc_nn_ops.FrozenBatchNorm2d, trainable_layers=5)


def peak_rss_mb():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    teacher = backbone(args.teacher).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = backbone(args.student).train()
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    x = torch.randn(args.batch, 3, args.size, args.size)
    levels = ["0", "1", "2", "3"]

    def step():
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = sum(F.mse_loss(s[k], t[k]) for k in levels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    times = []
    loss = None
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step()
        dt = (time.perf_counter() - t0) * 1000.0
        if i >= args.warmup:
            times.append(dt)
    ordered = sorted(times)
    result = {
        "runtime": "pytorch %s eager" % torch.__version__,
        "medianMs": statistics.median(times),
        "p90Ms": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
        "minMs": ordered[0],
        "peakRssMB": peak_rss_mb(),
        "stepsMs": times,
        "loss": loss,
        "teacher": args.teacher,
        "student": args.student,
        "batch": args.batch,
        "size": args.size,
        "threads": torch.get_num_threads(),
        "trainableParameters": sum(p.numel() for p in params),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
