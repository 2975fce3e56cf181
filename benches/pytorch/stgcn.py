#!/usr/bin/env python3
"""The PyTorch baseline: our own PyTorch model of the network leangcn trains (PYSKL's ST-GCN, written
from its definition), for timing side by side on the same machine.

  python3 benches/pytorch/stgcn.py --check GOLDEN.safetensors      # same network: logits vs the golden file
  python3 benches/pytorch/stgcn.py --device cpu --batch 16 --clip-len 100 --threads 2 --steps 5

Timing prints one JSON line per configuration: forward-only and full training-step (forward, loss,
backward, SGD with Nesterov momentum) samples per second.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NTU_INWARD = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
              (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8), (23, 8), (24, 12),
              (25, 12)]


def stgcn_spatial_adjacency(v=25, center=20):
    """ST-GCN's spatial partition with the 1-hop-capped centre distance (see the spec)."""
    edges = [(i - 1, j - 1) for i, j in NTU_INWARD]
    inf = float("inf")
    hop = [[inf] * v for _ in range(v)]
    for i, j in edges:
        hop[i][j] = hop[j][i] = 1
    for i in range(v):
        hop[i][i] = 0
    adj = [[1.0 if hop[a][b] <= 1 else 0.0 for b in range(v)] for a in range(v)]
    col = [sum(adj[a][b] for a in range(v)) for b in range(v)]
    norm = [[adj[a][b] / col[b] if col[b] > 0 else 0.0 for b in range(v)] for a in range(v)]
    a = torch.zeros(3, v, v, dtype=torch.float64)
    for h in (0, 1):
        for i in range(v):
            for j in range(v):
                if hop[j][i] != h:
                    continue
                if hop[j][center] >= hop[i][center]:
                    a[0 if h == 0 else 1, j, i] = norm[j][i]
                else:
                    a[2, j, i] = norm[j][i]
    return a.float()


class GraphUnit(nn.Module):
    def __init__(self, c_in, c_out, A):
        super().__init__()
        self.register_buffer("A", A.clone())
        self.PA = nn.Parameter(torch.ones_like(A))
        self.conv = nn.Conv2d(c_in, 3 * c_out, 1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        n, _, t, v = x.shape
        z = self.conv(x).view(n, 3, -1, t, v)
        y = torch.einsum("nkctv,kvw->nctw", z, self.A * self.PA).contiguous()
        return F.relu(self.bn(y))


class TemporalUnit(nn.Module):
    def __init__(self, c_in, c_out, kernel=9, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (kernel, 1), padding=((kernel - 1) // 2, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class Block(nn.Module):
    def __init__(self, c_in, c_out, A, stride=1, residual=True):
        super().__init__()
        self.gcn = GraphUnit(c_in, c_out, A)
        self.tcn = TemporalUnit(c_out, c_out, 9, stride)
        if not residual:
            self.residual = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalUnit(c_in, c_out, 1, stride)

    def forward(self, x):
        res = 0 if self.residual is None else self.residual(x)
        return F.relu(self.tcn(self.gcn(x)) + res)


class Backbone(nn.Module):
    def __init__(self, A, in_channels=3, v=25):
        super().__init__()
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        plan = [(in_channels, 64, 1, False)] + [(64, 64, 1, True)] * 3 + [(64, 128, 2, True)] + [(128, 128, 1, True)] * 2 \
            + [(128, 256, 2, True)] + [(256, 256, 1, True)] * 2
        self.gcn = nn.ModuleList(Block(ci, co, A, s, r) for ci, co, s, r in plan)

    def forward(self, x):
        n, m, t, v, c = x.shape
        x = x.permute(0, 1, 3, 4, 2).contiguous()
        x = self.data_bn(x.view(n * m, v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for block in self.gcn:
            x = block(x)
        return x.reshape(n, m, *x.shape[1:])


class Head(nn.Module):
    def __init__(self, classes, channels=256):
        super().__init__()
        self.fc_cls = nn.Linear(channels, classes)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x):
        n, m = x.shape[:2]
        pooled = x.mean(dim=(3, 4)).mean(dim=1)
        return self.fc_cls(pooled), pooled


class Stgcn(nn.Module):
    def __init__(self, classes=60):
        super().__init__()
        self.backbone = Backbone(stgcn_spatial_adjacency())
        self.cls_head = Head(classes)

    def forward(self, x):
        return self.cls_head(self.backbone(x))[0]


def check(path):
    from safetensors.torch import load_file
    torch.backends.mkldnn.enabled = False  # oneDNN f32 conv gradients are off by up to 6% on AVX2
    tensors = load_file(path)
    model = Stgcn(classes=tensors["ref.logits"].shape[1]).double()
    state = {k[len("init."):]: v for k, v in tensors.items() if k.startswith("init.")}
    missing, unexpected = model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()},
                                                strict=True)
    model.train()
    logits = model(tensors["input"].double())
    ref = tensors["ref.logits"].double()
    err = ((logits - ref).abs().max() / ref.abs().max()).item()
    print(json.dumps({"check": path, "logits_max_rel_error": err, "pass": err <= 1e-10}))
    if err > 1e-10:
        raise SystemExit(1)


def timing(args):
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.backends.mkldnn.enabled = not args.no_onednn
    model = Stgcn(classes=60).to(dev)
    x = torch.randn(args.batch, 2, args.clip_len, 25, 3, device=dev)
    y = torch.randint(0, 60, (args.batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    # compile: AMP + torch.compile; compile-graphs: the same with CUDA graphs ("reduce-overhead")
    if args.mode == "compile":
        step_model = torch.compile(model)
    elif args.mode == "compile-graphs":
        step_model = torch.compile(model, mode="reduce-overhead")
    else:
        step_model = model
    amp = args.mode != "eager" and dev.type == "cuda"

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(step_model(x), y)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(args.warmup):
        train_step()
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(args.steps):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                step_model(x)
    sync()
    fwd = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    sync()
    step = (time.perf_counter() - t0) / args.steps
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}", "device": args.device, "mode": args.mode,
        "onednn": not args.no_onednn, "threads": args.threads, "batch": args.batch, "clip_len": args.clip_len,
        "forward_seconds": fwd, "step_seconds": step,
        "forward_samples_per_sec": args.batch / fwd, "step_samples_per_sec": args.batch / step,
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", metavar="GOLDEN")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--clip-len", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["eager", "amp", "compile", "compile-graphs"], default="eager")
    p.add_argument("--no-onednn", action="store_true", help="disable oneDNN (mkldnn) CPU kernels")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    if args.check:
        check(args.check)
    else:
        timing(args)


if __name__ == "__main__":
    main()
