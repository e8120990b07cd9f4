"""Whether an ERP connection works, without changing anything there (`relink doctor`)."""

from __future__ import annotations

import contextlib

from integrations.base import ERPConnector
from integrations.errors import RemoteNotFound

NO_SUCH_BILL = "0"  # an id no ERP gives a bill


def check_access(connector: ERPConnector) -> None:
    """Read a bill that does not exist: an answer that there is none proves the ERP answers,
    accepts the credentials and knows the company. Raises the connector's RemoteError
    otherwise (rejected credentials, forbidden, unavailable)."""
    with contextlib.suppress(RemoteNotFound):  # the answer expected: it looked, found none
        connector.get_bill(NO_SUCH_BILL)
