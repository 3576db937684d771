"""Camera decoding benchmark: payment codes on phone screens as a cheap camera sees them
(hw_mocks/phone_camera.py), decoded / total, wrong reads and ms per 640x480 frame, for plain
zxing-cpp, plain pyzbar and our ladder; plus frames with no code.

Two sets are drawn from the same model with their own seeds: the TUNING set, which the ladder
was tuned on, and the HELD-OUT set, which was never looked at while tuning (keep it so: tune on
`--set tuning` only, and read the held-out figures once a change is made).

Run: `python -m tests.benchmarks.bench_scanning [--frames N] [--set tuning|held-out|both]`.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drivers.decoders import CodeDecoder, LadderDecoder, make_decoder, to_grey
from hw_mocks.camera import empty_frame
from hw_mocks.phone_camera import Scene, Symbology, draw_scene, shoot
from pos_terminal.errors import DeviceError

SETS = {"tuning": 1, "held-out": 2}  # the first word of each frame's seed
SYMBOLOGIES: tuple[Symbology, ...] = ("code128", "qr")


@dataclass(frozen=True)
class Sample:
    scene: Scene
    grey: npt.NDArray[np.uint8]  # what the camera driver hands the decoder


def sample(set_name: str, symbology: Symbology, index: int) -> Sample:
    """Frame `index` of a set, drawn from its own seed (set, symbology, index): reproducible,
    and the two sets share no draw."""
    rng = np.random.default_rng([SETS[set_name], SYMBOLOGIES.index(symbology), index])
    scene = draw_scene(rng, symbology)
    return Sample(scene, to_grey(shoot(scene), 640))


def samples(set_name: str, symbology: Symbology, count: int) -> Iterator[Sample]:
    return (sample(set_name, symbology, i) for i in range(count))


@dataclass
class Score:
    decoded: int = 0
    wrong: int = 0  # a code read that is not the one shown: the worst outcome
    total: int = 0

    def cell(self) -> str:
        return f"{self.decoded:>4}/{self.total:<4}{100 * self.decoded / max(1, self.total):5.1f}%"


def decoders() -> dict[str, CodeDecoder]:
    zxing = make_decoder("zxing")
    found: dict[str, CodeDecoder] = {"zxing-cpp": zxing}
    try:
        found["pyzbar"] = make_decoder("pyzbar")
    except DeviceError:
        print("pyzbar unavailable (install libzbar0): its rows are left out")
    found["ladder"] = LadderDecoder(zxing)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_set(set_name: str, frames: int, coders: dict[str, CodeDecoder]) -> None:
    label = set_name.upper() + (" (never used while tuning)" if set_name == "held-out" else "")
    print(f"\n{label}: {frames} frames per symbology, 640x480")
    header = (
        f"{'decoder':<11}{'symbology':<10}{'decoded':>17}{'wrong':>7}{'ms med':>8}{'ms p95':>8}"
    )
    print(header)
    print("-" * len(header))
    for symbology in SYMBOLOGIES:
        items = list(samples(set_name, symbology, frames))
        for name, decoder in coders.items():
            score, times = Score(total=len(items)), []
            for s in items:
                started = time.perf_counter()
                found = decoder.decode(s.grey)
                times.append((time.perf_counter() - started) * 1000)
                texts = {d.text for d in found}
                score.decoded += s.scene.code in texts
                score.wrong += bool(texts - {s.scene.code})
            print(
                f"{name:<11}{symbology:<10}{score.cell():>17}{score.wrong:>7}"
                f"{statistics.median(times):>8.1f}{percentile(times, 0.95):>8.1f}"
            )


def run_empty(coders: dict[str, CodeDecoder]) -> None:
    frames = [empty_frame(kind, seed) for kind in ("noise", "scene", "black") for seed in range(5)]
    print("\nframes with no code (noise, scene, black; 15):")
    for name, decoder in coders.items():
        decoder.decode(frames[0])  # warm-up
        times, reads = [], 0
        for f in frames:
            started = time.perf_counter()
            reads += bool(decoder.decode(f))
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name:<11}{statistics.median(times):>6.1f} ms median, {reads} false reads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200, help="frames per set and symbology")
    parser.add_argument("--set", choices=("tuning", "held-out", "both"), default="both")
    args = parser.parse_args()
    coders = decoders()
    for set_name in SETS:
        if args.set in (set_name, "both"):
            run_set(set_name, args.frames, coders)
    run_empty(coders)


if __name__ == "__main__":
    main()
