"""Options declared once: a field of a frozen options dataclass carries its default, its help and how the command
line spells it, in ``metadata``. The CLI generates its arguments from these fields (edgert.cli.options), and the
library's errors name the option (``OptionError("window", ...)``), which the CLI shows as its flag (``--window``).

Only the standard library: the CLI builds its parser from these before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .errors import OptionError

_NO_DEFAULT: Any = dataclasses.MISSING


def option(
    default: Any = _NO_DEFAULT,
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    choices: tuple[Any, ...] | Callable[[], tuple[Any, ...]] | None = None,
    parse: Callable[[str], Any] | None = None,
    many: bool = False,
    shown: str | None = None,
    cli: bool = True,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with its CLI spelling. ``parse`` turns the flag's text into the field's value; ``many``
    makes a repeatable flag whose values are collected into a tuple; ``shown`` is the default as help states it
    (for a None that means "read from the model"); ``cli=False`` keeps a field off the command line."""
    meta = {
        "help": help,
        "flag": flag,
        "metavar": metavar,
        "choices": choices,
        "parse": parse,
        "many": many,
        "shown": shown,
        "cli": cli,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag(cls: type, name: str) -> str:
    """How the command line spells option ``name`` of options class ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("flag") or "--" + name.replace("_", "-")
    return "--" + name.replace("_", "-")


def check(condition: object, name: str, message: str, error: type[OptionError] = OptionError) -> None:
    """Raises ``error(name, message)`` unless ``condition``: the one way option checks fail."""
    if not condition:
        raise error(name, message)


def given(options: Any) -> dict[str, Any]:
    """The options that differ from their defaults, as provenance records them."""
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if value != default and value not in (None, (), []):
            out[f.name] = value
    return out
