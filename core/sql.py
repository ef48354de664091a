"""The few SQL functions that SQLite and PostgreSQL spell differently (reports, campaign stats).

- :class:`epoch` — seconds since 1970 of a timestamp (fractions kept), so durations are a
  subtraction on both databases;
- :class:`greatest` / :class:`least` — of two values (SQLite's two-argument ``max``/``min``).
- :class:`plus_days` — a timestamp n days later, comparable with stored ones;
- :class:`floor_div` — integer floor division of a positive number (time slots).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class epoch(FunctionElement[float]):
    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"((julianday({compiler.process(arg, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch, "postgresql")
def _epoch_pg(element: epoch, compiler: Any, **kw: Any) -> str:
    (arg,) = list(element.clauses)
    return f"EXTRACT(EPOCH FROM {compiler.process(arg, **kw)})"


class greatest(FunctionElement[Any]):
    inherit_cache = True
    name = "greatest"


class least(FunctionElement[Any]):
    inherit_cache = True
    name = "least"


def _two(element: FunctionElement[Any], compiler: Any, name: str, **kw: Any) -> str:
    return f"{name}({', '.join(compiler.process(c, **kw) for c in element.clauses)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return _two(element, compiler, "max", **kw)


@compiles(greatest, "postgresql")
def _greatest_pg(element: greatest, compiler: Any, **kw: Any) -> str:
    return _two(element, compiler, "GREATEST", **kw)


@compiles(least, "sqlite")
def _least_sqlite(element: least, compiler: Any, **kw: Any) -> str:
    return _two(element, compiler, "min", **kw)


@compiles(least, "postgresql")
def _least_pg(element: least, compiler: Any, **kw: Any) -> str:
    return _two(element, compiler, "LEAST", **kw)


class plus_days(FunctionElement[Any]):
    """``plus_days(timestamp, n)``: the timestamp ``n`` days later, in a form the database
    compares with its stored timestamps (an index range on the other side stays usable)."""

    inherit_cache = True
    name = "plus_days"


@compiles(plus_days, "sqlite")
def _plus_days_sqlite(element: plus_days, compiler: Any, **kw: Any) -> str:
    when, days = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m-%d %H:%M:%f', {when}, '+' || {days} || ' days')"


@compiles(plus_days, "postgresql")
def _plus_days_pg(element: plus_days, compiler: Any, **kw: Any) -> str:
    when, days = (compiler.process(c, **kw) for c in element.clauses)
    return f"({when} + make_interval(days => CAST({days} AS INTEGER)))"


class floor_div(FunctionElement[int]):
    """``floor_div(x, n)``: ⌊x / n⌋ as an integer for x ≥ 0 (SQLite's CAST truncates, which is
    the floor of a positive number; PostgreSQL's CAST would round)."""

    inherit_cache = True
    name = "floor_div"


@compiles(floor_div, "sqlite")
def _floor_div_sqlite(element: floor_div, compiler: Any, **kw: Any) -> str:
    x, n = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(({x}) / ({n}) AS INTEGER)"


@compiles(floor_div, "postgresql")
def _floor_div_pg(element: floor_div, compiler: Any, **kw: Any) -> str:
    x, n = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(({x}) / ({n})) AS BIGINT)"
