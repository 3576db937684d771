"""Receipts: sale, refund, void and settlement records, their layout and ESC/POS bytes."""
