"""Errors of the payments service: a machine-readable ``code``, a ``retryable`` flag, no personal data."""

from __future__ import annotations


class PaymentError(Exception):
    code = "payment_error"
    retryable = False

    def __init__(self, message: str = "", *, code: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message or self.code)
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable


class PaymentsDisabled(PaymentError):
    code = "payments_disabled"


class UnknownFee(PaymentError):
    code = "unknown_fee"


class PayApiError(PaymentError):
    """WeChat Pay answered with an error (``code`` is its error code), or could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}", code=code,
                         retryable=status == 0 or status >= 500 or code in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"))
        self.status = status


class OrderClosed(PaymentError):
    code = "order_closed"


class AlreadyPaid(PaymentError):
    code = "already_paid"


class WrongPayer(PaymentError):
    """The WeChat user at the pay page is not the student the order belongs to."""

    code = "wrong_payer"


class NotificationRejected(PaymentError):
    """A payment notification that must not be applied; ``status`` is the HTTP answer (WeChat retries)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason, code=reason)
        self.status = status
