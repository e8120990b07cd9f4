"""Each workflow declares the narrow remote operations it needs; the real clients provide them
with the same signatures (the engine hands the configured clients to the workflow's steps)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from integrations.erp.intacct import SageIntacct
from integrations.erp.qbo import QuickBooksOnline
from integrations.erp.xero import Xero
from integrations.procore import ProcoreClient
from workflows.commitment import CommitmentProcore, PurchaseERP
from workflows.subcontractor_invoice import BillERP, InvoiceProcore

ERPS = (QuickBooksOnline, Xero, SageIntacct)
CASES = [(InvoiceProcore, ProcoreClient), (CommitmentProcore, ProcoreClient)]
CASES += [(protocol, erp) for protocol in (BillERP, PurchaseERP) for erp in ERPS]


def members(protocol: type) -> dict[str, Any]:
    own = {name: value for name, value in vars(protocol).items() if not name.startswith("_")}
    return own | {name: None for name in getattr(protocol, "__annotations__", {})}


@pytest.mark.parametrize(("protocol", "client"), CASES,
                         ids=[f"{p.__name__}-{c.__name__}" for p, c in CASES])
def test_the_clients_provide_what_each_workflow_declares(protocol: type, client: type) -> None:
    wanted = members(protocol)
    assert wanted  # the protocol declares something
    for name, declared in wanted.items():
        assert hasattr(client, name) or name in getattr(client, "__annotations__", {}), (
            f"{client.__name__} has no {name}")
        if callable(declared):
            mine = list(inspect.signature(getattr(client, name)).parameters)
            theirs = list(inspect.signature(declared).parameters)
            assert mine == theirs, f"{client.__name__}.{name}{mine} != {theirs}"
