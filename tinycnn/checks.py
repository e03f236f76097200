"""Argument checks shared by the training API (``fit``, optimizers, schedules, callbacks).

Each check returns the value as a plain Python number, or raises an error that names the
function, the argument, what was expected and what arrived. NumPy scalars are welcome
wherever a number is expected: ``lr=np.float32(0.5)`` or ``epochs=np.int64(3)`` come
naturally out of array code, so refusing them would only punish the learner.

>>> as_int(np.int64(3), "epochs", "fit")
3
>>> as_float(np.float32(0.5), "lr", "SGD", low=0)
0.5
"""
import math
import numbers

import numpy as np

__all__ = ["as_int", "as_float", "as_bool"]


def as_int(value, name, owner, minimum=1):
    """``value`` as an ``int >= minimum``; Python and NumPy integers pass, bools and floats not.

    ``TypeError`` for a non-integer (``epochs=2.5``), ``ValueError`` below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int >= {minimum}, got {value!r} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {int(value)}")
    return int(value)


def as_float(value, name, owner, low=-math.inf, high=math.inf, low_inclusive=False,
             high_inclusive=False):
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high``.

    Python and NumPy ints and floats pass (``np.float32(0.5)``); bools, strings, arrays and
    NaN do not. The interval's brackets follow ``low_inclusive`` / ``high_inclusive``, and
    the error message prints it the same way, e.g. ``lr must be a number in (0, inf)``.
    """
    interval = (("[" if low_inclusive else "(") + f"{low:g}, {high:g}" + ("]" if high_inclusive else ")"))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number in {interval}, got {value!r} "
                        f"({type(value).__name__})")
    v = float(value)
    inside_low = v >= low if low_inclusive else v > low
    inside_high = v <= high if high_inclusive else v < high
    if math.isnan(v) or not (inside_low and inside_high):
        raise ValueError(f"{owner}: {name} must be a number in {interval}, got {value!r}")
    return v


def as_bool(value, name, owner):
    """``value`` as a ``bool``; Python and NumPy booleans (and the ints 0/1) pass."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{owner}: {name} must be True or False, got {value!r} ({type(value).__name__})")
