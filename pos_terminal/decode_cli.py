"""`pos-terminal decode FILE...`: the camera decoders on image files, one line per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NO_CODE = 3  # the exit status when no file held a code

EXIT_STATUS = f"""\
exit status: 0 some file held a code; 1 some file could not be read; 2 the decoder is
unavailable (or a usage error); {NO_CODE} no file held a code"""


def main(argv: list[str]) -> int:
    """Print `path<TAB>text` per file holding a code (each distinct text once, tab-separated when
    there are several). A file with no code, or one that cannot be read, gets one line on stderr
    instead; the rest still run. Returns the status EXIT_STATUS lists.
    """
    parser = argparse.ArgumentParser(
        prog="pos-terminal decode",
        description="Decode QR and Code 128 payment codes in images.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files")
    parser.add_argument(
        "--decoder",
        choices=("zxing", "pyzbar"),
        default="zxing",
        help="zxing-cpp (default) or pyzbar (needs the system library libzbar0)",
    )
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
    failed, found = False, False
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
        if not texts:
            print(f"pos-terminal decode: {path}: no code", file=sys.stderr)
            continue
        found = True
        clean = dict.fromkeys(t.replace("\t", " ").replace("\n", " ") for t in texts)
        print("\t".join([str(path), *clean]), flush=True)
    return 1 if failed else (0 if found else NO_CODE)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
