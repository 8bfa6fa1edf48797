"""The one registry of task pipelines, after fastembed's registry of model classes: each ``Task`` subclass in a
module of ``edgert.tasks`` declares what it serves (``tasks``), what it takes (``input_kind``), what ``edgert
import`` may set for it (``import_options``), whether it gives labelled scores (``labelled``) and the method bench
drives (``bench_call``). Everything else asks here: ``edgert.load``, the importer, the CLI's choices, ``edgert
check``, bench's workload, export, and the manifest schema's task enum (checked by a test).

Adding a task is adding a module to ``edgert/tasks/`` with one such class: it is found on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ..errors import TaskError
from .base import Task

#: what a task takes: texts, images, audio samples, or raw tensors by name
INPUT_KINDS = ("text", "image", "audio", "tensors")


@cache
def pipelines() -> dict[str, type[Task]]:
    """task name -> pipeline class, for every task a module of edgert.tasks declares."""
    from .. import tasks

    for info in pkgutil.iter_modules(tasks.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{tasks.__name__}.{info.name}")
    found: dict[str, type[Task]] = {}
    stack = list(Task.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.input_kind not in INPUT_KINDS:
            raise TypeError(f"{cls.__name__}.input_kind {cls.input_kind!r} is not one of {INPUT_KINDS}")
        for name in cls.tasks:
            if name in found and found[name] is not cls:
                raise TypeError(f"task {name!r} is declared by both {found[name].__name__} and {cls.__name__}")
            found[name] = cls
    return dict(sorted(found.items()))


def names() -> tuple[str, ...]:
    return tuple(pipelines())


def pipeline(task: str) -> type[Task]:
    """The pipeline class of a task, or TaskError naming the tasks there are."""
    cls = pipelines().get(task)
    if cls is None:
        raise TaskError(f"edgert has no {task!r} pipeline (it runs {', '.join(pipelines())})")
    return cls


def importable() -> tuple[str, ...]:
    """The tasks ``edgert import`` can make a bundle for: each class's ``import_task``."""
    return tuple(sorted({cls.import_task for cls in pipelines().values() if cls.import_task}))


def with_input(kind: str) -> tuple[str, ...]:
    """The tasks whose pipelines take ``kind`` (text, image, audio or tensors)."""
    return tuple(name for name, cls in pipelines().items() if cls.input_kind == kind)


def eval_kinds(task: str) -> tuple[str, ...]:
    """The kinds of evaluation set a task's pipeline is scored on (empty: edgert eval does not score it)."""
    return pipeline(task).eval_kinds
