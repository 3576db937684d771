"""Golden receipts: the printed bytes of fixed receipts match tests/golden/ byte for byte."""

from __future__ import annotations

import pytest

from hw_mocks.escpos_decode import decode
from tests.golden_receipts import (
    CASES,
    GOLDEN_DIR,
    REGENERATE,
    golden_bytes,
    golden_text,
    preview,
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_printed_bytes_are_the_golden_ones(name: str) -> None:
    data = CASES[name].render()
    golden = golden_bytes(name).read_bytes()
    if data != golden:
        pairs = enumerate(zip(data, golden, strict=False))
        at = next((i for i, (new, old) in pairs if new != old), min(len(data), len(golden)))
        pytest.fail(
            f"{name}: printed output changed ({len(golden)} -> {len(data)} bytes, first"
            f" difference at byte {at}); if meant, run `{REGENERATE}` and review the diff"
            f" of tests/golden/{name}.txt"
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_text_preview_is_the_golden_bytes_decoded(name: str) -> None:
    golden = golden_bytes(name).read_bytes()
    assert golden_text(name).read_text(encoding="utf-8") == preview(golden)
    assert decode(golden).unknown == []


def test_every_golden_file_belongs_to_a_case() -> None:
    names = {path.stem for path in GOLDEN_DIR.iterdir() if path.suffix in (".bin", ".txt")}
    assert names == set(CASES)
