"""Camera decoding benchmark: decode rate and median ms per 640x480 frame for QR and Code 128 under
rotation, perspective, blur, noise, low contrast and glare; zxing-cpp, pyzbar and our ladder.

Run: `python -m tests.benchmarks.bench_scanning [--seeds N]`. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from drivers.decoders import CodeDecoder, LadderDecoder, make_decoder
from hw_mocks.camera import (
    Distortion,
    empty_frame,
    frame,
    payment_code,
    render_code128,
    render_qr,
)
from pos_terminal.errors import DeviceError

DISTORTIONS = {
    "plain": Distortion(),
    "perspective": Distortion(tilt=0.12),
    "blur": Distortion(blur=1.2),
    "noise": Distortion(noise=12),
    "low contrast": Distortion(contrast=0.35, noise=4),
    "glare": Distortion(glare=120),
    "blur+noise+dim": Distortion(blur=0.8, noise=8, contrast=0.6),
}
# module size in pixels: QR 3-6 px is a phone 15-30 cm away; Code 128 needs >= 2 px (§6)
SETS: dict[str, tuple[Callable[[str, int], np.ndarray], tuple[int, ...], tuple[float, ...]]] = {
    "qr": (render_qr, (3, 4, 6), (0.0, 15.0, 40.0)),
    "code128": (render_code128, (2, 3, 4), (0.0, 8.0, 20.0)),
}


@dataclass(frozen=True)
class Sample:
    kind: str
    code: str
    image: np.ndarray


def samples(seeds: int) -> list[Sample]:
    out = []
    n = 0
    for kind, (render, modules, angles) in SETS.items():
        for module, angle, distortion, seed in itertools.product(
            modules, angles, DISTORTIONS.values(), range(seeds)
        ):
            n += 1
            code = payment_code(n)
            image = frame(render(code, module), replace(distortion, rotate=angle + seed), seed=n)
            out.append(Sample(kind, code, image))
    return out


def measure(decoder: CodeDecoder, items: list[Sample]) -> tuple[int, float]:
    hits, times = 0, []
    for s in items:
        started = time.perf_counter()
        found = decoder.decode(s.image)
        times.append((time.perf_counter() - started) * 1000)
        hits += any(d.text == s.code for d in found)
    return hits, statistics.median(times)


def empty_ms(decoder: CodeDecoder) -> float:
    frames = [empty_frame(kind, seed) for kind in ("noise", "scene", "black") for seed in range(5)]
    decoder.decode(frames[0])  # warm-up
    started = time.perf_counter()
    for f in frames:
        decoder.decode(f)
    return (time.perf_counter() - started) * 1000 / len(frames)


def decoders() -> dict[str, CodeDecoder | None]:
    zxing = make_decoder("zxing")
    try:
        zbar: CodeDecoder | None = make_decoder("pyzbar")
    except DeviceError:
        zbar = None
    return {
        "zxing-cpp": zxing,
        "pyzbar": zbar,
        "ladder (zxing first)": LadderDecoder(zxing, (zbar,) if zbar else ()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seeds", type=int, default=2, help="frames per (module, angle, distortion)"
    )
    args = parser.parse_args()
    items = samples(args.seeds)
    by_kind = {k: [s for s in items if s.kind == k] for k in SETS}
    print(
        f"{len(items)} frames 640x480: QR {len(by_kind['qr'])}, Code 128 {len(by_kind['code128'])}"
    )
    header = (
        f"{'decoder':<22}{'QR decoded':>16}{'QR ms':>8}"
        f"{'C128 decoded':>18}{'C128 ms':>9}{'empty ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, decoder in decoders().items():
        if decoder is None:
            print(f"{name:<22}  unavailable (install libzbar0)")
            continue
        cells = []
        for kind in SETS:
            hits, ms = measure(decoder, by_kind[kind])
            total = len(by_kind[kind])
            cells.append(f"{hits:>4}/{total} {100 * hits / total:5.1f}%")
            cells.append(f"{ms:.1f}")
        print(
            f"{name:<22}{cells[0]:>16}{cells[1]:>8}{cells[2]:>18}{cells[3]:>9}{empty_ms(decoder):>10.1f}"
        )


if __name__ == "__main__":
    main()
