"""Clients for the remote systems relink talks to (Procore, the ERPs) and the local sandbox.

httpx is used only inside this package; everything it raises is translated into
:mod:`integrations.errors` at the boundary.
"""
