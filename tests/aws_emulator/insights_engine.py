"""A pure-Python CloudWatch Logs Insights query engine for the authpulse test emulator.

moto serves the CloudWatch Logs API faithfully, but its Logs Insights engine only knows
``fields``, ``sort`` and ``limit``. This module implements the part of the Logs Insights
query language (Logs Insights QL) that authpulse and its seed tutorial use, and shapes
results the way the real service does, so tests can run the real query strings.
``server.py`` plugs it into moto; nothing here imports moto.

Supported syntax
----------------
Commands are separated by ``|``; ``#`` starts a comment that runs to the end of the line.
Command names, keywords and function names are matched case-insensitively.

``fields EXPR [as NAME], ...``
    Computes fields and makes them the displayed ones (several ``fields`` commands
    add up). ``fields strcontains(detail.outcome.result, "SUCCESS") as @SUCCESS``.
``display FIELD, ...``
    Chooses the displayed fields; the last ``display`` wins.
``filter BOOLEAN-EXPR``
    Keeps the records for which the expression is true.
``stats AGG [as NAME], ... [by GROUP [as NAME], ...]``
    Aggregates: ``count(*)`` (also ``count()``), ``count(EXPR)`` (records where EXPR is
    not missing), ``sum(EXPR)`` (numeric values only), ``count_distinct(EXPR)``,
    ``min(EXPR)`` and ``max(EXPR)`` (by the value order below; ``min(@timestamp)`` is a
    time and prints like ``@timestamp``: the AWS documentation does not show how the
    service prints it, so authpulse reads either that or epoch milliseconds),
    ``earliest(EXPR)`` and ``latest(EXPR)`` (the value in the record with the earliest or
    the latest ``@timestamp`` among those where it is present; ties: the first or the
    last record read).
    Groups: ``bin(PERIOD)`` and any expression, usually a field. PERIOD is a whole
    number of seconds, minutes, hours or days: ``30s``, ``15m``, ``1h``, ``1d`` (the
    spellings ``sec``, ``min``, ``hr``, ``minute``, ``hour``, ``day`` and their plurals
    also work). Bins are aligned to multiples of the period since the epoch, in UTC.
``sort KEY [asc|desc], ...``
    KEY is a result field: a field name, an alias, or an unaliased column as written
    (``sort count(*) desc``). Without a direction the emulator sorts descending, as moto
    does; the AWS documentation does not state the default.
``limit N``

Expressions: field names (``detail.outcome.result``, ``@timestamp``, array elements by
index as in ``detail.target.0.id``; put backticks around names with other characters:
``detail.`some-key```), string literals in double or single quotes (backslash escapes
``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\t``), integer and decimal numbers, parentheses,
comparisons ``=``/``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``EXPR in [LITERAL, ...]``,
``EXPR not in [...]``, ``and``, ``or``, ``not``, and the functions ``strcontains(STR, SUB)``
(1 if STR contains SUB, else 0, as documented; missing if STR is missing) and
``ispresent(FIELD)``. Anything else (``parse``, regular expressions, arithmetic, other
functions and aggregates, ...) is rejected as a malformed query naming the construct.

Semantics
---------
* Every log event provides ``@timestamp``, ``@message``, ``@logStream``, ``@log``
  (``account-id:log-group-name``), ``@ingestionTime`` and ``@ptr``. A message that is a
  JSON object is flattened into dotted fields, arrays by index; JSON ``null`` and empty
  objects or arrays give no field. (The service documents a 200-field limit for JSON
  events; the emulator has none.)
* A comparison or ``in`` test with a missing operand is false (``!=`` included), so
  ``not (x = 1)`` is true when ``x`` is missing. Values compare as numbers when both are
  numbers or numeric strings, otherwise by the documented natural sort order: non-numbers
  before numbers; within non-numbers, runs of digits compare by length then value, other
  runs by Unicode code point.
* ``sort`` puts missing values last in either direction. Records come out of the time
  range newest first, so ``limit`` without ``sort`` keeps the most recent events. Stats
  groups come out in ascending order of their group values, missing last (the service
  promises no order).
* ``count_distinct`` is exact here; the service documents it as approximate for
  high-cardinality fields.
* ``stats`` over no records yields no rows.

Results
-------
:func:`run_query` returns rows shaped like GetQueryResults: each row a list of
``{"field": NAME, "value": STRING}``. Every value is a string; ``@timestamp``,
``@ingestionTime`` and ``bin(...)`` values look like ``2026-11-25 10:15:00.000`` (UTC,
milliseconds); integer counts are plain integers (``"42"``). A field whose value is
missing is left out of its row. Columns are named as written in the query (``bin(15m)``,
``detail.outcome.result``, ``count(*)``, ``count (@FAILURE)``), or by their alias.
Queries without ``stats`` show the ``fields``/``display`` fields (``@timestamp`` and
``@message`` if neither command is used) plus ``@ptr``.

Rows are capped at 10,000, the limit the AWS documentation gives for queries without
``limit``. (The current documentation lets ``limit`` go up to 100,000; the emulator caps
at 10,000 regardless, so a test can rely on one fixed ceiling.) Some SDK documentation
still says 1,000 for StartQuery's ``limit`` parameter default; the Logs Insights query
syntax page says 10,000, and that is what the emulator follows.

Statistics: ``recordsScanned`` counts the events of the queried log groups inside the
time range, ``bytesScanned`` sums their messages' UTF-8 lengths, and ``recordsMatched``
counts the events that passed the ``filter`` commands that come before the first
``stats``. All three are floats, as the service sends them.

Time range: StartQuery's ``startTime`` and ``endTime`` are epoch seconds and both ends
are inclusive, so events with ``startTime*1000 <= timestamp < (endTime+1)*1000`` count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cmp_to_key
from typing import Any, Callable, Iterable

MAX_RESULT_ROWS = 10_000
DEFAULT_DISPLAY = ("@timestamp", "@message")

_BIN_UNITS_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}

# Real Logs Insights vocabulary the emulator recognises only to give a precise error.
_UNSUPPORTED_COMMANDS = {
    "parse", "dedup", "unmask", "pattern", "diff", "unnest", "lookup", "source",
    "filterindex", "anomaly", "head", "tail",
}
_UNSUPPORTED_AGGREGATES = {
    "avg", "pct", "stddev", "sortsfirst", "sortslast",
}
_AGGREGATES = ("count", "sum", "count_distinct", "min", "max", "earliest", "latest")


class MalformedQueryError(ValueError):
    """The query does not parse, or uses syntax the emulator does not implement.

    ``start`` and ``end`` are character offsets into the query string, as in the
    service's ``queryCompileError.location``.
    """

    def __init__(self, message: str, start: int, end: int):
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


class Timestamp(int):
    """Epoch milliseconds; formatted the way Logs Insights prints times."""


def format_timestamp(millis: int) -> str:
    seconds, ms = divmod(int(millis), 1000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ms:03d}"


def format_value(value: Any) -> str:
    """Renders a field value as the service does: always a string."""
    if isinstance(value, Timestamp):
        return format_timestamp(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- lexer


@dataclass(frozen=True)
class _Token:
    kind: str  # name, string, number, duration, op, punct, end
    text: str  # the source text
    value: Any  # field name, decoded string, number, (amount, unit) or the text
    start: int
    end: int


_SEGMENT = r"(?:[A-Za-z0-9_@]+|`[^`]*`)"
_TOKEN_RE = re.compile(
    r"(?P<skip>\s+|\#[^\n]*)"
    r"|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<number>\d+(?:\.\d+)?)(?P<unit>[A-Za-z]+)?"
    rf"|(?P<name>(?:[A-Za-z_@][A-Za-z0-9_@]*|`[^`]*`)(?:\.{_SEGMENT})*)"
    r"|(?P<op>==|!=|<=|>=|=~|[=<>])"
    r"|(?P<punct>[()\[\],*|])"
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _decode_string(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _decode_name(text: str) -> str:
    return ".".join(seg.strip("`") for seg in re.findall(_SEGMENT, text))


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN_RE.match(query, pos)
        if match is None:
            char = query[pos]
            if char in "\"'`":
                raise MalformedQueryError(f"unterminated {char} quote", pos, len(query))
            if char == "/":
                raise MalformedQueryError(
                    "regular expressions are not supported by the emulator", pos, pos + 1
                )
            raise MalformedQueryError(f"unexpected character {char!r}", pos, pos + 1)
        kind = match.lastgroup
        text = match.group(0)
        start, pos = match.start(), match.end()
        if kind == "skip":
            continue
        if kind == "unit":  # a number with letters glued on: a period such as 15m
            amount = match.group("number")
            tokens.append(_Token("duration", text, (amount, match.group("unit")), start, pos))
        elif kind == "number":
            tokens.append(_Token("number", text, float(text) if "." in text else int(text), start, pos))
        elif kind == "string":
            tokens.append(_Token("string", text, _decode_string(text), start, pos))
        elif kind == "name":
            tokens.append(_Token("name", text, _decode_name(text), start, pos))
        elif text == "=~":
            raise MalformedQueryError(
                "regular expression matching (=~) is not supported by the emulator", start, pos
            )
        else:
            tokens.append(_Token(kind, text, text, start, pos))
    tokens.append(_Token("end", "", None, len(query), len(query)))
    return tokens


# --------------------------------------------------------------------- comparisons

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_CHUNK_RE = re.compile(r"[0-9]+|[^0-9]+")


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        return int(value) if value.lstrip("-").isdigit() else float(value)
    return None


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _natural_cmp(a: str, b: str) -> int:
    """The service's documented natural order for non-numeric values."""
    chunks_a, chunks_b = _CHUNK_RE.findall(a), _CHUNK_RE.findall(b)
    for ca, cb in zip(chunks_a, chunks_b):
        if ca[0].isascii() and ca[0].isdigit() and cb[0].isascii() and cb[0].isdigit():
            order = _cmp((len(ca), int(ca)), (len(cb), int(cb)))
        else:
            order = _cmp(ca, cb)
        if order:
            return order
    return _cmp(len(chunks_a), len(chunks_b))


