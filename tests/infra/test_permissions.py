"""The permissions list against the runtime's source: every AWS call a function makes is granted to it.

The adapters get their boto3 clients in the constructor (``dynamodb_client``, ``s3_client``…) and keep them on
``self``; this reads each class of the Lambda runtime with ``ast``, collects the API calls made on those attributes
(paginators included, helper methods followed), maps them to IAM actions and checks them against
``exportlake.iam``. No CDK, no network: botocore's service models only name the operations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest

from exportlake import iam as permissions
from infra.bundling import EXCLUDED_PACKAGE_PATHS, FUNCTIONS_DIR, PACKAGE

#: Client parameter names whose service is not the name's stem.
SERVICE_ALIASES = {"secrets": "secretsmanager"}
#: Objects built around a client (``Wrapper(boto3_client=secrets_client)``): what each of their methods calls.
WRAPPER_CALLS = {"SecretsProvider": {"get": ("get_secret_value",)}}
#: Attributes of a boto3 client that make no request.
NOT_REQUESTS = {"exceptions", "meta", "can_paginate", "close"}
#: Actions granted before the runtime calls them (the lead's runtime change adds the calls): planner clears a
#: re-queued result's message off the copy DLQ; copier lists the multipart uploads of killed runs to abort them.
AHEAD_OF_THE_RUNTIME: dict[str, set[str]] = {f: set() for f in permissions.FUNCTIONS}


@dataclass
class ScannedClass:
    """One class of the runtime that holds a boto3 client: its methods' direct AWS calls and self-calls."""

    name: str  # module.Class
    calls: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # method → {(service, boto3 method)}
    self_calls: dict[str, set[str]] = field(default_factory=dict)

    def reach(self, method: str) -> set[tuple[str, str]]:
        """The AWS calls of ``method`` and of every method of the class it calls, transitively."""
        seen, todo, out = set(), [method], set()
        while todo:
            m = todo.pop()
            if m in seen or m not in self.calls:
                continue
            seen.add(m)
            out |= self.calls[m]
            todo.extend(self.self_calls[m])
        return out


def _on_self(node: ast.expr) -> bool:
    """``self.<attr>``."""
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _service_of(param: str) -> str:
    stem = param.removesuffix("_client")
    return SERVICE_ALIASES.get(stem, stem)


def _client_attrs(init: ast.FunctionDef) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """``self.<attr>`` holding a client (attr → service) or a wrapper of one (attr → (service, wrapper))."""
    params = {a.arg for a in init.args.args + init.args.kwonlyargs if a.arg.endswith("_client")}
    clients: dict[str, str] = {}
    wrappers: dict[str, tuple[str, str]] = {}
    for node in ast.walk(init):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if not isinstance(target, ast.Attribute) or not _on_self(target):
            continue
        if isinstance(value, ast.Name) and value.id in params:
            clients[target.attr] = _service_of(value.id)
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            used = [a.id for a in [*value.args, *(k.value for k in value.keywords)] if isinstance(a, ast.Name)]
            for name in used:
                if name in params:
                    wrappers[target.attr] = (_service_of(name), value.func.id)
    return clients, wrappers


