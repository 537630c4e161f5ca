"""Read the stack's definition from template.yaml: functions, routes, schedules and AWS resources.

The local stack never repeats the template: a route, schedule, bucket or environment variable added
there appears locally without code. Intrinsic functions are evaluated against parameter defaults
(overridable) and the physical names the local AWS (moto) gave each resource, which is enough for
what functions receive: environment values, names and ARNs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

STACK_NAME: Final = "audit-trail-local"
REGION: Final = "us-east-1"
ACCOUNT_ID: Final = "123456789012"


class _NoValue:
    """`AWS::NoValue`: the key or list item that holds it disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

# Short-form tags (`!Ref X`, `!GetAtt A.B`, `!If [...]`) become the long form ({"Ref": X}, {"Fn::GetAtt": ...}).
_SHORT_TAGS: Final = {"Ref": "Ref", "Condition": "Condition"}


class _TemplateLoader(yaml.SafeLoader):
    """A safe YAML loader that understands CloudFormation's short intrinsic tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {_SHORT_TAGS.get(tag_suffix, f"Fn::{tag_suffix}"): value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_yaml(path: Path) -> dict[str, Any]:
    """The template as plain data, intrinsic tags in their long form."""
    data = yaml.load(path.read_text(), Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path}: not a CloudFormation/SAM template (no Resources)")
    return data


@dataclass(frozen=True)
class Route:
    """One API event of a function: `method` is upper case (ANY for any), `path` as in the template."""

    method: str
    path: str
    function: str
    pattern: re.Pattern[str]
    literal_segments: int
    authorizer: Authorizer | None = None
    """The Lambda authorizer API Gateway runs first (None: none, or IAM, which is not checked locally)."""

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters when `path` fits this route's path template, else None."""
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer of a SAM Api (Auth.Authorizers)."""

    name: str
    function: str
    payload: str
    """TOKEN or REQUEST."""
    headers: tuple[str, ...]
    """Identity source headers: a request without them is refused (401) before the function runs."""


@dataclass(frozen=True)
class Schedule:
    """One ScheduleV2/Schedule event: what it sends (`input`) and when."""

    name: str
    function: str
    expression: str
    input: Any

    @property
    def action(self) -> str | None:
        """The `action` of the schedule's input, the name `audit-trail invoke` knows it by."""
        return self.input.get("action") if isinstance(self.input, dict) else None