def compare_values(a: Any, b: Any) -> int:
    """Ascending order of two present values: non-numbers first, then numbers."""
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return _cmp(na, nb)
    if na is not None or nb is not None:
        return 1 if na is not None else -1
    return _natural_cmp(format_value(a), format_value(b))


def _compare_optional(a: Any, b: Any, descending: bool = False) -> int:
    """Like compare_values, with missing values last whatever the direction."""
    if a is None or b is None:
        return _cmp(a is None, b is None)
    order = compare_values(a, b)
    return -order if descending else order


def _truthy(value: Any) -> bool:
    return value is not None and bool(value)


# --------------------------------------------------------------------- expressions
#
# Every expression node has `text` (its source, used to name unaliased columns) and
# `evaluate(record)`, which returns the value or None when it is missing.

Record = dict[str, Any]


@dataclass
class _Field:
    name: str
    text: str

    def evaluate(self, record: Record) -> Any:
        return record.get(self.name)


@dataclass
class _Literal:
    value: Any
    text: str

    def evaluate(self, record: Record) -> Any:
        return self.value


_COMPARATORS: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


@dataclass
class _Compare:
    op: str
    left: Any
    right: Any
    text: str

    def evaluate(self, record: Record) -> bool:
        left, right = self.left.evaluate(record), self.right.evaluate(record)
        if left is None or right is None:
            return False
        return _COMPARATORS[self.op](compare_values(left, right))


