"""The gateway's HTTP application (Starlette): FHIR R4 REST, chain endpoints, dashboard, metrics.

Theory of operation
-------------------
Every FHIR interaction is one or more chain transactions signed for the authenticated user
(:class:`Gateway.sign`) and committed through :class:`~.chain.ChainClient` (f+1 matching
replies), then answered from :class:`~.index.StoreIndex` (the node's store after commit):

=================  =========================================================================
create             ``add`` (Consent: ``grant``); 201 once committed and in the node's store
read / search      ``read`` query (audited on chain), then the store; 403 if the chain refuses
vread / _history   ``read`` with ``history`` (the policy lets only the patient see old versions)
update (If-Match)  ``modify`` naming the version's transaction: the chain refuses a stale one
delete             ``delete`` (Consent: ``revoke``)
transaction        every entry built and signed first, then submitted together (one PBFT batch
                   when they fit), answered with a ``transaction-response``
=================  =========================================================================

The chain's refusal reason is returned as an OperationOutcome coding (``urn:medbench:reason``)
with 403 (permission), 400 (malformed), 409/412 (a version that is no longer live). Anything
unexpected is a 500 OperationOutcome without a trace; hostile input is refused before parsing
(size, content type, JSON depth, ids, query values).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from medbench.gateway.chain_routes import chain_routes
from medbench.gateway.dashboard import dashboard_routes
from medbench.gateway.fhir import outcome
from medbench.gateway.fhir_routes import fhir_routes
from medbench.gateway.http import fhir_response
from medbench.gateway.service import Gateway


def build_app(gw: Gateway) -> Starlette:
    """The Starlette application of ``gw``."""
    routes = fhir_routes(gw) + chain_routes(gw) + dashboard_routes(gw)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return fhir_response(
            outcome(
                "error",
                "not-found" if code == 404 else "not-supported",
                "no such endpoint" if code == 404 else "method not allowed",
            ),
            code,
        )

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
