"""The peer of fogkit's training benchmark: PyTorch DistributedDataParallel on the CPU.

N processes (gloo, one thread each) train the MLP 784-128-10 or LeNet-5 on Fashion-MNIST
with batch B per process and SGD with momentum; DDP averages the gradients (the centralized
baseline, PmSGD). Prints one line: `samples/s <mean> <min> <max>` over the timed rounds of
N * B * steps / (slowest process's time), each round after warm-up steps.

    python ddp.py --model mlp|lenet [--procs 4] [--batch 64] [--steps 200] [--rounds 3]
"""

import argparse
import gzip
import os
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


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def worker(rank, args, port, out):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    torch.manual_seed(1)
    images = idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
    images = (images - images.mean()) / images.std()
    share = np.arange(rank, len(labels), args.procs)  # iid: every procs-th image
    x = torch.from_numpy(images[share]).unsqueeze(1)
    y = torch.from_numpy(labels[share])
    model = nn.parallel.DistributedDataParallel(LeNet5() if args.model == "lenet" else mlp())
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(rank)

    def steps(k):
        for _ in range(k):
            pick = torch.randint(0, len(y), (args.batch,), generator=gen)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[pick]), y[pick])
            loss.backward()
            opt.step()

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
    p.add_argument("--model", choices=["mlp", "lenet"], required=True)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--port", type=int, default=29511)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, args, args.port, out)) for r in range(args.procs)]
    for pr in procs:
        pr.start()
    mean, lo, hi = out.get(timeout=1800)
    for pr in procs:
        pr.join()
    print(f"samples/s {mean:.0f} {lo:.0f} {hi:.0f}")


if __name__ == "__main__":
    main()
