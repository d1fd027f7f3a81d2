"""Tests of the Logs Insights emulator: the engine on its own, then server.py end to end.

    .venv/bin/python -m unittest discover -s tests/aws_emulator -v
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import insights_engine as engine

HERE = Path(__file__).resolve().parent

# 2026-11-25 10:15:00 UTC, the start of a 15-minute bin (and of a 1h-aligned quarter).
BASE_MS = 1795601700000
MINUTE_MS = 60_000

SEED_COUNT_BY_RESULT = """fields @timestamp, @message
| filter detail.eventType == "user.session.start"
| stats count(*) as n by bin(15m), detail.outcome.result"""

SEED_TUTORIAL = """fields @timestamp, @message
| filter detail.eventType == "user.session.start"
| fields strcontains (detail.outcome.result, "SUCCESS") as @SUCCESS, strcontains(detail.outcome.result,"Failure") as @FAILURE
| stats count(@SUCCESS) as Success, count (@FAILURE) as failure by bin(15m)"""

AUTHPULSE_COUNT = """filter detail.eventType in ["user.session.start"]
| stats count(*) as n by bin(15m), detail.outcome.result"""

AUTHPULSE_DISTINCT = """filter detail.eventType in ["user.session.start"]
| stats count(*) as n, count_distinct(detail.actor.alternateId) as users by bin(5m), detail.outcome.result, detail.client.ipAddress"""

AUTHPULSE_TOP_IPS = """filter detail.eventType in ["user.session.start"] and detail.outcome.result != "SUCCESS"
| stats count(*) as n by detail.client.ipAddress
| sort n desc
| limit 5"""


def okta_message(
    published_ms: int,
    result: str = "FAILURE",
    user: str = "alice@example.com",
    ip: str = "203.0.113.5",
    event_type: str = "user.session.start",
) -> str:
    """An Okta System Log event as EventBridge delivers it to CloudWatch Logs."""
    published = engine.format_timestamp(published_ms).replace(" ", "T") + "Z"
    outcome = {"result": result}
    if result == "FAILURE":
        outcome["reason"] = "INVALID_CREDENTIALS"
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "SystemLog",
            "source": "aws.partner/okta.com/acme/okta",
            "time": published[:19] + "Z",
            "detail": {
                "eventType": event_type,
                "published": published,
                "outcome": outcome,
                "actor": {"alternateId": user},
                "client": {"ipAddress": ip, "geographicalContext": {"country": "United States"}},
            },
        }
    )


# Eleven events, newest last: (minutes after BASE_MS, result, user, ip).
SIGN_INS = [
    (0, "FAILURE", "alice@example.com", "203.0.113.5"),
    (1, "FAILURE", "alice@example.com", "203.0.113.5"),
    (2, "FAILURE", "bob@example.com", "203.0.113.5"),
    (3, "SUCCESS", "alice@example.com", "198.51.100.7"),
    (6, "FAILURE", "carol@example.com", "192.0.2.9"),
    (14, "SUCCESS", "bob@example.com", "198.51.100.7"),
    (15, "FAILURE", "dave@example.com", "203.0.113.5"),
    (16, "FAILURE", "dave@example.com", "192.0.2.9"),
    (29, "SUCCESS", "erin@example.com", "198.51.100.7"),
    (31, "FAILURE", "erin@example.com", "192.0.2.10"),
    (44, "SUCCESS", "carol@example.com", "198.51.100.7"),
]


def sign_in_messages() -> list[tuple[int, str]]:
    messages = [
        (BASE_MS + minutes * MINUTE_MS, okta_message(BASE_MS + minutes * MINUTE_MS, result, user, ip))
        for minutes, result, user, ip in SIGN_INS
    ]
    # Noise the filters must drop: another event type, and a line that is not JSON.
    messages.append((BASE_MS + 5 * MINUTE_MS, okta_message(BASE_MS + 5 * MINUTE_MS, event_type="user.session.end")))
    messages.append((BASE_MS + 7 * MINUTE_MS, "START RequestId: 1234 plain text line"))
    return messages


def source_events(messages: list[tuple[int, str]], group: str = "okta") -> list[engine.SourceEvent]:
    return [
        engine.SourceEvent(ts, message, ts + 1000, group, "stream-1", "123456789012", f"ptr-{i}")
        for i, (ts, message) in enumerate(messages)
    ]


def json_events(bodies: list[Any]) -> list[engine.SourceEvent]:
    """One event per JSON body, a millisecond apart."""
    return source_events([(BASE_MS + i, json.dumps(body)) for i, body in enumerate(bodies)])


def table(rows: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    """GetQueryResults rows as plain dicts, for readable assertions."""
    return [{cell["field"]: cell["value"] for cell in row} for row in rows]


def run(query: str, events: list[engine.SourceEvent] | None = None, start: int | None = None,
        end: int | None = None, limit: int | None = None) -> engine.QueryResult:
    events = source_events(sign_in_messages()) if events is None else events
    start = BASE_MS // 1000 - 3600 if start is None else start
    end = BASE_MS // 1000 + 7200 if end is None else end
    return engine.run_query(engine.parse_query(query), events, start, end, limit)


class ParserTests(unittest.TestCase):
    def assert_parses(self, query: str) -> None:
        self.assertIsInstance(engine.parse_query(query), engine.Query, query)

    def test_each_supported_construct_parses(self) -> None:
        for query in [
            "fields @timestamp, @message",
            "fields strcontains(detail.outcome.result, 'SUCCESS') as @SUCCESS",
            "fields `detail-type`, detail.`odd key`.x, detail.target.0.id",
            "display @timestamp, detail.eventType",
            'filter a == "x"', "filter a = 'x'", "filter a != 1", "filter a < 1", "filter a <= 1.5",
            "filter a > 1", "filter a >= 1",
            'filter a in ["x", "y"]', "filter a not in [1, 2]",
            "filter a = 1 and b = 2 or not (c = 3)",
            "filter ispresent(a) and strcontains(b, \"x\")",
            'filter a = "with \\"escaped\\" quotes"',
            "stats count(*)", "stats count()", "stats count(a), sum(b) as total, count_distinct(c) as d",
            "stats min(@timestamp) as first, max(@timestamp) as last by bin(15m)",
            "stats count(*) by bin(30s)", "stats count(*) by bin(1m), a", "stats count(*) by bin(1h) as hour",
            "stats count(*) by bin(1d), a, b.c",
            "sort a", "sort a asc", "sort a desc, b asc", "sort count(*) desc",
            "limit 5",
            "# a comment\nfields a # trailing comment\n| limit 1",
            "FIELDS a | FILTER a = 1 AND b = 2 | STATS COUNT(*) BY BIN(5M)",
            SEED_COUNT_BY_RESULT, SEED_TUTORIAL, AUTHPULSE_COUNT, AUTHPULSE_DISTINCT, AUTHPULSE_TOP_IPS,
        ]:
            with self.subTest(query=query):
                self.assert_parses(query)

    def test_malformed_queries_are_rejected_with_a_location(self) -> None:
        for query, fragment in [
            ("", "empty"),
            ("   # only a comment", "empty"),
            ("fields", "expected a field"),
            ("fields a,", "expected a field"),
            ("filter a ==", "expected a field"),
            ("filter (a = 1", "expected ')'"),
            ('filter a = "unterminated', "unterminated"),
            ("filter a in 1", "expected '['"),
            ("filter a in [b]", "literal"),
            ("filter a like 'x'", "like"),
            ("filter a =~ /x/", "not supported"),
            ("filter a = /x/", "regular expressions"),
            ("filter a = 1 b = 2", "expected '|'"),
            ("fields a |", "expected a command"),
            ("fields a || limit 1", "expected a command"),
            ("bogus a", "unknown command"),
            ("parse @message '*' as a", "parse command is not supported"),
            ("stats avg(a)", "avg() aggregate is not supported"),
            ("stats frobnicate(a)", "unknown aggregate"),
            ("stats sum(*)", "only count(*)"),
            ("stats count(*) by bin(5)", "period"),
            ("stats count(*) by bin(1w)", "unit 'w'"),
            ("stats count(*) by bin(0m)", "positive"),
            ("filter bin(5m) = 1", "only allowed after"),
            ("filter count(*) > 1", "only allowed in stats"),
            ("fields tolower(a)", "tolower() is not supported"),
            ("fields strcontains(a)", "two arguments"),
            ("filter ispresent('a')", "one field"),
            ("sort", "expected a field"),
            ("limit 0", "positive"),
            ("limit 2.5", "positive"),
            ("limit a", "positive"),
            ("fields a as", "alias"),
            ("fields a ; b", "unexpected character"),
        ]:
            with self.subTest(query=query):
                with self.assertRaises(engine.MalformedQueryError) as caught:
                    engine.parse_query(query)
                error = caught.exception
                self.assertIn(fragment, error.message)
                self.assertTrue(0 <= error.start <= error.end <= len(query), (error.start, error.end))

    def test_error_location_points_at_the_offending_token(self) -> None:
        with self.assertRaises(engine.MalformedQueryError) as caught:
            engine.parse_query("fields a | parse @message 'x'")
        self.assertEqual((caught.exception.start, caught.exception.end), (11, 16))


class ExecutionTests(unittest.TestCase):
    def test_seed_count_by_bin_and_result(self) -> None:
        result = run(SEED_COUNT_BY_RESULT)
        self.assertEqual(
            table(result.rows),
            [
                {"bin(15m)": "2026-11-25 10:15:00.000", "detail.outcome.result": "FAILURE", "n": "4"},
                {"bin(15m)": "2026-11-25 10:15:00.000", "detail.outcome.result": "SUCCESS", "n": "2"},
                {"bin(15m)": "2026-11-25 10:30:00.000", "detail.outcome.result": "FAILURE", "n": "2"},
                {"bin(15m)": "2026-11-25 10:30:00.000", "detail.outcome.result": "SUCCESS", "n": "1"},
                {"bin(15m)": "2026-11-25 10:45:00.000", "detail.outcome.result": "FAILURE", "n": "1"},
                {"bin(15m)": "2026-11-25 10:45:00.000", "detail.outcome.result": "SUCCESS", "n": "1"},
            ],
        )
        # Columns come in the order of the query: groups, then aggregates.
        self.assertEqual([cell["field"] for cell in result.rows[0]], ["bin(15m)", "detail.outcome.result", "n"])
        self.assertEqual(table(run(AUTHPULSE_COUNT).rows), table(result.rows))

    def test_seed_tutorial_counts_every_event_with_a_result(self) -> None:
        # strcontains() returns 1 or 0, never "missing", and count(field) counts present
        # values: both columns count every sign-in, as the documented semantics imply.
        self.assertEqual(
            table(run(SEED_TUTORIAL).rows),
            [
                {"bin(15m)": "2026-11-25 10:15:00.000", "Success": "6", "failure": "6"},
                {"bin(15m)": "2026-11-25 10:30:00.000", "Success": "3", "failure": "3"},
                {"bin(15m)": "2026-11-25 10:45:00.000", "Success": "2", "failure": "2"},
            ],
        )
        summed = run(SEED_TUTORIAL.replace("count(@SUCCESS)", "sum(@SUCCESS)"))
        self.assertEqual([row["Success"] for row in table(summed.rows)], ["2", "1", "1"])

    def test_count_distinct_users_by_five_minute_bin_result_and_ip(self) -> None:
        rows = table(run(AUTHPULSE_DISTINCT).rows)
        self.assertEqual(
            rows[0],
            {
                "bin(5m)": "2026-11-25 10:15:00.000",
                "detail.outcome.result": "FAILURE",
                "detail.client.ipAddress": "203.0.113.5",
                "n": "3",
                "users": "2",
            },
        )
        self.assertEqual(sum(int(row["n"]) for row in rows), len(SIGN_INS))
        self.assertEqual(len(rows), 9)

    def test_top_failing_ips(self) -> None:
        self.assertEqual(
            table(run(AUTHPULSE_TOP_IPS).rows),
            [
                {"detail.client.ipAddress": "203.0.113.5", "n": "4"},
                {"detail.client.ipAddress": "192.0.2.9", "n": "2"},
                {"detail.client.ipAddress": "192.0.2.10", "n": "1"},
            ],
        )
        self.assertEqual(len(run(AUTHPULSE_TOP_IPS.replace("limit 5", "limit 2")).rows), 2)

    def test_sort_and_display_name_result_columns(self) -> None:
        query = (
            "filter detail.eventType = 'user.session.start' | stats count(*) by detail.client.ipAddress"
            " | sort count(*) desc, detail.client.ipAddress asc | limit 2"
        )
        self.assertEqual(
            table(run(query).rows),
            [
                {"detail.client.ipAddress": "198.51.100.7", "count(*)": "4"},
                {"detail.client.ipAddress": "203.0.113.5", "count(*)": "4"},
            ],
        )
        # Groups come out in ascending natural order: 192.0.2.9 before 192.0.2.10.
        rows = table(run("stats count(*) as n by detail.client.ipAddress | display n | limit 1").rows)
        self.assertEqual(rows, [{"n": "2"}])

    def test_bins_align_to_epoch_multiples_in_utc(self) -> None:
        ts = BASE_MS + 3 * 3600_000 + 17 * MINUTE_MS + 42_123  # 13:32:42.123
        events = source_events([(ts, "{}")])
        for period, expected in [
            ("30s", "2026-11-25 13:32:30.000"),
            ("1m", "2026-11-25 13:32:00.000"),
            ("15m", "2026-11-25 13:30:00.000"),
            ("1h", "2026-11-25 13:00:00.000"),
            ("1d", "2026-11-25 00:00:00.000"),
            ("2hrs", "2026-11-25 12:00:00.000"),
        ]:
            with self.subTest(period=period):
                rows = table(run(f"stats count(*) by bin({period})", events, end=ts // 1000).rows)
                self.assertEqual(rows, [{f"bin({period})": expected, "count(*)": "1"}])

    def test_missing_group_field_is_left_out_of_the_row(self) -> None:
        # Failures carry a reason (the user.session.end noise event is one too); the
        # successes and the plain-text line have none.
        rows = table(run("stats count(*) as n by detail.outcome.reason").rows)
        self.assertEqual(rows, [{"detail.outcome.reason": "INVALID_CREDENTIALS", "n": "8"}, {"n": "5"}])

    def test_stats_over_nothing_yields_no_rows(self) -> None:
        self.assertEqual(run('filter detail.eventType = "nope" | stats count(*)').rows, [])

    def test_aggregates(self) -> None:
        events = json_events([{"v": 2, "k": "a"}, {"v": "3.5", "k": "a"}, {"k": "b"}, {"v": "x"}])
        query = "stats count(*) as all, count() as c, count(v) as with_v, sum(v) as total, count_distinct(k) as ks"
        self.assertEqual(
            table(run(query, events).rows),
            [{"all": "4", "c": "4", "with_v": "3", "total": "5.5", "ks": "2"}],
        )

    def test_min_and_max(self) -> None:
        events = json_events([{"v": 2, "k": "b"}, {"v": "10", "k": "a"}, {"k": "c"}, {"v": 3}])
        self.assertEqual(
            table(run("stats min(v) as lo, max(v) as hi, min(k) as first_k, max(k) as last_k", events).rows),
            [{"lo": "2", "hi": "10", "first_k": "a", "last_k": "c"}],
        )
        # Over no present value the column is missing, like any missing value.
        self.assertEqual(table(run("stats count(*) as n, min(nope) as x", events).rows), [{"n": "4"}])

    def test_earliest_and_latest_take_the_value_of_the_first_and_last_event(self) -> None:
        # What authpulse asks of a source's failures: the first and the last account.
        events = source_events([
            (BASE_MS + 5, json.dumps({"u": "late", "k": "a"})),
            (BASE_MS + 1, json.dumps({"u": "early", "k": "a"})),
            (BASE_MS + 3, json.dumps({"k": "a"})),
            (BASE_MS + 2, json.dumps({"u": "only", "k": "b"})),
        ])
        self.assertEqual(
            table(run("stats earliest(u) as first_u, latest(u) as last_u by k", events).rows),
            [{"k": "a", "first_u": "early", "last_u": "late"}, {"k": "b", "first_u": "only", "last_u": "only"}],
        )

    def test_first_and_last_event_time_per_bin(self) -> None:
        # What authpulse asks for to know where inside a bin the stream went silent.
        events = source_events(
            [
                (BASE_MS + 3 * MINUTE_MS + 250, "{}"),
                (BASE_MS + 11 * MINUTE_MS, "{}"),
                (BASE_MS + 7 * MINUTE_MS, "{}"),
                (BASE_MS + 16 * MINUTE_MS, "{}"),
            ]
        )
        rows = table(run("stats count(*) as n, min(@timestamp) as first, max(@timestamp) as last by bin(15m)", events).rows)
        self.assertEqual(
            rows,
            [
                {"bin(15m)": "2026-11-25 10:15:00.000", "n": "3",
                 "first": "2026-11-25 10:18:00.250", "last": "2026-11-25 10:26:00.000"},
                {"bin(15m)": "2026-11-25 10:30:00.000", "n": "1",
                 "first": "2026-11-25 10:31:00.000", "last": "2026-11-25 10:31:00.000"},
            ],
        )

    def test_time_range_is_inclusive_to_the_second(self) -> None:
        start_s = BASE_MS // 1000
        events = source_events(
            [
                (start_s * 1000 - 1, "before"),
                (start_s * 1000, "first"),
                (start_s * 1000 + 10_999, "last"),
                (start_s * 1000 + 11_000, "after"),
            ]
        )
        rows = table(run("fields @message | sort @timestamp asc", events, start_s, start_s + 10).rows)
        self.assertEqual([row["@message"] for row in rows], ["first", "last"])

    def test_statistics(self) -> None:
        messages = sign_in_messages()
        result = run(SEED_COUNT_BY_RESULT, source_events(messages))
        self.assertEqual(
            result.statistics,
            {
                "recordsMatched": float(len(SIGN_INS)),
                "recordsScanned": float(len(messages)),
                "bytesScanned": float(sum(len(m.encode()) for _, m in messages)),
            },
        )
        # Only events inside the time range are scanned.
        late = run(SEED_COUNT_BY_RESULT, source_events(messages), start=(BASE_MS + 30 * MINUTE_MS) // 1000)
        self.assertEqual(late.statistics["recordsScanned"], 2.0)
        # bytesScanned counts UTF-8 bytes.
        self.assertEqual(run("limit 1", source_events([(BASE_MS, "é")])).statistics["bytesScanned"], 2.0)

    def test_plain_queries_show_timestamp_message_and_ptr_newest_first(self) -> None:
        result = run('filter detail.outcome.result = "SUCCESS" | limit 2')
        columns = [[cell["field"] for cell in row] for row in result.rows]
        self.assertEqual(columns, [["@timestamp", "@message", "@ptr"]] * 2)
        times = [row["@timestamp"] for row in table(result.rows)]
        self.assertEqual(times, ["2026-11-25 10:59:00.000", "2026-11-25 10:44:00.000"])

    def test_fields_display_and_system_fields(self) -> None:
        events = json_events([{"detail": {"target": [{"id": "u1"}, {"id": "u2"}], "ok": True, "n": None}}])
        query = "fields @log, @logStream, @ingestionTime, detail.target.1.id, detail.ok, detail.n"
        rows = table(run(query, events).rows)
        self.assertEqual(
            rows,
            [
                {
                    "@log": "123456789012:okta",
                    "@logStream": "stream-1",
                    "@ingestionTime": "2026-11-25 10:15:01.000",
                    "detail.target.1.id": "u2",
                    "detail.ok": "true",
                    "@ptr": "ptr-0",
                }
            ],
        )
        rows = table(run("fields @message, detail.target.0.id as first | display first", events).rows)
        self.assertEqual(rows, [{"first": "u1", "@ptr": "ptr-0"}])

    def test_filter_semantics(self) -> None:
        events = json_events([{"n": 5, "s": "b"}, {"n": "10", "s": "a"}, {"s": "c"}, {"n": 7}])

        def matches(condition: str) -> list[str]:
            rows = table(run(f"filter {condition} | fields n, s | sort @timestamp asc", events).rows)
            return [row.get("n", "-") + row.get("s", "-") for row in rows]

        self.assertEqual(matches("n > 6"), ["10a", "7-"])  # numeric strings compare as numbers
        self.assertEqual(matches("n = 10"), ["10a"])
        self.assertEqual(matches("n != 5"), ["10a", "7-"])  # a missing field never compares
        self.assertEqual(matches("not n = 5"), ["10a", "-c", "7-"])
        self.assertEqual(matches("s in ['a', 'c']"), ["10a", "-c"])
        self.assertEqual(matches("s not in ['a', 'c']"), ["5b"])
        self.assertEqual(matches("n = 5 or (s = 'c' and not ispresent(n))"), ["5b", "-c"])
        self.assertEqual(matches("ispresent(s) and s >= 'b'"), ["5b", "-c"])
        self.assertEqual(matches("strcontains(s, 'a')"), ["10a"])

    def test_sort_is_numeric_aware_with_missing_values_last(self) -> None:
        events = json_events([{"v": v} for v in [10, "9", 100, "x", None]])
        ascending = [row.get("v") for row in table(run("fields v | sort v asc", events).rows)]
        descending = [row.get("v") for row in table(run("fields v | sort v desc", events).rows)]
        self.assertEqual(ascending, ["x", "9", "10", "100", None])
        self.assertEqual(descending, ["100", "10", "9", "x", None])

    def test_natural_order_follows_the_aws_documentation_example(self) -> None:
        documented = ["!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj", "a12345hfh", "0"]
        events = json_events([{"v": v} for v in reversed(documented)])
        rows = table(run("fields v | sort v asc", events).rows)
        self.assertEqual([row["v"] for row in rows], documented)

    def test_results_are_capped_at_ten_thousand_rows(self) -> None:
        events = source_events([(BASE_MS + i, "x") for i in range(engine.MAX_RESULT_ROWS + 5)])
        self.assertEqual(len(run("fields @message", events).rows), engine.MAX_RESULT_ROWS)
        self.assertEqual(len(run("fields @message | limit 20000", events).rows), engine.MAX_RESULT_ROWS)
        self.assertEqual(len(run("fields @message", events, limit=7).rows), 7)
        self.assertEqual(len(run("fields @message | limit 3", events, limit=7).rows), 3)

    def test_values_are_strings_formatted_like_the_service(self) -> None:
        self.assertEqual(engine.format_value(engine.Timestamp(BASE_MS + 5)), "2026-11-25 10:15:00.005")
        self.assertEqual(engine.format_value(42), "42")
        self.assertEqual(engine.format_value(42.0), "42")
        self.assertEqual(engine.format_value(2.5), "2.5")
        self.assertEqual(engine.format_value(False), "false")
        for row in run(AUTHPULSE_DISTINCT).rows:
            for cell in row:
                self.assertIsInstance(cell["value"], str)


class ServerTests(unittest.TestCase):
    """Runs server.py as a subprocess and talks to it with boto3, as authpulse will."""

    process: subprocess.Popen
    endpoint: str

    @classmethod
    def setUpClass(cls) -> None:
        import boto3
        from botocore.config import Config

        cls.stderr = tempfile.TemporaryFile()
        cls.process = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=cls.stderr,
            text=True,
        )
        line = cls._read_ready_line(timeout=60)
        prefix = "emulator listening on "
        if not line.startswith(prefix):
            cls._stop()
            cls.stderr.seek(0)
            raise RuntimeError(f"emulator did not start: {line!r}\n{cls.stderr.read().decode()[-4000:]}")
        cls.endpoint = line[len(prefix):].strip()

        def client(service: str) -> Any:
            return boto3.client(
                service,
                region_name="us-east-1",
                endpoint_url=cls.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                # One attempt: the tests want to see the faults, not botocore's retries.
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
            )

        cls.logs = client("logs")
        cls.sns = client("sns")
        cls.dynamodb = client("dynamodb")

    @classmethod
    def _read_ready_line(cls, timeout: float) -> str:
        ready, _, _ = select.select([cls.process.stdout], [], [], timeout)
        return cls.process.stdout.readline() if ready else ""

    @classmethod
    def _stop(cls) -> int:
        if cls.process.poll() is None:
            os.kill(cls.process.pid, signal.SIGTERM)
        try:
            return cls.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(cls.process.pid, signal.SIGKILL)
            return cls.process.wait()

    @classmethod
    def tearDownClass(cls) -> None:
        exit_code = cls._stop()
        cls.process.stdout.close()
        cls.stderr.close()
        if exit_code != 0:
            raise AssertionError(f"the emulator exited with {exit_code} on SIGTERM")

    # -- helpers

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def set_faults(self, log_group: str, **faults: int) -> None:
        status, body = self.admin("POST", "/_authpulse/faults", {"log_group": log_group, **faults})
        self.assertEqual(status, 200, body)

    def new_log_group(self, messages: list[tuple[int, str]] | None = None) -> str:
        """A log group of its own for each test, so faults and queries don't mix."""
        group = f"/authpulse/test/{uuid.uuid4()}"
        self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName="okta")
        self.put(group, sign_in_messages() if messages is None else messages)
        self.addCleanup(self.admin, "DELETE", f"/_authpulse/faults?log_group={group}")
        return group

    def put(self, group: str, messages: list[tuple[int, str]]) -> None:
        if messages:
            self.logs.put_log_events(
                logGroupName=group,
                logStreamName="okta",
                logEvents=[{"timestamp": ts, "message": m} for ts, m in sorted(messages)],
            )

    def start(self, group: str, query: str = SEED_COUNT_BY_RESULT, **extra: Any) -> str:
        return self.logs.start_query(
            logGroupName=group,
            startTime=BASE_MS // 1000 - 3600,
            endTime=BASE_MS // 1000 + 7200,
            queryString=query,
            **extra,
        )["queryId"]

    def statuses(self, query_id: str, polls: int) -> list[str]:
        return [self.logs.get_query_results(queryId=query_id)["status"] for _ in range(polls)]

    def final_rows(self, query_id: str) -> list[dict[str, str]]:
        """Polls once past Running and returns the results as plain dicts."""
        self.statuses(query_id, 1)
        return table(self.logs.get_query_results(queryId=query_id)["results"])

    def assert_error(self, call: Any, code: str, status: int = 400) -> dict[str, Any]:
        with self.assertRaises(self.logs.exceptions.ClientError) as caught:
            call()
        response = caught.exception.response
        self.assertEqual(response["Error"]["Code"], code)
        self.assertEqual(response["ResponseMetadata"]["HTTPStatusCode"], status)
        self.assertEqual(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"], code)
        return response

    # -- tests

    def test_query_lifecycle_results_and_statistics(self) -> None:
        group = self.new_log_group()
        query_id = self.start(group)
        first = self.logs.get_query_results(queryId=query_id)
        self.assertEqual(first["status"], "Running")
        self.assertEqual(first["results"], [])
        second = self.logs.get_query_results(queryId=query_id)
        self.assertEqual(second["status"], "Complete")
        self.assertEqual(table(second["results"]), table(run(SEED_COUNT_BY_RESULT).rows))
        messages = sign_in_messages()
        self.assertEqual(
            second["statistics"],
            {
                "recordsMatched": float(len(SIGN_INS)),
                "recordsScanned": float(len(messages)),
                "bytesScanned": float(sum(len(m.encode()) for _, m in messages)),
            },
        )
        self.assertEqual(self.logs.get_query_results(queryId=query_id)["status"], "Complete")

        status, listed = self.admin("GET", f"/_authpulse/queries?log_group={group}")
        self.assertEqual(status, 200)
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["queryId"], query_id)
        self.assertEqual(listed[0]["queryString"], SEED_COUNT_BY_RESULT)
        self.assertEqual(listed[0]["logGroupNames"], [group])
        self.assertEqual(listed[0]["startTime"], BASE_MS // 1000 - 3600)
        self.assertEqual(listed[0]["endTime"], BASE_MS // 1000 + 7200)
        self.assertEqual(listed[0]["status"], "Complete")
        self.assertEqual(listed[0]["statistics"], second["statistics"])

        described = self.logs.describe_queries(logGroupName=group)["queries"]
        self.assertEqual([(q["queryId"], q["status"]) for q in described], [(query_id, "Complete")])

    def test_every_seed_and_authpulse_query_runs(self) -> None:
        group = self.new_log_group()
        for query in [SEED_COUNT_BY_RESULT, SEED_TUTORIAL, AUTHPULSE_COUNT, AUTHPULSE_DISTINCT, AUTHPULSE_TOP_IPS]:
            with self.subTest(query=query):
                query_id = self.start(group, query)
                self.assertEqual(self.statuses(query_id, 2), ["Running", "Complete"])
                results = self.logs.get_query_results(queryId=query_id)["results"]
                self.assertEqual(table(results), table(run(query).rows))

    def test_results_are_a_snapshot_taken_at_start_query(self) -> None:
        group = self.new_log_group()
        query_id = self.start(group, "stats count(*) as n")
        self.put(group, [(BASE_MS + 50 * MINUTE_MS, okta_message(BASE_MS + 50 * MINUTE_MS))])
        stored_at_start = len(sign_in_messages())
        self.assertEqual(self.final_rows(query_id), [{"n": str(stored_at_start)}])
        self.assertEqual(self.final_rows(self.start(group, "stats count(*) as n")), [{"n": str(stored_at_start + 1)}])

    def test_log_group_identifiers_and_several_groups_are_unioned(self) -> None:
        first, second = self.new_log_group(), self.new_log_group()
        arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{second}"
        query_id = self.logs.start_query(
            logGroupIdentifiers=[first, arn],
            startTime=BASE_MS // 1000 - 3600,
            endTime=BASE_MS // 1000 + 7200,
            queryString="stats count(*) as n by @log",
        )["queryId"]
        rows = self.final_rows(query_id)
        self.assertEqual(sorted(row["@log"] for row in rows), sorted(f"123456789012:{g}" for g in (first, second)))

    def test_stop_query_cancels(self) -> None:
        group = self.new_log_group()
        query_id = self.start(group)
        self.assertTrue(self.logs.stop_query(queryId=query_id)["success"])
        result = self.logs.get_query_results(queryId=query_id)
        self.assertEqual((result["status"], result["results"]), ("Cancelled", []))
        self.assert_error(lambda: self.logs.stop_query(queryId=query_id), "InvalidParameterException")

    def test_unknown_query_ids_and_log_groups_are_not_found(self) -> None:
        unknown = str(uuid.uuid4())
        self.assert_error(lambda: self.logs.get_query_results(queryId=unknown), "ResourceNotFoundException")
        self.assert_error(lambda: self.logs.stop_query(queryId=unknown), "ResourceNotFoundException")
        self.assert_error(lambda: self.start(f"/authpulse/missing/{uuid.uuid4()}"), "ResourceNotFoundException")

    def test_malformed_query_is_rejected_at_start(self) -> None:
        group = self.new_log_group()
        response = self.assert_error(lambda: self.start(group, "filter detail.eventType =="), "MalformedQueryException")
        self.assertEqual(response["queryCompileError"]["location"], {"startCharOffset": 26, "endCharOffset": 26})
        status, listed = self.admin("GET", f"/_authpulse/queries?log_group={group}")
        self.assertEqual(listed, [])

    def test_invalid_parameters(self) -> None:
        group = self.new_log_group()
        self.assert_error(
            lambda: self.logs.start_query(logGroupName=group, startTime=20, endTime=10, queryString="limit 1"),
            "InvalidParameterException",
        )
        self.assert_error(
            lambda: self.logs.start_query(
                logGroupName=group, logGroupNames=[group], startTime=1, endTime=2, queryString="limit 1"
            ),
            "InvalidParameterException",
        )

    def test_throttling_and_limit_exceeded_faults(self) -> None:
        group = self.new_log_group()
        self.set_faults(group, throttle_start_query=2, limit_exceeded_start_query=1)
        self.assert_error(lambda: self.start(group), "ThrottlingException")
        self.assert_error(lambda: self.start(group), "ThrottlingException")
        self.assert_error(lambda: self.start(group), "LimitExceededException")
        self.assertEqual(self.statuses(self.start(group), 2), ["Running", "Complete"])
        status, faults = self.admin("GET", "/_authpulse/faults")
        self.assertEqual(faults[group], {"throttle_start_query": 0, "limit_exceeded_start_query": 0})

    def test_failed_timed_out_and_hanging_queries(self) -> None:
        group = self.new_log_group()
        self.set_faults(group, fail_queries=1, timeout_queries=1, hang_queries=1)
        failed, timed_out, hanging, normal = (self.start(group) for _ in range(4))
        self.assertEqual(self.statuses(failed, 3), ["Running", "Failed", "Failed"])
        self.assertEqual(self.statuses(timed_out, 2), ["Running", "Timeout"])
        self.assertEqual(self.statuses(hanging, 5), ["Running"] * 5)
        self.assertTrue(self.logs.stop_query(queryId=hanging)["success"])
        self.assertEqual(self.statuses(hanging, 1), ["Cancelled"])
        self.assertEqual(self.statuses(normal, 2), ["Running", "Complete"])
        self.assertEqual(self.logs.get_query_results(queryId=failed)["results"], [])

    def test_running_and_scheduled_polls(self) -> None:
        group = self.new_log_group()
        self.set_faults(group, running_polls=3, scheduled_polls=1)
        self.assertEqual(
            self.statuses(self.start(group), 6),
            ["Scheduled", "Running", "Running", "Running", "Complete", "Complete"],
        )
        self.set_faults(group, running_polls=0, scheduled_polls=0)
        self.assertEqual(self.statuses(self.start(group), 1), ["Complete"])
        self.admin("DELETE", f"/_authpulse/faults?log_group={group}")
        self.assertEqual(self.statuses(self.start(group), 2), ["Running", "Complete"])

    def test_get_query_results_server_errors(self) -> None:
        group = self.new_log_group()
        query_id = self.start(group)
        self.set_faults(group, error_get_results=2)
        for _ in range(2):
            self.assert_error(lambda: self.logs.get_query_results(queryId=query_id), "ServiceUnavailableException", 500)
        # The failed calls did not advance the lifecycle.
        self.assertEqual(self.statuses(query_id, 2), ["Running", "Complete"])

    def test_delay_applies_to_every_logs_request_of_the_group(self) -> None:
        slow, fast = self.new_log_group(), self.new_log_group()
        self.set_faults(slow, delay_ms=1000)
        began = time.monotonic()
        self.logs.describe_log_streams(logGroupName=slow)
        self.assertGreaterEqual(time.monotonic() - began, 1.0)
        query_id = self.start(fast)
        began = time.monotonic()
        self.logs.get_query_results(queryId=query_id)
        self.assertLess(time.monotonic() - began, 1.0)

    def test_wildcard_faults_and_clearing(self) -> None:
        group = self.new_log_group()
        self.addCleanup(self.admin, "DELETE", "/_authpulse/faults?log_group=*")
        self.set_faults("*", throttle_start_query=5)
        self.assert_error(lambda: self.start(group), "ThrottlingException")
        status, body = self.admin("DELETE", "/_authpulse/faults?log_group=*")
        self.assertEqual((status, body), (200, {"cleared": "*"}))
        self.assertEqual(self.statuses(self.start(group), 2), ["Running", "Complete"])

        self.set_faults(group, throttle_start_query=5)
        self.admin("DELETE", f"/_authpulse/faults?log_group={group}")
        self.start(group)

    def test_admin_api_rejects_bad_requests(self) -> None:
        self.assertEqual(self.admin("POST", "/_authpulse/faults", {"log_group": "g", "explode": 1})[0], 400)
        self.assertEqual(self.admin("POST", "/_authpulse/faults", {"log_group": "g", "fail_queries": -1})[0], 400)
        self.assertEqual(self.admin("POST", "/_authpulse/faults", {"fail_queries": 1})[0], 400)
        self.assertEqual(self.admin("GET", "/_authpulse/nothing")[0], 404)

    def test_dynamodb_throttling_and_failure_faults_per_table(self) -> None:
        faulty, healthy = f"t-{uuid.uuid4()}", f"t-{uuid.uuid4()}"
        for name in (faulty, healthy):
            self.dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        self.addCleanup(self.admin, "DELETE", f"/_authpulse/faults?log_group={faulty}")
        self.set_faults(faulty, throttle_dynamodb=1, fail_dynamodb=1)
        item = {"pk": {"S": "a"}}
        put = lambda: self.dynamodb.put_item(TableName=faulty, Item=item)  # noqa: E731
        self.dynamodb.put_item(TableName=healthy, Item=item)
        with self.assertRaises(self.dynamodb.exceptions.ClientError) as caught:
            put()
        self.assertEqual(caught.exception.response["Error"]["Code"], "ProvisionedThroughputExceededException")
        # A transaction naming the table is refused too.
        with self.assertRaises(self.dynamodb.exceptions.ClientError) as caught:
            self.dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": faulty, "Item": item}}])
        self.assertEqual(caught.exception.response["Error"]["Code"], "InternalServerError")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        put()
        self.assertEqual(self.dynamodb.get_item(TableName=faulty, Key=item)["Item"], item)

    def test_other_services_and_readiness_probe_pass_through(self) -> None:
        with urllib.request.urlopen(self.endpoint + "/moto-api/") as response:
            self.assertEqual(response.status, 200)
        topic = self.sns.create_topic(Name=f"authpulse-{uuid.uuid4()}")["TopicArn"]
        self.assertIn(topic, [t["TopicArn"] for t in self.sns.list_topics()["Topics"]])


if __name__ == "__main__":
    unittest.main()