@dataclass
class Function:
    """An AWS::Serverless::Function as the local stack runs it."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """Python module of the handler (`ingest.handler`)."""
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        """Name of the handler in its module (`lambda_handler`)."""
        return self.handler.rsplit(".", 1)[1]


def route_pattern(path: str) -> tuple[re.Pattern[str], int]:
    """A regex for an API Gateway path template (`{name}` one segment, `{name+}` the rest)."""
    parts: list[str] = []
    literal = 0
    for segment in path.strip("/").split("/"):
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        single = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            parts.append(f"(?P<{greedy[1]}>.+)")
        elif single:
            parts.append(f"(?P<{single[1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literal += 1
    return re.compile("/" + "/".join(parts)), literal


class Template:
    """A SAM template with its intrinsics evaluated for the local stack."""

    def __init__(self, path: Path, parameters: Mapping[str, str] | None = None) -> None:
        self.path = path.resolve()
        self.root = self.path.parent
        self.data = load_yaml(self.path)
        self.parameters: dict[str, Any] = {
            name: spec.get("Default", "") for name, spec in (self.data.get("Parameters") or {}).items()
        }
        self.parameters.update(parameters or {})
        self.resources: dict[str, dict[str, Any]] = self.data["Resources"]
        # Physical ids and attributes of provisioned resources: {logical id: {"Ref": ..., "Arn": ...}}.
        self.physical: dict[str, dict[str, str]] = {}
        self._conditions: dict[str, bool] = {}

    # -- reading -----------------------------------------------------------------------------------

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one type (by logical id), skipping those whose Condition is false."""
        return {
            name: resource
            for name, resource in self.resources.items()
            if resource.get("Type") == resource_type and self.condition(resource.get("Condition"))
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties, evaluated."""
        value = self.evaluate(self.resources[logical_id].get("Properties") or {})
        return value if isinstance(value, dict) else {}

    def functions(self) -> dict[str, Function]:
        """Every serverless function with its merged (Globals + own) environment."""
        globals_ = (self.data.get("Globals") or {}).get("Function") or {}
        global_env = self.evaluate(((globals_.get("Environment") or {}).get("Variables")) or {})
        found: dict[str, Function] = {}
        for name in self.of_type("AWS::Serverless::Function"):
            props = self.properties(name)
            own_env = (props.get("Environment") or {}).get("Variables") or {}
            env = {key: _as_env(value) for key, value in {**global_env, **own_env}.items() if value is not NO_VALUE}
            found[name] = Function(
                logical_id=name,
                code_dir=(self.root / str(props.get("CodeUri") or globals_.get("CodeUri") or ".")).resolve(),
                handler=str(props.get("Handler") or globals_.get("Handler")),
                timeout=int(props.get("Timeout") or globals_.get("Timeout") or 3),
                memory=int(props.get("MemorySize") or globals_.get("MemorySize") or 128),
                environment=env,
            )
        return found

    def layer_dirs(self) -> list[Path]:
        """Content directories of the template's layers (what Lambda mounts under /opt/python)."""
        return [
            (self.root / str(self.properties(name).get("ContentUri", "."))).resolve()
            for name in self.of_type("AWS::Serverless::LayerVersion")
        ]

    def _events(self, kinds: tuple[str, ...]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        """(function, event name, evaluated properties, raw properties) of the functions' events."""
        events: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        for function in self.of_type("AWS::Serverless::Function"):
            raw = self.resources[function].get("Properties", {}).get("Events") or {}
            for event_name, event in raw.items():
                if event.get("Type") in kinds:
                    raw_props = event.get("Properties") or {}
                    props = self.evaluate(raw_props)
                    events.append((function, event_name, props if isinstance(props, dict) else {}, raw_props))
        return events

    def authorizers(self, api: str) -> tuple[str | None, dict[str, Authorizer]]:
        """A SAM Api's default authorizer name and its Lambda authorizers."""
        raw_auth = (self.resources.get(api, {}).get("Properties") or {}).get("Auth") or {}
        default = self.evaluate(raw_auth.get("DefaultAuthorizer"))
        found: dict[str, Authorizer] = {}
        for name, spec in (raw_auth.get("Authorizers") or {}).items():
            arn = spec.get("FunctionArn")
            target = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
            if not target:
                continue  # Cognito user pools and the like: not run locally
            function = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
            identity = self.evaluate(spec.get("Identity") or {})
            payload = str(self.evaluate(spec.get("FunctionPayloadType", "TOKEN"))).upper()
            headers = identity.get("Headers") or ([identity["Header"]] if identity.get("Header") else [])
            if payload == "TOKEN" and not headers:
                headers = ["Authorization"]
            found[name] = Authorizer(name, function, payload, tuple(str(h) for h in headers))
        return (str(default) if default else None), found

    def routes(self) -> list[Route]:
        """API routes, most specific first (API Gateway prefers literal segments over parameters)."""
        routes = []
        for function, _name, props, raw in self._events(("Api",)):
            path, method = str(props["Path"]), str(props["Method"]).upper()
            pattern, literal = route_pattern(path)
            api = raw.get("RestApiId")
            api_id = api.get("Ref") if isinstance(api, dict) else None
            default, authorizers = self.authorizers(str(api_id)) if api_id else (None, {})
            chosen = (props.get("Auth") or {}).get("Authorizer", default)
            routes.append(
                Route(
                    "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                    path,
                    function,
                    pattern,
                    literal,
                    authorizers.get(str(chosen)) if chosen else None,
                )
            )
        return sorted(routes, key=lambda r: (-r.literal_segments, r.method == "ANY", r.path))

    def schedules(self) -> list[Schedule]:
        """Scheduled events (EventBridge Scheduler or rules) with their explicit input."""
        found = []
        for function, name, props, _raw in self._events(("ScheduleV2", "Schedule")):
            raw_input = props.get("Input")
            found.append(
                Schedule(
                    name=name,
                    function=function,
                    expression=str(props.get("ScheduleExpression", "")),
                    input=json.loads(raw_input) if isinstance(raw_input, str) else (raw_input or {}),
                )
            )
        return found

    # -- evaluating --------------------------------------------------------------------------------

    def condition(self, name: str | None) -> bool:
        """The value of a named condition (no name: true)."""
        if name is None:
            return True
        if name not in self._conditions:
            self._conditions[name] = bool(self.evaluate((self.data.get("Conditions") or {})[name]))
        return self._conditions[name]

    def evaluate(self, value: Any) -> Any:
        """Evaluate intrinsics recursively; `AWS::NoValue` removes the key or item holding it."""
        if isinstance(value, list):
            items = [self.evaluate(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._intrinsics.get(key)
            if handler is not None:
                return handler(self, arg)
        evaluated = {key: self.evaluate(item) for key, item in value.items()}
        return {key: item for key, item in evaluated.items() if item is not NO_VALUE}

    def pseudo(self, name: str) -> Any:
        """Pseudo parameters as the local stack defines them."""
        return {
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }[name]

    def ref(self, name: str) -> Any:
        """`Ref`: a parameter's value, a pseudo parameter, or a resource's physical id."""
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        # Resources the local stack does not create (log groups, IAM, layers) still need a stable value.
        return f"{STACK_NAME}-{name}"

    def get_att(self, name: str, attribute: str) -> Any:
        """`Fn::GetAtt` of a provisioned resource (Arn, TopicName, ...)."""
        known = self.physical.get(name, {})
        if attribute in known:
            return known[attribute]
        return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{name}/{attribute}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.evaluate(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expression = match[1]
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                resource, attribute = expression.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.evaluate(when_true if self.condition(name) else when_false)

    def _get_att(self, arg: Any) -> Any:
        name, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.get_att(name, attribute)

    _intrinsics: Final[dict[str, Callable[[Template, Any], Any]]] = {
        "Ref": lambda self, arg: self.ref(arg),
        "Condition": lambda self, arg: self.condition(arg),
        "Fn::Sub": lambda self, arg: self._sub(arg),
        "Fn::If": lambda self, arg: self._if(arg),
        "Fn::GetAtt": lambda self, arg: self._get_att(arg),
        "Fn::Equals": lambda self, arg: str(self.evaluate(arg[0])) == str(self.evaluate(arg[1])),
        "Fn::Not": lambda self, arg: not self.evaluate(arg[0]),
        "Fn::And": lambda self, arg: all(self.evaluate(item) for item in arg),
        "Fn::Or": lambda self, arg: any(self.evaluate(item) for item in arg),
        "Fn::Join": lambda self, arg: str(arg[0]).join(str(item) for item in self.evaluate(arg[1])),
        "Fn::Select": lambda self, arg: self.evaluate(arg[1])[int(self.evaluate(arg[0]))],
        "Fn::Split": lambda self, arg: str(self.evaluate(arg[1])).split(str(arg[0])),
    }


def _as_env(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def find_template(start: Path | None = None) -> Path:
    """template.yaml in `start` (default: the current directory) or a parent, else the package's repository."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "template.yaml"
        if candidate.is_file():
            return candidate
    # An editable install runs from the repository: sdk/audit_trail/local/template.py -> repository root.
    candidate = Path(__file__).resolve().parents[3] / "template.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError("no template.yaml here or in a parent directory: run from the project, or pass --template")
