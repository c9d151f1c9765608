#!/usr/bin/env python3
"""The distillation train step of `rlpkd bench train-step` in PyTorch eager, for the GPU check.

Teacher: torchvision ResNet-101-FPN backbone, eval, no grad. Student: ResNet-50-FPN, AdamW (lr 1e-3,
weight decay 1e-2), loss sum over p2..p5 of mean squared error. float32; TF32 allowed for matmul and
cuDNN, cudnn.benchmark on (the settings the issue names). Prints one JSON line: median/min ms per step,
peak CUDA memory (torch.cuda.max_memory_allocated) in MB.

  python3 tools/gpu-check/torch_step.py --device cuda --batch 32 --size 512 --steps 20
"""
import argparse
import json
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--teacher", default="resnet101")
    p.add_argument("--student", default="resnet50")
    a = p.parse_args()
    import torch
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    def backbone(arch):
        try:
            return resnet_fpn_backbone(backbone_name=arch, weights=None, trainable_layers=5)
        except TypeError:  # torchvision < 0.13
            return resnet_fpn_backbone(arch, pretrained=False, trainable_layers=5)

    cuda = a.device.startswith("cuda")
    if cuda:
        if not torch.cuda.is_available():
            print(json.dumps({"error": "torch.cuda.is_available() is False"}))
            return 1
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(a.device)
    teacher = backbone(a.teacher).to(dev).eval()
    student = backbone(a.student).to(dev).train()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=1e-2)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    levels = ["0", "1", "2", "3"]  # torchvision's names for p2..p5

    def step():
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = sum(torch.nn.functional.mse_loss(s[k], t[k]) for k in levels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    times = []
    for i in range(a.warmup + a.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        loss.item()  # waits for the step
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    out = {
        "device": a.device,
        "gpu": torch.cuda.get_device_name(dev) if cuda else None,
        "torch": torch.__version__,
        "batch": a.batch,
        "size": a.size,
        "medianMs": statistics.median(times),
        "minMs": min(times),
        "peakMemMB": torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None,
        "settings": "float32, TF32 allowed, cudnn.benchmark on" if cuda else "float32",
        "loss": float(loss),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
