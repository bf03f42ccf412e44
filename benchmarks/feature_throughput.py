"""Images per second of the FID Inception feature extraction on CPU, by batch size and threads.

Times the extractor as ``extract_features`` calls it per batch (preprocess: PNG rounding, resize
to 299, normalisation; then the network) under ``torch.inference_mode``, on random uint8 images
(MNIST-sized by default) and random weights (the speed does not depend on the weights). Each
round runs every (threads, batch size) once, batch sizes in alternating order; the table holds the
median over rounds and the throughput relative to ``--default-batch`` at the same thread count.
A second part compares the channels-last input layout (the default) with the plain one, in turn.

    .venv/bin/python benchmarks/feature_throughput.py [--batch-sizes 8 16 32 64] [--threads 1 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from equilibria.metrics.features import InceptionFeatures
from equilibria.metrics.inception import FIDInceptionV3


def seconds(extractor: InceptionFeatures, images: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        extractor(images)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default-batch", type=int, default=16, help="the batch size the ratios refer to")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1, choices=[1, 3])
    parser.add_argument("--layout-rounds", type=int, default=3, help="rounds of the layout comparison (0 skips it)")
    args = parser.parse_args()
    if args.default_batch not in args.batch_sizes:
        parser.error(f"--default-batch {args.default_batch} must be one of --batch-sizes {args.batch_sizes}")

    torch.manual_seed(0)
    extractor = InceptionFeatures(FIDInceptionV3().eval())
    images = torch.randint(0, 256, (max(args.batch_sizes), args.channels, args.image_size, args.image_size),
                           dtype=torch.uint8)
    rates: dict[tuple[int, int], list[float]] = {(t, b): [] for t in args.threads for b in args.batch_sizes}
    for threads in args.threads:  # warm-up: kernels and allocator
        torch.set_num_threads(threads)
        seconds(extractor, images[:2])
    for round_index in range(args.rounds):
        order = args.batch_sizes if round_index % 2 == 0 else args.batch_sizes[::-1]
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in order:
                rates[threads, batch].append(batch / seconds(extractor, images[:batch]))

    print(f"FID Inception features of {args.channels}x{args.image_size}x{args.image_size} uint8 images, "
          f"torch {torch.__version__}, median of {args.rounds} rounds")
    print("| threads | batch | images/s | relative to batch "
          f"{args.default_batch} |\n| --- | --- | --- | --- |")
    for threads in args.threads:
        reference = statistics.median(rates[threads, args.default_batch])
        for batch in args.batch_sizes:
            rate = statistics.median(rates[threads, batch])
            print(f"| {threads} | {batch} | {rate:.2f} | {rate / reference:.3f} |")

    if args.layout_rounds:
        compare_layouts(extractor, images[:args.default_batch], args.layout_rounds, min(args.threads))


def compare_layouts(extractor: InceptionFeatures, images: torch.Tensor, rounds: int, threads: int) -> None:
    """Channels-last input (default) against the plain NCHW layout, one batch of each in turn."""
    torch.set_num_threads(threads)
    network = extractor.network
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_index in range(rounds):
        for layout in ((True, False) if round_index % 2 == 0 else (False, True)):
            network.channels_last = layout
            times[layout].append(seconds(extractor, images))
    network.channels_last = True
    last, plain = statistics.median(times[True]), statistics.median(times[False])
    n = images.shape[0]
    print(f"layout at batch {n}, {threads} thread(s), median of {rounds}: channels-last {n / last:.2f} images/s, "
          f"NCHW {n / plain:.2f} images/s, speed-up {plain / last:.2f}x")


if __name__ == "__main__":
    main()
