"""Run the template's functions in this process, as Lambda would run each in its own container.

Handlers are imported from their CodeUri (with the layers' directories on the path, like /opt/python)
and called with a Lambda-like context. One invocation per function at a time, as in one warm Lambda
container: Powertools' resolver keeps the current event on the app object and is not thread-safe.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit_trail.local.template import ACCOUNT_ID, REGION, Function, Schedule, Template

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    """The attributes Powertools and the handlers read from the Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN, in the local account."""
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        """Always $LATEST locally."""
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        """Where Lambda would log."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        """A stream name of the local run."""
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        """Time left of the function's template Timeout."""
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


class UnknownSchedule(LookupError):
    """No scheduled function answers to that name."""


class Runtime:
    """The template's functions, imported on first use."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.functions: dict[str, Function] = template.functions()
        self.schedules: list[Schedule] = template.schedules()
        self._handlers: dict[str, Handler] = {}
        self._locks = {name: threading.Lock() for name in self.functions}
        self._import_lock = threading.Lock()
        for directory in [*template.layer_dirs(), *{f.code_dir for f in self.functions.values()}]:
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))

    def handler(self, name: str) -> Handler:
        """The function's handler, imported once."""
        with self._import_lock:
            if name not in self._handlers:
                function = self.functions[name]
                module = importlib.import_module(function.module)
                self._handlers[name] = getattr(module, function.attribute)
            return self._handlers[name]

    def invoke(self, name: str, event: Any) -> Any:
        """Call one function with `event`, one invocation of it at a time."""
        function = self.functions[name]
        handler = self.handler(name)
        with self._locks[name]:
            context = LambdaContext(function.logical_id, function.memory, function.timeout)
            return handler(event, context)

    def schedule(self, name: str) -> Schedule:
        """A schedule by any of its names (see `aliases`); the first in template order when several match,
        so `reports` runs the reports function's first schedule."""
        wanted = _normal(name)
        for schedule in self.schedules:
            aliases = self.aliases(schedule)
            if wanted in aliases or wanted.rstrip("s") in {alias.rstrip("s") for alias in aliases}:
                return schedule
        known = ", ".join(self.schedule_names()) or "none"
        raise UnknownSchedule(f"no scheduled function {name!r}; known: {known}")

    def aliases(self, schedule: Schedule) -> set[str]:
        """Names a schedule answers to: its display name, its event name, its input's `schedule`, its
        function's logical id and that id without `Function` (`reports`, `detect-sweep`)."""
        names = {self.display_name(schedule), _normal(schedule.name), _normal(schedule.function)}
        names.add(_normal(schedule.function.removesuffix("Function")))
        if isinstance(schedule.input, dict) and isinstance(schedule.input.get("schedule"), str):
            names.add(_normal(schedule.input["schedule"]))
        return names

    def display_name(self, schedule: Schedule) -> str:
        """The input's `action` when no other schedule shares it, else the schedule's own name."""
        actions = [s.action for s in self.schedules]
        if schedule.action and actions.count(schedule.action) == 1:
            return _normal(schedule.action)
        if isinstance(schedule.input, dict) and isinstance(schedule.input.get("schedule"), str):
            return _normal(schedule.input["schedule"])
        return _normal(schedule.name)

    def schedule_names(self) -> list[str]:
        """The names `audit-trail invoke` shows, one per schedule."""
        return [self.display_name(schedule) for schedule in self.schedules]


def _normal(name: str) -> str:
    """`MonthlyPciDss`, `monthly_pci_dss` and `monthly-pci-dss` all become `monthly-pci-dss`."""
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name.strip())
    return kebab.replace("_", "-").lower()


def reset_function_state(runtime: Runtime) -> None:
    """Forget what the functions cached about the previous environment (settings, transport, clients).

    Handlers cache settings, the database connection and AWS clients across warm invocations, as they
    should in Lambda; a second stack in the same process (tests) must not reuse the first one's.
    """
    from audit_common.db import reset_transport
    from audit_common.settings import get_settings

    get_settings.cache_clear()
    reset_transport()
    try:
        from aws_lambda_powertools.utilities.parameters import base as parameters_base

        # Powertools caches one boto3 client per provider, bound to the endpoint of its first use.
        getattr(parameters_base, "DEFAULT_PROVIDERS", {}).clear()
    except ImportError:  # pragma: no cover - Powertools is a main dependency
        pass
    code_dirs = {str(function.code_dir) for function in runtime.functions.values()}
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None) or ""
        if not any(source.startswith(directory + os.sep) for directory in code_dirs):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == module.__name__:
                clear()


def configure_function_logs(level: str) -> None:
    """Apply the log level to the functions' shared Powertools logger.

    It reads POWERTOOLS_LOG_LEVEL when audit_common is first imported, which in this process may have
    happened before the stack set the environment (the CLI imports it).
    """
    from audit_common.observability import logger

    logger.setLevel(level)
    logger.append_keys(service="audit-trail-local")
