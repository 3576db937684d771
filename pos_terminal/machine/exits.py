"""What a finished sub-machine hands its parent: a tender's result for the sale, a supervisor's
answer, a refund done."""

from __future__ import annotations

from dataclasses import dataclass

from pos_terminal.machine.events import ApprovedSale
from pos_terminal.machine.state import Purpose


@dataclass(frozen=True)
class TenderPaid:
    sale: ApprovedSale


@dataclass(frozen=True)
class TenderDeclined:
    amount_fen: int
    reason: str


@dataclass(frozen=True)
class TenderCancelled:
    """Closed or reversed after a cancel or expiry: nobody was charged."""

    amount_fen: int


@dataclass(frozen=True)
class TenderContradicted:
    """The provider's answer contradicts the journal: a supervisor must settle it."""

    amount_fen: int
    reason: str


TenderExit = TenderPaid | TenderDeclined | TenderCancelled | TenderContradicted


@dataclass(frozen=True)
class Authorised:
    purpose: Purpose


@dataclass(frozen=True)
class NotAuthorised:
    """The supervisor went back (a wrong PIN never leaves the prompt: it pauses or locks it)."""


@dataclass(frozen=True)
class RefundDone:
    then_key: str | None = None  # a digit that ended the result: it starts the next sale


Exit = TenderExit | Authorised | NotAuthorised | RefundDone