def _scan_class(module: str, cls: ast.ClassDef) -> ScannedClass | None:
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    if "__init__" not in methods:
        return None
    clients, wrappers = _client_attrs(methods["__init__"])
    if not clients and not wrappers:
        return None
    scanned = ScannedClass(f"{module}.{cls.name}")
    for name, method in methods.items():
        calls: set[tuple[str, str]] = set()
        self_calls: set[str] = set()
        for node in ast.walk(method):
            # A client method passed on rather than called (``self._conditional(self._db.put_item, ...)``).
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and _on_self(node.value)
                and node.value.attr in clients
                and node.attr not in NOT_REQUESTS | {"get_paginator"}
            ):
                calls.add((clients[node.value.attr], node.attr))
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner, attr = node.func.value, node.func.attr
            if isinstance(owner, ast.Name) and owner.id == "self" and attr in methods:
                self_calls.add(attr)
                continue
            if not isinstance(owner, ast.Attribute) or not _on_self(owner):
                continue
            if owner.attr in clients:
                service = clients[owner.attr]
                if attr == "get_paginator":
                    (operation,) = node.args
                    assert isinstance(operation, ast.Constant), f"{scanned.name}.{name}: a paginator by variable"
                    calls.add((service, str(operation.value)))
                elif attr not in NOT_REQUESTS:
                    calls.add((service, attr))
            elif owner.attr in wrappers:
                service, wrapper = wrappers[owner.attr]
                known = WRAPPER_CALLS.get(wrapper, {})
                assert attr in known, f"{scanned.name}.{name}: teach this test what {wrapper}.{attr} calls"
                calls |= {(service, m) for m in known[attr]}
        scanned.calls[name] = calls
        scanned.self_calls[name] = self_calls
    return scanned


def runtime_modules() -> list[tuple[str, Path]]:
    """The modules the Lambda asset ships (not the CLI or the local mode), as (dotted name, path)."""
    out = []
    for path in sorted((FUNCTIONS_DIR / PACKAGE).rglob("*.py")):
        rel = path.relative_to(FUNCTIONS_DIR / PACKAGE)
        if rel.parts[0] in EXCLUDED_PACKAGE_PATHS:
            continue
        out.append((".".join((PACKAGE, *rel.with_suffix("").parts)).removesuffix(".__init__"), path))
    return out


@cache
def scanned_classes() -> dict[str, ScannedClass]:
    found: dict[str, ScannedClass] = {}
    for module, path in runtime_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and (scanned := _scan_class(module, node)) is not None:
                found[scanned.name] = scanned
    return found


@cache
def _client(service: str) -> Any:
    return boto3.session.Session(region_name="eu-west-1").client(  # type: ignore[call-overload]
        service, aws_access_key_id="none", aws_secret_access_key="none"
    )


def action_of(service: str, method: str) -> str:
    """The IAM action of a boto3 call, through botocore's name of the operation."""
    mapping = _client(service).meta.method_to_api_mapping
    assert method in mapping, f"{service} has no API {method!r}"
    return permissions.iam_action(service, mapping[method])


def _named(cls: str) -> set[str]:
    """Methods of ``cls`` the permissions list names for some function or for the CLI."""
    names = set(permissions.CLI_ONLY.get(cls, ()))
    for uses in permissions.USES.values():
        names |= set(uses.get(cls, ()))
    return names


def _is_entry_point(method: str) -> bool:
    return not method.startswith("_") or (method.startswith("__") and method.endswith("__"))


def used_methods(function: str) -> dict[str, set[str]]:
    """Per class the methods ``function`` uses: those named for it, plus public ones named nowhere (assumed used
    by every function that uses the class, so a new method never escapes the check)."""
    out: dict[str, set[str]] = {}
    for cls, methods in permissions.USES[function].items():
        scanned = scanned_classes()[cls]
        if methods == permissions.ALL_METHODS:
            out[cls] = set(scanned.calls)
            continue
        unnamed = {m for m in scanned.calls if _is_entry_point(m) and m not in _named(cls)}
        out[cls] = set(methods) | unnamed
    return out


def required_actions(function: str) -> dict[str, set[str]]:
    """IAM action → the ``Class.method`` calls that need it, for every class method ``function`` uses."""
    out: dict[str, set[str]] = {}
    for cls, methods in used_methods(function).items():
        for method in methods:
            for service, call in scanned_classes()[cls].reach(method):
                action = action_of(service, call)
                for needed in (action, *permissions.IMPLIED.get(action, ())):
                    out.setdefault(needed, set()).add(f"{cls.rsplit('.', 1)[1]}.{method} ({call})")
    return out


