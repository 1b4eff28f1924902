"""Errors of the SQL records layer: machine-readable ``code``, a ``retryable`` flag, never personal data.

Messages and fields name rows by openid or order number at most; an ID number or a name never
appears in an exception, so a logged traceback cannot leak one.
"""

from __future__ import annotations


class RecordError(Exception):
    code = "record_error"
    retryable = False


class KeyringError(RecordError):
    """The data key setting is missing or malformed."""

    code = "bad_data_key"


class UndecryptableValue(RecordError):
    """A stored token was written under a key the keyring lacks, or it was tampered with."""

    code = "undecryptable"


class IdNumberTaken(RecordError):
    """This ID number is already bound to another student (which one is deliberately not said)."""

    code = "id_number_taken"


class AlreadyBound(RecordError):
    code = "already_bound"


class NotBound(RecordError):
    code = "not_bound"


class OpenOrderExists(RecordError):
    """The student already has an unpaid order for this item; reuse it instead of creating another."""

    code = "open_order_exists"

    def __init__(self, out_trade_no: str) -> None:
        super().__init__(f"an open order already exists: {out_trade_no}")
        self.out_trade_no = out_trade_no


class OrderNotFound(RecordError):
    code = "order_not_found"


class StaleOrderState(RecordError):
    """The order is no longer in the state the caller expected (a concurrent change won)."""

    code = "stale_order_state"

    def __init__(self, out_trade_no: str, actual: str) -> None:
        super().__init__(f"order {out_trade_no} is {actual}")
        self.out_trade_no = out_trade_no
        self.actual = actual
