"""The /sandbox control endpoints: unsigned, sandbox-only (nothing like them exists at WeChat).

Routes are listed in the package docstring; each answers JSON, errors as {"code", "message"}.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from hw_mocks.wechat_sandbox.faults import faults_from, next_fault_from, non_negative
from hw_mocks.wechat_sandbox.orders import Scenario
from hw_mocks.wechat_sandbox.schema import ApiError, json_body

if TYPE_CHECKING:
    from hw_mocks.wechat_sandbox.server import SandboxApp


def handle(app: SandboxApp, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Status and JSON-ready data for one control request."""
    try:
        return _route(app, method, path, body)
    except ApiError as err:
        return err.status, err.body()


def _route(app: SandboxApp, method: str, path: str, body: bytes) -> tuple[int, Any]:
    book = app.book
    if (method, path) == ("POST", "/sandbox/payment-codes"):
        req = _json(body)
        scenario, delay = req.get("scenario"), req.get("delay_s")
        if scenario not in set(Scenario) or not (delay is None or non_negative(delay)):
            valid = ", ".join(Scenario)
            raise _bad(f"scenario must be one of {valid}; delay_s ≥ 0")
        return 200, {"auth_code": book.issue_code(Scenario(scenario), delay)}
    if (method, path) == ("POST", "/sandbox/scan"):
        code_url = _json(body).get("code_url")
        if not isinstance(code_url, str):
            raise _bad("code_url (string) is required")
        return 200, book.scan(code_url)
    if (method, path) == ("GET", "/sandbox/orders"):
        return 200, {"orders": book.views()}
    if method == "GET" and path.startswith("/sandbox/orders/"):
        return 200, book.view(unquote(path.removeprefix("/sandbox/orders/")))
    if path == "/sandbox/faults" and method in ("GET", "POST"):
        if method == "POST":
            try:
                app.faults = faults_from(_json(body))
            except ValueError as exc:
                raise _bad(str(exc)) from exc
        return 200, asdict(app.faults)
    if path == "/sandbox/faults/next" and method in ("GET", "POST", "DELETE"):
        if method == "POST":
            try:
                app.next_faults.add(next_fault_from(_json(body)))
            except ValueError as exc:
                raise _bad(str(exc)) from exc
        elif method == "DELETE":
            app.next_faults.clear()
        return 200, {"pending": [item.as_json() for item in app.next_faults.pending()]}
    if path == "/sandbox/clock" and method in ("GET", "POST"):
        if method == "POST":
            req = _json(body)
            advance = req.get("advance_s")
            if set(req) != {"advance_s"} or not non_negative(advance):
                raise _bad('body must be {"advance_s": seconds ≥ 0}')
            book.advance_clock(float(cast(float, advance)))
        return 200, {"now": book.clock(), "offset_s": book.clock.offset_s}
    if (method, path) == ("GET", "/sandbox/notifications"):
        notifier = app.notifier
        if notifier is None:
            return 200, {"enabled": False, "notifications": []}
        return 200, {"enabled": True, "notifications": notifier.views()}
    if (method, path) == ("POST", "/sandbox/reset"):
        app.reset()
        return 200, {"orders": []}
    raise ApiError(404, "NOT_FOUND", f"no sandbox endpoint {method} {path}", 0)


def _json(body: bytes) -> dict[str, Any]:
    return json_body(body or b"{}")


def _bad(message: str) -> ApiError:
    return ApiError(400, "PARAM_ERROR", message, 0)
