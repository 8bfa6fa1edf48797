"""Command-line arguments generated from the options dataclasses (edgert.options): each field's flag, type,
choices, help and default come from its declaration, so they are written once. ``FLAGS`` remembers each option's
flag, so that an ``OptionError("window", ...)`` from the library is shown as ``--window``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import OptionError

#: option name -> the flag it was given on the command line; filled as parsers are built
FLAGS: dict[str, str] = {}


def _bare(hint: Any) -> Any:
    """int from `int | None`, the element type of a tuple, or the hint itself."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _bare(args[0]) if len(args) == 1 else hint
    return hint


def _shown(f: dataclasses.Field[Any]) -> str | None:
    if f.metadata.get("shown") is not None:
        return str(f.metadata["shown"])
    default = f.default
    if default is dataclasses.MISSING or default in (None, False, (), ""):
        return None
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def add_options(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> None:
    """One argument per CLI field of ``cls``; unset arguments parse to None, so the dataclass default applies."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli") or f.name in skip:
            continue
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        FLAGS[f.name] = flag
        shown = _shown(f)
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": meta["help"] + (f" (default: {shown})" if shown else ""),
        }
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kw["required"] = True
        hint = _bare(hints[f.name])
        if meta.get("parse"):
            kw["type"] = parser_type(meta["parse"], flag)
        elif hint is bool:
            kw["action"] = argparse.BooleanOptionalAction if f.default is True else "store_true"
            if kw["action"] == "store_true":
                kw["default"] = None
        elif hint in (int, float):
            kw["type"] = hint
        if meta.get("many"):
            kw["action"] = "append"
        if meta.get("choices"):
            choices = meta["choices"]
            kw["choices"] = LazyChoices(choices) if callable(choices) else list(choices)
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        parser.add_argument(flag, **kw)


class LazyChoices:
    """Choices computed on first use (the task registry imports the pipelines): `edgert --help` stays light."""

    def __init__(self, compute: Callable[[], Iterable[Any]]):
        self._compute = compute
        self._values: list[Any] | None = None

    def _get(self) -> list[Any]:
        if self._values is None:
            self._values = list(self._compute())
        return self._values

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())

    def __contains__(self, value: object) -> bool:
        return value in self._get()

    def __len__(self) -> int:
        return len(self._get())


def from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """The options dataclass from parsed arguments: the given ones, the rest at their defaults."""
    values = dict(fixed)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") and f.name not in values:
            value = getattr(args, f.name, None)
            if value is not None:
                values[f.name] = tuple(value) if f.metadata.get("many") else value
    return cls(**values)


def flag_for(error: OptionError) -> str:
    """An OptionError as the command line says it: the flag, then the message."""
    return f"{FLAGS.get(error.option, error.option)} {error.message}"


def parser_type(parse: Any, flag: str) -> Any:
    """Wraps a library parser so that its OptionError is an argparse usage error naming the flag."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    convert.__name__ = flag
    return convert