@dataclass
class _Membership:
    operand: Any
    values: list[Any]
    negated: bool
    text: str

    def evaluate(self, record: Record) -> bool:
        value = self.operand.evaluate(record)
        if value is None:
            return False
        found = any(compare_values(value, v) == 0 for v in self.values)
        return found != self.negated


@dataclass
class _Logical:
    op: str  # "and" or "or"
    operands: list[Any]
    text: str

    def evaluate(self, record: Record) -> bool:
        results = (_truthy(o.evaluate(record)) for o in self.operands)
        return all(results) if self.op == "and" else any(results)


@dataclass
class _Not:
    operand: Any
    text: str

    def evaluate(self, record: Record) -> bool:
        return not _truthy(self.operand.evaluate(record))


@dataclass
class _StrContains:
    haystack: Any
    needle: Any
    text: str

    def evaluate(self, record: Record) -> int | None:
        haystack, needle = self.haystack.evaluate(record), self.needle.evaluate(record)
        if haystack is None or needle is None:
            return None
        return 1 if format_value(needle) in format_value(haystack) else 0


@dataclass
class _IsPresent:
    field: _Field
    text: str

    def evaluate(self, record: Record) -> bool:
        return self.field.name in record


# ------------------------------------------------------------------------ commands


@dataclass
class _Run:
    """The state a query carries from command to command."""

    records: list[Record]
    matched: int
    shown: list[str] = field(default_factory=list)  # named by `fields` (or by stats)
    display: list[str] | None = None
    aggregated: bool = False

    def show(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.shown:
                self.shown.append(name)


@dataclass
class _Fields:
    projections: list[tuple[str, Any]]  # (column name, expression)

    def apply(self, run: _Run) -> None:
        for record in run.records:
            for name, expr in self.projections:
                value = expr.evaluate(record)
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value
        run.show(name for name, _ in self.projections)


@dataclass
class _Display:
    names: list[str]

    def apply(self, run: _Run) -> None:
        run.display = self.names


@dataclass
class _Filter:
    condition: Any

    def apply(self, run: _Run) -> None:
        run.records = [r for r in run.records if _truthy(self.condition.evaluate(r))]
        if not run.aggregated:
            run.matched = len(run.records)


class _Accumulator:
    """Folds the values of one aggregate over one group."""

    def __init__(self, kind: str):
        self.kind = kind
        self.count = 0
        self.total: int | float | None = None
        self.distinct: set[str] = set()
        self.extreme: Any = None
        self.when: Any = None

    def add(self, value: Any, timestamp: Any = None) -> None:
        if value is None:
            return
        if self.kind in ("earliest", "latest"):
            if self.extreme is None:
                self.extreme, self.when = value, timestamp
                return
            order = _compare_optional(timestamp, self.when)
            if (order < 0) if self.kind == "earliest" else (order >= 0):
                self.extreme, self.when = value, timestamp
        elif self.kind in ("min", "max"):
            if self.extreme is None:
                self.extreme = value
            else:
                order = compare_values(value, self.extreme)
                if (order < 0) if self.kind == "min" else (order > 0):
                    self.extreme = value
        elif self.kind == "count":
            self.count += 1
        elif self.kind == "sum":
            number = _as_number(value)
            if number is not None:
                self.total = number if self.total is None else self.total + number
        else:  # count_distinct
            self.distinct.add(format_value(value))

    def result(self) -> Any:
        if self.kind == "count":
            return self.count
        if self.kind == "sum":
            return self.total
        if self.kind in ("min", "max", "earliest", "latest"):
            return self.extreme
        return len(self.distinct)


@dataclass
class _Aggregate:
    name: str
    kind: str  # count, sum, count_distinct, min, max, earliest or latest
    argument: Any  # None for count(*)

    def value(self, record: Record) -> Any:
        return True if self.argument is None else self.argument.evaluate(record)


@dataclass
class _Bin:
    seconds: int
    text: str

    def evaluate(self, record: Record) -> Timestamp | None:
        timestamp = record.get("@timestamp")
        if timestamp is None:
            return None
        width = self.seconds * 1000
        return Timestamp(timestamp - timestamp % width)


@dataclass
class _Stats:
    aggregates: list[_Aggregate]
    groups: list[tuple[str, Any]]  # (column name, expression or _Bin)

    def apply(self, run: _Run) -> None:
        buckets: dict[tuple, list[_Accumulator]] = {}
        for record in run.records:
            key = tuple(expr.evaluate(record) for _, expr in self.groups)
            accumulators = buckets.get(key)
            if accumulators is None:
                accumulators = buckets[key] = [_Accumulator(a.kind) for a in self.aggregates]
            for aggregate, accumulator in zip(self.aggregates, accumulators):
                accumulator.add(aggregate.value(record), record.get("@timestamp"))

        def key_order(a: tuple, b: tuple) -> int:
            for x, y in zip(a, b):
                order = _compare_optional(x, y)
                if order:
                    return order
            return 0

        rows = []
        for key in sorted(buckets, key=cmp_to_key(key_order)):
            row: Record = {}
            for (name, _), value in zip(self.groups, key):
                if value is not None:
                    row[name] = value
            for aggregate, accumulator in zip(self.aggregates, buckets[key]):
                value = accumulator.result()
                if value is not None:
                    row[aggregate.name] = value
            rows.append(row)

        run.records = rows
        run.aggregated = True
        run.shown = [name for name, _ in self.groups] + [a.name for a in self.aggregates]
        run.display = None


@dataclass
class _Sort:
    keys: list[tuple[str, bool]]  # (column name, descending)

    def apply(self, run: _Run) -> None:
        def order(a: Record, b: Record) -> int:
            for name, descending in self.keys:
                result = _compare_optional(a.get(name), b.get(name), descending)
                if result:
                    return result
            return 0

        run.records.sort(key=cmp_to_key(order))


@dataclass
class _Limit:
    count: int

    def apply(self, run: _Run) -> None:
        del run.records[self.count:]


@dataclass
class Query:
    """A parsed query: see :func:`parse_query` and :func:`run_query`."""

    text: str
    commands: list[Any]


# -------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    # -- token helpers

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def error(self, message: str, token: _Token | None = None) -> MalformedQueryError:
        token = token or self.peek()
        shown = f"'{token.text}'" if token.kind != "end" else "end of query"
        return MalformedQueryError(f"{message} (at {shown}, offset {token.start})", token.start, token.end)

    def is_keyword(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "name" and token.text.lower() == word

    def is_punct(self, char: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "punct" and token.text == char

    def accept_keyword(self, word: str) -> bool:
        if self.is_keyword(word):
            self.pos += 1
            return True
        return False

    def accept_punct(self, char: str) -> bool:
        if self.is_punct(char):
            self.pos += 1
            return True
        return False

    def expect_punct(self, char: str) -> _Token:
        if not self.is_punct(char):
            raise self.error(f"expected '{char}'")
        return self.advance()

    def expect_name(self, what: str) -> _Token:
        if self.peek().kind != "name":
            raise self.error(f"expected {what}")
        return self.advance()

    def source(self, first: _Token) -> str:
        """Source text from `first` up to the last consumed token."""
        return self.text[first.start : self.tokens[self.pos - 1].end]

    def comma_list(self, parse_item: Callable[[], Any]) -> list[Any]:
        items = [parse_item()]
        while self.accept_punct(","):
            items.append(parse_item())
        return items

    # -- query and commands

    def parse(self) -> Query:
        if self.peek().kind == "end":
            raise MalformedQueryError("the query is empty", 0, len(self.text))
        commands = [self.parse_command()]
        while self.accept_punct("|"):
            commands.append(self.parse_command())
        if self.peek().kind != "end":
            raise self.error("expected '|' or the end of the query")
        return Query(self.text, commands)

    def parse_command(self) -> Any:
        token = self.expect_name("a command")
        command = token.text.lower()
        handlers = {
            "fields": self.parse_fields,
            "display": self.parse_display,
            "filter": self.parse_filter,
            "stats": self.parse_stats,
            "sort": self.parse_sort,
            "limit": self.parse_limit,
        }
        if command in handlers:
            return handlers[command]()
        if command in _UNSUPPORTED_COMMANDS:
            raise self.error(f"the {command} command is not supported by the emulator", token)
        raise self.error(f"unknown command {token.text!r}", token)

    def column_name(self, expr: Any) -> str:
        """An optional `as NAME`, else the field's name or the expression as written."""
        if self.accept_keyword("as"):
            return self.expect_name("an alias after 'as'").value
        return expr.name if isinstance(expr, _Field) else expr.text

    def parse_fields(self) -> _Fields:
        def projection() -> tuple[str, Any]:
            expr = self.parse_expression()
            return self.column_name(expr), expr

        return _Fields(self.comma_list(projection))

    def parse_display(self) -> _Display:
        return _Display(self.comma_list(lambda: self.expect_name("a field name").value))

    def parse_filter(self) -> _Filter:
        return _Filter(self.parse_expression())

    def parse_stats(self) -> _Stats:
        aggregates = self.comma_list(self.parse_aggregate)
        groups: list[tuple[str, Any]] = []
        if self.accept_keyword("by"):
            groups = self.comma_list(self.parse_group)
        return _Stats(aggregates, groups)

    def parse_aggregate(self) -> _Aggregate:
        first = self.expect_name("an aggregate function such as count(*)")
        function = first.text.lower()
        if not self.is_punct("("):
            raise self.error("expected '(' after the aggregate function name")
        if function in _UNSUPPORTED_AGGREGATES:
            raise self.error(f"the {function}() aggregate is not supported by the emulator", first)
        if function not in _AGGREGATES:
            raise self.error(f"unknown aggregate function {first.text!r}", first)
        self.expect_punct("(")
        argument = None
        if self.accept_punct("*"):
            if function != "count":
                raise self.error(f"{function}(*) is not allowed; only count(*) is")
        elif not (function == "count" and self.is_punct(")")):
            argument = self.parse_expression()
        self.expect_punct(")")
        name = self.source(first)
        if self.accept_keyword("as"):
            name = self.expect_name("an alias after 'as'").value
        return _Aggregate(name, function, argument)

    def parse_group(self) -> tuple[str, Any]:
        if self.is_keyword("bin") and self.is_punct("(", 1):
            expr = self.parse_bin()
        else:
            expr = self.parse_expression()
        return self.column_name(expr), expr

    def parse_bin(self) -> _Bin:
        first = self.advance()
        self.expect_punct("(")
        period = self.advance()
        if period.kind != "duration":
            raise self.error("expected a period such as 15m in bin()", period)
        amount, unit = period.value
        if "." in amount or int(amount) == 0:
            raise self.error("the bin() period must be a positive whole number", period)
        if unit.lower() not in _BIN_UNITS_SECONDS:
            raise self.error(
                f"bin() unit {unit!r} is not supported by the emulator (use s, m, h or d)", period
            )
        self.expect_punct(")")
        return _Bin(int(amount) * _BIN_UNITS_SECONDS[unit.lower()], self.source(first))

    def parse_sort(self) -> _Sort:
        def key() -> tuple[str, bool]:
            begin = self.pos
            while not (
                self.peek().kind == "end"
                or self.is_punct(",")
                or self.is_punct("|")
                or self.is_keyword("asc")
                or self.is_keyword("desc")
            ):
                self.advance()
            consumed = self.tokens[begin : self.pos]
            if not consumed:
                raise self.error("expected a field to sort by")
            # A lone name is a field (backticks removed); anything else names a
            # result column as written, e.g. `sort count(*) desc`.
            if len(consumed) == 1 and consumed[0].kind == "name":
                name = consumed[0].value
            else:
                name = self.source(consumed[0])
            if self.accept_keyword("asc"):
                return name, False
            self.accept_keyword("desc")
            return name, True  # descending is also the default, see the module doc

        return _Sort(self.comma_list(key))

    def parse_limit(self) -> _Limit:
        token = self.advance()
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 1:
            raise self.error("limit needs a positive whole number", token)
        return _Limit(token.value)

    # -- expressions, lowest precedence first

    def parse_expression(self) -> Any:
        return self.parse_logical("or", self.parse_and)

    def parse_and(self) -> Any:
        return self.parse_logical("and", self.parse_not)

    def parse_logical(self, word: str, parse_operand: Callable[[], Any]) -> Any:
        first = self.peek()
        operands = [parse_operand()]
        while self.accept_keyword(word):
            operands.append(parse_operand())
        if len(operands) == 1:
            return operands[0]
        return _Logical(word, operands, self.source(first))

    def parse_not(self) -> Any:
        first = self.peek()
        if self.accept_keyword("not"):
            operand = self.parse_not()
            return _Not(operand, self.source(first))
        return self.parse_comparison()

    def parse_comparison(self) -> Any:
        first = self.peek()
        left = self.parse_operand()
        token = self.peek()
        if token.kind == "op":
            self.advance()
            right = self.parse_operand()
            return _Compare(token.text, left, right, self.source(first))
        if self.is_keyword("like"):
            raise self.error("like is not supported by the emulator")
        negated = self.is_keyword("not") and self.is_keyword("in", 1)
        if negated:
            self.advance()
        if self.accept_keyword("in"):
            self.expect_punct("[")
            values = self.comma_list(self.parse_literal)
            self.expect_punct("]")
            return _Membership(left, values, negated, self.source(first))
        return left

    def parse_literal(self) -> Any:
        token = self.advance()
        if token.kind not in ("string", "number"):
            raise self.error("expected a string or number literal", token)
        return token.value

    def parse_operand(self) -> Any:
        token = self.peek()
        if self.accept_punct("("):
            expr = self.parse_expression()
            self.expect_punct(")")
            return expr
        if token.kind in ("string", "number"):
            self.advance()
            return _Literal(token.value, token.text)
        if token.kind == "name" and self.is_punct("(", 1):
            return self.parse_call()
        if token.kind == "name":
            self.advance()
            return _Field(token.value, token.text)
        raise self.error("expected a field, a literal or a function call")

    def parse_call(self) -> Any:
        first = self.advance()
        function = first.text.lower()
        if function == "bin":
            raise self.error("bin() is only allowed after 'stats ... by'", first)
        if function in _AGGREGATES or function in _UNSUPPORTED_AGGREGATES:
            raise self.error(f"the aggregate {function}() is only allowed in stats", first)
        if function not in ("strcontains", "ispresent"):
            raise self.error(f"the function {first.text}() is not supported by the emulator", first)
        self.expect_punct("(")
        args = self.comma_list(self.parse_expression)
        self.expect_punct(")")
        text = self.source(first)
        if function == "strcontains":
            if len(args) != 2:
                raise self.error("strcontains() takes two arguments", first)
            return _StrContains(args[0], args[1], text)
        if len(args) != 1 or not isinstance(args[0], _Field):
            raise self.error("ispresent() takes one field name", first)
        return _IsPresent(args[0], text)


def parse_query(text: str) -> Query:
    """Parses a query string; raises MalformedQueryError on anything unsupported."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------ execution


@dataclass(frozen=True)
class SourceEvent:
    """One stored log event, as the engine needs it."""

    timestamp: int  # epoch milliseconds
    message: str
    ingestion_time: int  # epoch milliseconds
    log_group: str
    log_stream: str
    account_id: str
    ptr: str  # opaque pointer to the event, reported as @ptr


@dataclass
class QueryResult:
    rows: list[list[dict[str, str]]]
    statistics: dict[str, float]


def _flatten(value: Any, prefix: str, out: Record) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}{index}.", out)
    elif value is not None:
        out[prefix[:-1]] = value


def _record(event: SourceEvent) -> Record:
    record: Record = {}
    if event.message.lstrip().startswith("{"):
        try:
            _flatten(json.loads(event.message), "", record)
        except ValueError:
            pass  # not JSON after all: only the system fields
    record.update(
        {
            "@timestamp": Timestamp(event.timestamp),
            "@message": event.message,
            "@logStream": event.log_stream,
            "@log": f"{event.account_id}:{event.log_group}",
            "@ingestionTime": Timestamp(event.ingestion_time),
            "@ptr": event.ptr,
        }
    )
    return record


def run_query(
    query: Query,
    events: Iterable[SourceEvent],
    start_time: int,
    end_time: int,
    limit: int | None = None,
) -> QueryResult:
    """Runs `query` over `events` between `start_time` and `end_time` (epoch seconds,
    both inclusive). `limit` is StartQuery's optional limit parameter; it and the
    query's own `limit` both apply, under the 10,000-row cap."""
    low, high = start_time * 1000, (end_time + 1) * 1000
    in_range = [e for e in events if low <= e.timestamp < high]
    in_range.sort(key=lambda e: e.timestamp, reverse=True)  # newest first, stable

    run = _Run(records=[_record(e) for e in in_range], matched=len(in_range))
    for command in query.commands:
        command.apply(run)

    cap = min(MAX_RESULT_ROWS, limit or MAX_RESULT_ROWS)
    columns = list(run.display or run.shown or DEFAULT_DISPLAY)
    if not run.aggregated and "@ptr" not in columns:
        columns.append("@ptr")
    rows = [
        [{"field": name, "value": format_value(record[name])} for name in columns if name in record]
        for record in run.records[:cap]
    ]
    statistics = {
        "recordsMatched": float(run.matched),
        "recordsScanned": float(len(in_range)),
        "bytesScanned": float(sum(len(e.message.encode("utf-8")) for e in in_range)),
    }
    return QueryResult(rows, statistics)
