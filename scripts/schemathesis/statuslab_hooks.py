"""schemathesis hooks for scripts/schemathesis.sh.

Faults that break the connection on purpose (a reset, silence, a truncated or garbled answer, a
stall) are what /fault/{kind} and fault steps in code lists are for; schemathesis would record
each as a network error. Before each call, such a fault named in a path parameter is swapped for
`latency`, a fault that answers in full; tests/it checks the breaking ones byte for byte.
"""

from urllib.parse import quote, unquote

import schemathesis

BREAKING = {"reset", "empty", "truncate", "malformed-chunk", "garbage", "close-after-headers", "stall"}


def _answering(value):
    """The list `value` (percent-encoded, as it goes into the path) with breaking faults swapped."""
    if not isinstance(value, str):
        return value
    items = unquote(value).split(",")
    changed = False
    for i, item in enumerate(items):
        name, sep, weight = item.partition(":")
        if name.strip() in BREAKING:
            # Only the name changes: the spaces around it and the weight stay as generated.
            items[i] = name.replace(name.strip(), "latency") + sep + weight
            changed = True
    return quote(",".join(items), safe="") if changed else value


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.path_parameters:
        for name, value in list(case.path_parameters.items()):
            case.path_parameters[name] = _answering(value)
