"""Outgrowing tinycnn: continue training a tinycnn model with PyTorch on several processes.

tinycnn trains on one machine. When the data or the model grows, hand the model to PyTorch,
whose ``DistributedDataParallel`` (DDP) runs one copy of the model per process, gives each
a different slice of every epoch, and averages the gradients across processes after each
backward pass, so all copies stay identical. On CPUs the processes talk over ``gloo``; on
GPUs over ``nccl`` -- this script picks whichever fits and runs unchanged on both::

    torchrun --standalone --nproc_per_node=2 tutorials/train_ddp.py            # 2 CPU processes
    torchrun --standalone --nproc_per_node=4 tutorials/train_ddp.py --epochs 5 # 4 GPUs, if present

What happens:
1. rank 0 trains a LeNet-5 in tinycnn for one epoch (or loads ``--model runs/<run>/model.npz``)
   and saves it; the other ranks wait, then every rank loads the same file;
2. ``tinycnn.interop.to_torch`` turns it into an ``nn.Sequential`` with the same weights;
3. DDP continues training it on the shipped MNIST digits, each rank on its shard;
4. rank 0 reports test accuracy in PyTorch, imports the module back with
   ``from_torch`` and shows tinycnn's ``evaluate`` gives the same accuracy.

Needs the interop extra: ``pip install -e ".[interop]"``.
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import tinycnn as tc
from tinycnn import losses, optim
from tinycnn.interop import from_torch, to_torch
from tinycnn.models import lenet5


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a tinycnn model file to start from (default: train one epoch here)")
    p.add_argument("--epochs", type=int, default=2, help="epochs of DDP training (default 2)")
    p.add_argument("--limit", type=int, default=None, help="use only this many training digits")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--out", default="runs/ddp", help="folder for the start and final model files")
    return p.parse_args()


def main():
    args = parse_args()
    use_cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if not use_cuda:
        torch.set_num_threads(1)          # one core per process: the processes are the parallelism
    (x_train, y_train), (x_test, y_test) = tc.datasets.load_mnist5k(seed=0)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]

    # 1. a tinycnn model, trained here, shared through a file
    out = Path(args.out)
    start = Path(args.model) if args.model else out / "tinycnn_start.npz"
    if rank == 0 and not args.model:
        out.mkdir(parents=True, exist_ok=True)
        model = lenet5(rng=0)
        model.fit(x_train, y_train, loss=losses.SoftmaxCrossEntropy(),
                  optimizer=optim.SGD(model.parameters(), lr=args.lr, momentum=0.9),
                  epochs=1, batch_size=64, seed=0, verbose=False)
        model.save(start)
        acc = model.evaluate(x_test, y_test, loss=losses.SoftmaxCrossEntropy())["accuracy"]
        print(f"[rank 0] tinycnn, 1 epoch: test accuracy {acc:.4f}", flush=True)
    dist.barrier()
    model = tc.load_model(start)

    # 2. the same network in PyTorch, wrapped so gradients are averaged across processes
    module = to_torch(model).to(device).train()
    ddp = DistributedDataParallel(module, device_ids=[local_rank] if use_cuda else None)

    # 3. each process sees its own shard of every epoch
    data = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64)))
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=64, sampler=sampler)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)          # a different shuffle each epoch, the same on every rank
        total, count = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(ddp(xb), yb)
            loss.backward()               # DDP all-reduces (averages) the gradients here
            opt.step()
            total, count = total + loss.item() * len(yb), count + len(yb)
        print(f"[rank {rank}] epoch {epoch + 1}/{args.epochs}: mean loss {total / count:.4f} "
              f"over its {count} digits", flush=True)

    # 4. rank 0 evaluates in PyTorch, then back in tinycnn
    if rank == 0:
        module.eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(x_test).to(device)).cpu().numpy()
        torch_acc = float((logits.argmax(1) == y_test).mean())
        back = from_torch(module.cpu(), input_shape=model.meta["input_shape"])
        tiny_acc = back.evaluate(x_test, y_test, loss=losses.SoftmaxCrossEntropy())["accuracy"]
        back.save(out / "after_ddp.npz")
        print(f"[rank 0] after {args.epochs} DDP epoch(s) on {world} processes "
              f"({time.perf_counter() - t0:.1f} s): PyTorch test accuracy {torch_acc:.4f}, "
              f"tinycnn (imported back) {tiny_acc:.4f}", flush=True)
    dist.barrier()                        # leave together: a rank that quits early aborts gloo
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
