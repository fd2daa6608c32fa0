"""fastbp's environment variables, read one way: a value that is not
understood is named in a warning (once) and the default kept, never read as
its opposite (``FASTBP_INSTALL_CACHE=false`` was on: only ``0`` was off)."""
import os
import warnings

OFF = ("0", "false", "no", "off")
ON = ("1", "true", "yes", "on", "")
_warned = set()


def _unknown(name, value, means):
    if (name, value) not in _warned:
        _warned.add((name, value))
        warnings.warn(f"{name}={value!r} is not understood ({means}); it is taken as unset",
                      RuntimeWarning, stacklevel=3)


def switch(name):
    """Whether the on/off variable ``name`` is on: unset, 1, true, yes, on
    (any case) on; 0, false, no, off off."""
    value = os.environ.get(name)
    if value is None:
        return True
    word = value.strip().lower()
    if word in OFF:
        return False
    if word not in ON:
        _unknown(name, value, "0, false, no or off turn it off; 1, true, yes or on leave it on")
    return True


def choice(name, choices):
    """The value of ``name`` among ``choices`` (any case, spaces around
    ignored), or None where unset or not one of them."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word not in choices:
        _unknown(name, value, "it may be " + " or ".join(choices))
        return None
    return word
