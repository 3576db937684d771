"""`pos-terminal decode FILE...`: the camera decoders on image files, one line per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Print `path<TAB>text` per file (texts tab-separated when a file holds several codes, empty
    when none). A file that cannot be read gets one line on stderr; the rest still run.
    Returns 0, 1 when some file could not be read, 2 when the decoder is unavailable.
    """
    parser = argparse.ArgumentParser(
        prog="pos-terminal decode", description="Decode QR and Code 128 payment codes in images."
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--decoder", choices=("zxing", "pyzbar"), default="zxing")
    parser.add_argument(
        "--no-preprocess", action="store_true", help="only the chosen decoder, no retries on a miss"
    )
    args = parser.parse_args(argv)

    import cv2
    import numpy as np

    from drivers.decoders import build_decoder, to_grey
    from pos_terminal.errors import PosError

    try:
        decoder = build_decoder(args.decoder, ladder=not args.no_preprocess)
    except PosError as exc:
        print(f"pos-terminal decode: {exc}", file=sys.stderr)
        return 2
    failed = False
    for path in args.files:
        try:
            data = np.frombuffer(path.read_bytes(), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
            if image is None:
                raise ValueError("not an image OpenCV can read")
            texts = [d.text for d in decoder.decode(to_grey(image))]
        except (OSError, ValueError, cv2.error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            print(f"pos-terminal decode: {path}: {reason}", file=sys.stderr)
            failed = True
            continue
        clean = (t.replace("\t", " ").replace("\n", " ") for t in texts)
        print("\t".join([str(path), *clean]) if texts else f"{path}\t", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
