"""Benchmarks and the tools that drive the sandbox PBX like the outside world: sipp scenario
builders (``simcall``), the sipp scenarios (``sipp/``: callers, agents' phones, customers and
leads behind trunks), and the benches the CLI and ``make bench-*`` run. Tooling, not the
product: no capability imports it; the CLI and the tests do."""
