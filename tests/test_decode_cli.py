"""`pos-terminal decode FILE...` (pos_terminal.decode_cli.main)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hw_mocks.camera import Distortion, empty_frame, frame, payment_code, render_code128, render_qr
from pos_terminal.decode_cli import NO_CODE, main


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    twice = frame(render_qr(payment_code(3), 4))
    files = {
        "qr": (tmp_path / "qr.png", frame(render_qr(payment_code(1), 4), Distortion(rotate=10))),
        "bar": (tmp_path / "bar.jpg", frame(render_code128(payment_code(2), 3))),
        "empty": (tmp_path / "empty.png", empty_frame("scene")),
        "twice": (tmp_path / "twice.png", np.hstack([twice, twice])),  # one code shown twice
    }
    for path, image in files.values():
        cv2.imwrite(str(path), image)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return {name: path for name, (path, _) in files.items()} | {"broken": broken}


def test_each_file_with_a_code_gets_one_line_with_its_decoded_text(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(images["qr"]), str(images["empty"]), str(images["bar"])]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{images['qr']}\t{payment_code(1)}",
        f"{images['bar']}\t{payment_code(2)}",
    ]
    assert captured.err.splitlines() == [f"pos-terminal decode: {images['empty']}: no code"]


def test_when_no_file_holds_a_code_each_says_so_and_the_status_is_distinct(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(images["empty"]), str(images["empty"])]) == NO_CODE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"pos-terminal decode: {images['empty']}: no code"] * 2
    assert NO_CODE not in (0, 1, 2)  # the statuses of codes found, unreadable files, no decoder


def test_a_code_seen_twice_in_one_image_is_printed_once(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(images["twice"])]) == 0
    assert capsys.readouterr().out == f"{images['twice']}\t{payment_code(3)}\n"


def test_unreadable_files_get_one_error_line_and_the_rest_still_run(
    images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing, empty = tmp_path / "missing.png", tmp_path / "zero.png"
    empty.write_bytes(b"")
    argv = [str(images["broken"]), str(missing), str(empty), str(tmp_path), str(images["qr"])]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{images['qr']}\t{payment_code(1)}"]
    errors = captured.err.splitlines()
    assert len(errors) == 4
    assert all(line.startswith("pos-terminal decode: ") for line in errors)
    assert "broken.png" in errors[0] and "missing.png" in errors[1]


def test_the_decoder_can_be_chosen(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--decoder", "pyzbar", str(images["qr"])])
    captured = capsys.readouterr()
    if code == 2:
        assert "libzbar0" in captured.err
    else:
        assert captured.out == f"{images['qr']}\t{payment_code(1)}\n"


def test_an_unknown_decoder_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--decoder", "opencv", "x.png"])
    assert exit_.value.code == 2
