"""Clients for the remote systems relink talks to (Procore, the ERPs). The local simulator of
those systems is not a client: it lives in the top-level :mod:`sandbox` package.

httpx is used only inside this package; everything it raises is translated into
:mod:`integrations.errors` at the boundary.
"""
