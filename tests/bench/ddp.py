"""The peer of fogkit's training benchmarks: PyTorch DistributedDataParallel.

N processes (gloo, one thread each) train the MLP 784-128-10, LeNet-5 or ResNet-20 with
batch B per process and SGD with momentum; DDP averages the gradients (the centralized
baseline, PmSGD). On the CPU (the default) they read Fashion-MNIST; with `--device cuda`
they share GPU 0 (gloo moves the gradients through host memory, as fogkit does) and, with
`--data synthetic`, train on random images (a GPU machine here has no datasets). Prints one
line: `samples/s <mean> <min> <max>` over the timed rounds of
N * B * steps / (slowest process's time), each round after warm-up steps.

    python ddp.py --model mlp|lenet|resnet20 [--procs 4] [--batch 64] [--steps 200]
                  [--rounds 3] [--device cpu|cuda] [--data fashion-mnist|synthetic]
"""

import argparse
import gzip
import os
import queue
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

DATA = os.environ.get("FOGKIT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class Block(nn.Module):
    """A ResNet basic block; with `down`, stride 2 and a 1x1 convolution on the shortcut."""

    def __init__(self, i, o, down):
        super().__init__()
        s = 2 if down else 1
        self.conv1 = nn.Conv2d(i, o, 3, stride=s, padding=1)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(o)
        self.proj = nn.Sequential(nn.Conv2d(i, o, 1, stride=2), nn.BatchNorm2d(o)) if down else None

    def forward(self, x):
        skip = self.proj(x) if self.proj is not None else x
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + skip)


class ResNet20(nn.Module):
    """fogkit's ResNet-20: 3x3 stem (16), 3 stages of 3 blocks (16, 32, 64), mean, 64-10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        blocks = []
        for i, o in [(16, 16), (16, 32), (32, 64)]:
            blocks += [Block(i, o, i != o), Block(o, o, False), Block(o, o, False)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean(dim=(2, 3)))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def worker(rank, args, port, out):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    torch.manual_seed(1)
    shape = (3, 32, 32) if args.model == "resnet20" else (1, 28, 28)
    if args.data == "synthetic":
        gen = torch.Generator().manual_seed(10 + rank)
        x = torch.randn((4096,) + shape, generator=gen)
        y = torch.randint(0, 10, (4096,), generator=gen)
    else:
        images = idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        labels = idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
        images = (images - images.mean()) / images.std()
        share = np.arange(rank, len(labels), args.procs)  # iid: every procs-th image
        x = torch.from_numpy(images[share]).unsqueeze(1)
        y = torch.from_numpy(labels[share])
    net = {"lenet": LeNet5, "mlp": mlp, "resnet20": ResNet20}[args.model]()
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(0)
        net, x, y = net.cuda(), x.cuda(), y.cuda()
    model = nn.parallel.DistributedDataParallel(net, device_ids=[0] if cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(rank)

    def steps(k):
        for _ in range(k):
            pick = torch.randint(0, len(y), (args.batch,), generator=gen).to(x.device)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[pick]), y[pick])
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()

    rates = []
    for _ in range(args.rounds):
        steps(20)  # warm-up
        dist.barrier()
        start = time.perf_counter()
        steps(args.steps)
        took = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        dist.all_reduce(took, op=dist.ReduceOp.MAX)
        rates.append(args.procs * args.batch * args.steps / took.item())
    if rank == 0:
        out.put((sum(rates) / len(rates), min(rates), max(rates)))
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["mlp", "lenet", "resnet20"], required=True)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--port", type=int, default=29511)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--data", choices=["fashion-mnist", "synthetic"], default="fashion-mnist")
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, args, args.port, out)) for r in range(args.procs)]
    for pr in procs:
        pr.start()
    # Wait for rank 0's result, but not for a worker that has died (its peers would wait
    # for it forever): stop them all and say so.
    deadline = time.monotonic() + 1800
    while True:
        try:
            mean, lo, hi = out.get(timeout=1)
            break
        except queue.Empty:
            dead = [pr.exitcode for pr in procs if pr.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for pr in procs:
                    pr.terminate()
                sys.exit(f"ddp.py: a worker exited with {dead[0]}" if dead else "ddp.py: no result in 1800 s")
    for pr in procs:
        pr.join()
    print(f"samples/s {mean:.0f} {lo:.0f} {hi:.0f}")


if __name__ == "__main__":
    main()
