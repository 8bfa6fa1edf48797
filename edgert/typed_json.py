"""Typed records to and from JSON, one converter for every result edgert writes (bench today; eval, tune and history
build on it): frozen dataclasses in, plain JSON out, and back with every value checked against its field's type.

Structuring is strict: an int field takes a whole number (not 1.5, not true, not "3"), a float field a finite
number, a str field text, a tuple field a list; a missing required key is named. A bad file is refused in one
line that says where (``$.configs[0].latency.samples_ns[3]: expected int``), never half loaded. Unknown keys are
ignored so that a newer file's additions, and the derived figures written for readers (statistics, medians),
never stop an older reader.

A record may define ``derived(self) -> dict``: figures computed from its fields, written beside them for people
and scripts that read the JSON, and ignored when it is read back (they are recomputed from the fields).

Needs cattrs (the ``bench`` extra); the runtime never imports this module.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, mapping_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from .errors import RecordError

T = TypeVar("T")
#: how many of a bad file's problems the one-line error lists
SHOWN = 3


def _int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r:.40}")
    return value


def _float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"expected a finite number, got {value!r:.40}")
    return float(value)


def _str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r:.40}")
    return value


def _bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r:.40}")
    return value


def _path(value: object, _: type) -> Path:
    return Path(_str(value, str))


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "text"}
    return names.get(type(value), type(value).__name__)


def _checked(hook: Any, wanted: type, name: str) -> Any:
    """HOOK, after checking that the value is a WANTED at all: cattrs would iterate a string as a list of
    characters, or read a list's items as an object's fields."""

    def structure(value: object, cl: Any) -> Any:
        if not isinstance(value, wanted):
            raise TypeError(f"expected {name}, got {_kind(value)}")
        return hook(value, cl)

    return structure


def _is_list_tuple(t: Any) -> bool:  # tuple[X, ...]: a JSON list of any length
    return get_origin(t) is tuple and len(get_args(t)) == 2 and get_args(t)[1] is Ellipsis


def _is_dict(t: Any) -> bool:
    return get_origin(t) is dict


def _is_record(t: Any) -> bool:
    return isinstance(t, type) and dataclasses.is_dataclass(t)


def _has_derived(cls: type) -> bool:
    return dataclasses.is_dataclass(cls) and callable(getattr(cls, "derived", None))


def _with_derived(cls: type) -> Any:
    base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, converter)

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = base(obj)
        out.update(converter.unstructure(obj.derived()))
        return out

    return unstructure


converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
for _type, _hook in ((int, _int), (float, _float), (str, _str), (bool, _bool), (Path, _path)):
    converter.register_structure_hook(_type, _hook)
converter.register_structure_hook_factory(
    _is_list_tuple, lambda t: _checked(homogenous_tuple_structure_factory(t, converter), list, "a list")
)
converter.register_structure_hook_factory(
    _is_dict, lambda t: _checked(mapping_structure_factory(t, converter), dict, "an object")
)
converter.register_structure_hook_factory(
    _is_record, lambda t: _checked(make_dict_structure_fn(t, converter), dict, "an object")
)
converter.register_unstructure_hook(Path, str)
converter.register_unstructure_hook_factory(_has_derived, _with_derived)


def dump(record: object) -> Any:
    """A record as JSON-ready values: dicts, lists, numbers, text (derived figures included)."""
    return converter.unstructure(record)


def load(cls: type[T], data: object, what: str) -> T:
    """DATA checked and built as CLS; RecordError names WHAT and where the data is wrong."""
    if dataclasses.is_dataclass(cls) and not isinstance(data, dict):
        raise RecordError(f"{what}: expected a JSON object, got {_kind(data)}")
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        problems = _problems(exc)
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise RecordError(f"{what}: {'; '.join(problems[:SHOWN])}{more}") from None


def load_versioned(
    cls: type[T],
    data: object,
    what: str,
    schema: str,
    older: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
    kind: str,
) -> T:
    """DATA as CLS whichever format version wrote it: SCHEMA itself, or one of OLDER's, brought to SCHEMA's
    layout by its function first. KIND names the result in messages ("bench", "eval")."""
    if not isinstance(data, dict):
        raise RecordError(f"{what}: not an edgert {kind} result (a JSON {type(data).__name__})")
    version = data.get("schema")
    if version in older:
        try:
            data = older[version](data)
        except (AttributeError, KeyError, TypeError, IndexError) as exc:
            raise RecordError(f"{what}: not a readable {version} result ({type(exc).__name__}: {exc})") from None
    elif version != schema:
        known = ", ".join(repr(s) for s in (schema, *older))
        raise RecordError(f"{what}: not an edgert {kind} result (schema {version!r}; this version reads {known})")
    return load(cls, data, what)


def _problems(exc: BaseException) -> list[str]:
    """'$.a.b: why' for each problem cattrs found, with the reason a hook or a record's own check gave."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return [str(exc)]
    out = []
    for line, (cause, path) in zip(cattrs.transform_error(exc), _leaves(exc, "$")):
        where = line.rsplit(" @ ", 1)[-1] if " @ " in line else path
        if isinstance(cause, KeyError):
            reason = "required key missing"
        elif (isinstance(cause, ValueError) or str(cause).startswith("expected ")) and str(cause):
            reason = str(cause)  # a hook's or a record's own check
        else:  # Python's words for a wrong shape ("'int' object is not iterable"): say what was expected
            reason = line.split(" @ ")[0].replace("invalid value for type, ", "")
        out.append(f"{where}: {reason}")
    return out


def _leaves(exc: BaseException, path: str) -> list[tuple[BaseException, str]]:
    """The innermost exceptions of a cattrs validation error, in the order transform_error lists them."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return [(exc, path)]
    out = []
    for inner in exc.exceptions:
        out.extend(_leaves(inner, path))
    return out
