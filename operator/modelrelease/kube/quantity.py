"""Kubernetes resource quantities as numbers, so ``0.5`` and ``500m`` compare equal.

The API server stores a quantity in its canonical form, not as written;
the operator compares what it applies with what is stored (``kube.client``)
and must not see a change where there is none.  A dozen lines of our own
rather than ``kubernetes.utils``: importing that pulls the whole synchronous
client into the operator.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal(10) ** -9,
    "u": Decimal(10) ** -6,
    "m": Decimal(10) ** -3,
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}


def parse_quantity(value: str | int | float) -> Decimal:
    """The amount ``value`` stands for; ValueError when it is not a quantity."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = value.strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)]:
            number, factor = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, factor = text, Decimal(1)
    try:
        amount = Decimal(number)
    except InvalidOperation as error:
        raise ValueError(f"not a quantity: {value!r}") from error
    if not amount.is_finite():
        raise ValueError(f"not a quantity: {value!r}")
    return amount * factor