def test_the_scan_sees_the_calls_it_must() -> None:
    """The scan is live: known calls of each adapter show up (direct, paginated, via helpers, via a wrapper)."""
    classes = scanned_classes()
    ledger = classes["exportlake.adapters.ledger.DynamoLedger"]
    assert ledger.reach("entries") == {("dynamodb", "query")}  # a paginator
    # passed to the _conditional helper (a fresh claim is a put, a claim again an update)
    assert ledger.reach("claim_queued") == {("dynamodb", "put_item"), ("dynamodb", "update_item")}
    assert ledger.reach("start_copy") == {("dynamodb", "update_item"), ("dynamodb", "get_item")}
    assert ledger.reach("all_entries") == {("dynamodb", "scan")}
    assert classes["exportlake.adapters.queue.SqsJobQueue"].reach("send") == {("sqs", "send_message_batch")}
    assert classes["exportlake.adapters.secrets.SecretCredentials"].reach("__call__") == {
        ("secretsmanager", "get_secret_value")
    }
    sink = classes["exportlake.adapters.s3sink.MultipartSink"]
    assert {c for m in sink.calls for c in sink.reach(m)} >= {
        ("s3", "create_multipart_upload"),
        ("s3", "upload_part"),
        ("s3", "complete_multipart_upload"),
        ("s3", "abort_multipart_upload"),
        ("s3", "put_object"),
    }
    assert action_of("s3", "list_objects_v2") == "s3:ListBucket"
    assert action_of("sqs", "send_message_batch") == "sqs:SendMessage"
    assert action_of("dynamodb", "update_item") == "dynamodb:UpdateItem"


def test_every_class_making_aws_calls_is_in_the_permissions_list() -> None:
    listed = set(permissions.CLI_ONLY) | {c for uses in permissions.USES.values() for c in uses}
    unlisted = sorted(c for c, s in scanned_classes().items() if any(s.calls.values()) and c not in listed)
    assert not unlisted, f"add to permissions.USES (the functions that use it) or permissions.CLI_ONLY: {unlisted}"


def test_the_permissions_list_names_only_what_exists() -> None:
    """No stale entry: every class and method the list names is in the runtime (renames must follow)."""
    classes = scanned_classes()
    entries = [*permissions.CLI_ONLY.items(), *(i for uses in permissions.USES.values() for i in uses.items())]
    for cls, methods in entries:
        if cls in permissions.CLI_ONLY and permissions.CLI_ONLY[cls] == permissions.ALL_METHODS:
            continue  # a CLI-only class may even hold no client the scan recognizes
        assert cls in classes, f"{cls} is not a class of the runtime holding a boto3 client"
        if methods != permissions.ALL_METHODS:
            missing = set(methods) - set(classes[cls].calls)
            assert not missing, f"{cls} has no method(s) {sorted(missing)}"


@pytest.mark.parametrize("function", permissions.FUNCTIONS)
def test_every_call_a_function_makes_is_granted(function: str) -> None:
    required = required_actions(function)
    missing = {a: sorted(by) for a, by in required.items() if a not in permissions.code_actions(function)}
    assert not missing, f"{function} calls AWS APIs permissions.GRANTS does not allow it: {missing}"


@pytest.mark.parametrize("function", permissions.FUNCTIONS)
def test_no_grant_beyond_the_calls(function: str) -> None:
    """Exactly: nothing is granted that no used method calls (but the calls the runtime is about to make)."""
    unused = permissions.code_actions(function) - set(required_actions(function))
    assert unused <= AHEAD_OF_THE_RUNTIME[function], f"{function} is granted {sorted(unused)} it never calls"


def test_cli_only_calls_are_granted_to_no_function() -> None:
    """``exportlake status`` scans the ledger with the user's credentials; no function role may scan it."""
    scan = scanned_classes()["exportlake.adapters.ledger.DynamoLedger"].reach("all_entries")
    assert scan == {("dynamodb", "scan")}
    for function in permissions.FUNCTIONS:
        assert "dynamodb:Scan" not in permissions.role_actions(function)
