"""serve's composition root: builds every service of the centre from the settings and the
centre's definitions, runs them under supervision, and serves the HTTP endpoint.

The top floor of the house: it imports the capabilities (``ivr``, ``acd``, ``callbacks``,
``dialer``, ``agi_handlers``) and ``core``; nothing imports it but the CLI's ``serve``.
"""
