"""The Command Code simulator: a deterministic stand-in for api.commandcode.ai (tests, demo,
benchmark). Product code, but not the gateway: the gateway's upstream client is the rest of
``proxy.upstream``. ``app`` is the ASGI application (its docstring lists the scenarios),
``server`` runs it, the other modules are its parts."""
