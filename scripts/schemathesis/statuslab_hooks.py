"""schemathesis hooks for scripts/schemathesis.sh.

Faults that break the connection on purpose (a reset, silence, a truncated or garbled answer, a
stall) are what /fault/{kind} and fault steps in code lists are for; schemathesis would record
each as a network error. Before each call, such a fault named in a path parameter whose value
the document accepts (its `enum` or `pattern`) is swapped for `latency`, a fault that answers in
full: the edited value is as valid as the generated one. A value the document refuses is sent as
generated, so an invalid list stays invalid and must still get 400 ("negative data rejection"
stays on). tests/it checks the breaking faults byte for byte.

One more thing here is not about statuslab: `ast.parse` is made to run one call at a time. On
CPython 3.11 the AST constructor's recursion counter lives in interpreter-wide state,
so two workers parsing at once (hypothesis parses source to describe a lambda) can fail with
"SystemError: AST constructor recursion depth mismatch", which schemathesis reports as a runtime
error of the run, not of the server.
"""

import ast
import threading
from urllib.parse import quote, unquote

import jsonschema_rs
import schemathesis

_parse = ast.parse
_parse_lock = threading.Lock()


def _parse_one_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _parse_one_at_a_time

BREAKING = {"reset", "empty", "truncate", "malformed-chunk", "garbage", "close-after-headers", "stall"}

_validators = {}


def _valid(schema, value):
    """Whether `value` (decoded) is valid under the parameter's schema."""
    key = repr(schema)
    validator = _validators.get(key)
    if validator is None:
        validator = _validators[key] = jsonschema_rs.validator_for(schema)
    return validator.is_valid(value)


def _answering(schema, value):
    """The list `value` (percent-encoded, as it goes into the path) with breaking faults swapped,
    if the document accepts it; otherwise `value` unchanged."""
    if not isinstance(value, str):
        return value
    decoded = unquote(value)
    if schema is None or not _valid(schema, decoded):
        return value
    items = decoded.split(",")
    changed = False
    for i, item in enumerate(items):
        name, sep, weight = item.partition(":")
        if name.strip() in BREAKING:
            # Only the name changes: the spaces around it and the weight stay as generated, and
            # `latency` is in every list grammar, so the list stays valid.
            items[i] = name.replace(name.strip(), "latency") + sep + weight
            changed = True
    if not changed:
        return value
    swapped = ",".join(items)
    assert _valid(schema, swapped), (decoded, swapped)
    return quote(swapped, safe="")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if not case.path_parameters:
        return
    params = case.operation.path_parameters
    changed = False
    for name, value in list(case.path_parameters.items()):
        param = params.get(name)
        schema = param.definition.get("schema") if param is not None else None
        swapped = _answering(schema, value)
        if swapped != value:
            case.path_parameters[name] = swapped
            changed = True
    if changed:
        # schemathesis revalidates a value a before_call hook edits, and judges it in its
        # percent-encoded wire form (`%0A200%2Clatency`), which no code-list pattern matches: a
        # valid list would be relabelled invalid. The swap keeps validity by construction (only a
        # valid value is edited, and `latency` fits wherever the fault did), so the verdict
        # schemathesis reached at generation stands: the edit becomes the baseline it compares to.
        sync = getattr(case, "_sync_validated_hashes", None)
        if sync is None:
            raise RuntimeError("schemathesis changed its Case internals: update statuslab_hooks.py")
        sync()
