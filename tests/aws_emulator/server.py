"""The authpulse AWS emulator: moto, with a real Logs Insights engine and fault injection.

    python tests/aws_emulator/server.py --host 127.0.0.1 --port 4566

Once it accepts connections it prints one line, ``emulator listening on
http://HOST:PORT``, to stdout (``--port 0`` picks a free port; read it from that line).
SIGTERM or SIGINT stops it cleanly.

What it changes in moto (everything else, SNS, SQS, PutLogEvents, ``/moto-api/``, ...,
is moto unchanged):

* StartQuery, GetQueryResults, StopQuery and DescribeQueries are answered by
  :class:`InsightsService`, which runs ``insights_engine`` over a snapshot of the log
  events taken at StartQuery, reports ``statistics``, and moves each query through
  ``Scheduled`` -> ``Running`` -> ``Complete`` across successive GetQueryResults calls.
* ``/_authpulse/`` is a small admin API (see README.md) to inject faults per log group
  and to list the queries started so far.
* DynamoDB (moto's, unchanged) can be made to throttle or fail per table, through the
  same admin API: the "log group" of a DynamoDB fault is the table name.

Errors use the AWS JSON 1.1 shape the Rust SDK parses: an HTTP status, an
``X-Amzn-ErrorType: <Code>`` header and a ``{"__type": "<Code>", "message": ...}`` body.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from moto.core.exceptions import JsonRESTError
from moto.logs.responses import LogsResponse
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

import insights_engine as engine

LOGS_TARGET_PREFIX = "Logs_20140328."
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
MAX_LOG_GROUPS_PER_QUERY = 50  # StartQuery's documented maximum
MAX_QUERY_STRING_LENGTH = 10_000  # StartQuery's queryString length constraint
ACTIVE_STATUSES = ("Scheduled", "Running")
ZERO_STATISTICS = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}

# Fault counters are used up one per StartQuery (or GetQueryResults); settings persist.
FAULT_COUNTERS = (
    "throttle_start_query",
    "limit_exceeded_start_query",
    "fail_queries",
    "timeout_queries",
    "hang_queries",
    "error_get_results",
    # DynamoDB, per table name: each request naming the table uses one up.
    "throttle_dynamodb",
    "fail_dynamodb",
)
FAULT_SETTINGS = ("running_polls", "scheduled_polls", "delay_ms")
ALL_GROUPS = "*"


class AwsError(JsonRESTError):
    """An AWS JSON 1.1 error. moto turns it into the status, header and body."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any):
        super().__init__(code, message)
        self.code = status
        self.content_type = "application/x-amz-json-1.1"
        if extra:
            self.description = json.dumps({"__type": code, "message": message, **extra})


def invalid_parameter(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def aws_json(payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A successful response body with the service's content type (moto's default is HTML)."""
    return json.dumps(payload), {"Content-Type": "application/x-amz-json-1.1"}


# ------------------------------------------------------------------------- faults


class FaultBook:
    """Fault settings per log group, where "*" applies to every group.

    A query touching several log groups consults each of them in order, then "*".
    Counters count down as they fire; settings stay until cleared.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, dict[str, int]] = {}

    @staticmethod
    def validate(settings: dict[str, Any]) -> dict[str, int]:
        known = FAULT_COUNTERS + FAULT_SETTINGS
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {list(known)}")
        for key, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer")
        return dict(settings)

    def update(self, group: str, settings: dict[str, Any]) -> dict[str, int]:
        checked = self.validate(settings)
        with self._lock:
            faults = self._faults.setdefault(group, {})
            faults.update(checked)
            return dict(faults)

    def clear(self, group: str | None) -> None:
        with self._lock:
            if group is None:
                self._faults.clear()
            else:
                self._faults.pop(group, None)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {group: dict(faults) for group, faults in self._faults.items()}

    def _lookup(self, groups: Iterable[str], key: str, usable: Callable[[Any], bool]) -> dict[str, int] | None:
        for group in [*groups, ALL_GROUPS]:
            faults = self._faults.get(group)
            if faults and usable(faults.get(key)):
                return faults
        return None

    def take(self, groups: Iterable[str], counter: str) -> bool:
        """Uses up one `counter` fault from the first group that has one left."""
        with self._lock:
            faults = self._lookup(groups, counter, lambda left: bool(left))
            if faults is None:
                return False
            faults[counter] -= 1
            return True

    def setting(self, groups: Iterable[str], name: str) -> int | None:
        """The first group's value for `name`, or None where no group sets it."""
        with self._lock:
            faults = self._lookup(groups, name, lambda value: value is not None)
            return None if faults is None else faults[name]


# ------------------------------------------------------------------------ queries


@dataclass
class TrackedQuery:
    """One started query: its snapshot result and where it is in its lifecycle."""

    query_id: str
    query_string: str
    log_group_names: list[str]
    start_time: int
    end_time: int
    account_id: str
    region: str
    create_time: int  # epoch milliseconds
    result: engine.QueryResult
    scheduled_polls: int  # polls answered "Scheduled"
    running_polls: int  # polls answered "Running" after those
    outcome: str | None  # final status: Complete, Failed or Timeout; None hangs
    status: str = "Scheduled"
    polls: int = 0

    def poll(self) -> str:
        """Advances the lifecycle by one GetQueryResults call."""
        if self.status in ACTIVE_STATUSES:
            self.polls += 1
            if self.polls <= self.scheduled_polls:
                self.status = "Scheduled"
            elif self.outcome is None or self.polls <= self.scheduled_polls + self.running_polls:
                self.status = "Running"
            else:
                self.status = self.outcome
        return self.status

    def describe(self) -> dict[str, Any]:
        """The admin API's view, statistics included whatever the status."""
        return {
            "queryId": self.query_id,
            "queryString": self.query_string,
            "logGroupNames": self.log_group_names,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "createTime": self.create_time,
            "status": self.status,
            "statistics": self.result.statistics,
        }


def log_group_name(identifier: str) -> str:
    """A log group name from a name or an ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME)."""
    return identifier.partition(":log-group:")[2] if identifier.startswith("arn:") else identifier


class InsightsService:
    """Answers the Logs Insights operations in place of moto's own handlers."""

    def __init__(self, running_polls: int = 1, scheduled_polls: int = 0):
        self.faults = FaultBook()
        self.default_running_polls = running_polls
        self.default_scheduled_polls = scheduled_polls
        self._lock = threading.Lock()
        self._queries: dict[str, TrackedQuery] = {}

    def install(self) -> None:
        """Replaces the query handlers on moto's LogsResponse, process-wide. moto
        dispatches on the method named after the X-Amz-Target action, so StopQuery,
        which moto lacks, starts working too."""
        LogsResponse.start_query = lambda response: self.start_query(response)
        LogsResponse.get_query_results = lambda response: self.get_query_results(response)
        LogsResponse.stop_query = lambda response: self.stop_query(response)
        LogsResponse.describe_queries = lambda response: self.describe_queries(response)

    # -- lookups shared with the admin API and the delay middleware

    def queries(self, log_group: str | None = None) -> list[TrackedQuery]:
        with self._lock:
            return [q for q in self._queries.values() if log_group is None or log_group in q.log_group_names]

    def log_groups_of_query(self, query_id: str) -> list[str]:
        with self._lock:
            query = self._queries.get(query_id)
        return query.log_group_names if query else []

    def _find(self, response: LogsResponse) -> TrackedQuery:
        query_id = response._get_param("queryId")
        with self._lock:
            query = self._queries.get(query_id)
        # Queries belong to an account and region, as in AWS.
        if query is None or (query.account_id, query.region) != (response.current_account, response.region):
            raise AwsError("ResourceNotFoundException", f"Query {query_id} does not exist.")
        return query

    # -- the operations

    def start_query(self, response: LogsResponse) -> tuple[str, dict[str, str]]:
        names = self._requested_log_groups(response)

        # Throttling answers before anything else is looked at, as at AWS's front door.
        if self.faults.take(names, "throttle_start_query"):
            raise AwsError("ThrottlingException", "Rate exceeded")
        if self.faults.take(names, "limit_exceeded_start_query"):
            raise AwsError("LimitExceededException", "Resource limit exceeded.")

        start_time = response._get_int_param("startTime")
        end_time = response._get_int_param("endTime")
        query_string = response._get_param("queryString")
        limit = response._get_int_param("limit")
        if start_time is None or end_time is None or not query_string:
            raise invalid_parameter("startTime, endTime and queryString are required.")
        if end_time < start_time:
            raise invalid_parameter("endTime must not be before startTime.")
        if len(query_string) > MAX_QUERY_STRING_LENGTH:
            raise invalid_parameter(f"queryString is longer than {MAX_QUERY_STRING_LENGTH} characters.")
        if limit is not None and not 1 <= limit <= engine.MAX_RESULT_ROWS:
            raise invalid_parameter(f"limit must be between 1 and {engine.MAX_RESULT_ROWS}.")
        if response._get_param("queryLanguage", "CWLI") != "CWLI":
            raise invalid_parameter("The emulator only runs Logs Insights QL (queryLanguage CWLI).")

        backend = response.logs_backend
        missing = [name for name in names if name not in backend.groups]
        if missing:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")

        try:
            query = engine.parse_query(query_string)
        except engine.MalformedQueryError as error:
            raise AwsError(
                "MalformedQueryException",
                error.message,
                queryCompileError={
                    "location": {"startCharOffset": error.start, "endCharOffset": error.end},
                    "message": error.message,
                },
            )

        events = list(self._snapshot(backend, names, response.current_account))
        result = engine.run_query(query, events, start_time, end_time, limit)

        if self.faults.take(names, "fail_queries"):
            outcome: str | None = "Failed"
        elif self.faults.take(names, "timeout_queries"):
            outcome = "Timeout"
        elif self.faults.take(names, "hang_queries"):
            outcome = None
        else:
            outcome = "Complete"
        running_polls = self.faults.setting(names, "running_polls")
        scheduled_polls = self.faults.setting(names, "scheduled_polls")

        tracked = TrackedQuery(
            query_id=str(uuid.uuid4()),
            query_string=query_string,
            log_group_names=names,
            start_time=start_time,
            end_time=end_time,
            account_id=response.current_account,
            region=response.region,
            create_time=int(time.time() * 1000),
            result=result,
            scheduled_polls=self.default_scheduled_polls if scheduled_polls is None else scheduled_polls,
            running_polls=self.default_running_polls if running_polls is None else running_polls,
            outcome=outcome,
        )
        with self._lock:
            self._queries[tracked.query_id] = tracked
        return aws_json({"queryId": tracked.query_id})

    def get_query_results(self, response: LogsResponse) -> tuple[str, dict[str, str]]:
        query = self._find(response)
        if self.faults.take(query.log_group_names, "error_get_results"):
            raise AwsError("ServiceUnavailableException", "The service cannot complete the request.", status=500)
        with self._lock:
            status = query.poll()
        complete = status == "Complete"
        return aws_json(
            {
                "queryLanguage": "CWLI",
                "results": query.result.rows if complete else [],
                "statistics": query.result.statistics if complete else ZERO_STATISTICS,
                "status": status,
            }
        )

    def stop_query(self, response: LogsResponse) -> tuple[str, dict[str, str]]:
        query = self._find(response)
        with self._lock:
            if query.status not in ACTIVE_STATUSES:
                # The API reference: "If the query has already ended, the operation
                # returns an error indicating that the specified query is not running."
                raise invalid_parameter(f"Query {query.query_id} is not running (status {query.status}).")
            query.status = "Cancelled"
        return aws_json({"success": True})

    def describe_queries(self, response: LogsResponse) -> tuple[str, dict[str, str]]:
        log_group = response._get_param("logGroupName")
        status = response._get_param("status")
        found = [
            q
            for q in self.queries(log_group)
            if (q.account_id, q.region) == (response.current_account, response.region)
            and (status is None or q.status == status)
        ]
        return aws_json(
            {
                "queries": [
                    {
                        "queryId": q.query_id,
                        "queryString": q.query_string,
                        "status": q.status,
                        "createTime": q.create_time,
                        "logGroupName": q.log_group_names[0],
                        "queryLanguage": "CWLI",
                    }
                    for q in found
                ]
            }
        )

    # -- helpers

    @staticmethod
    def _requested_log_groups(response: LogsResponse) -> list[str]:
        name = response._get_param("logGroupName")
        names = response._get_param("logGroupNames")
        identifiers = response._get_param("logGroupIdentifiers")
        if sum(1 for given in (name, names, identifiers) if given) != 1:
            raise invalid_parameter(
                "A StartQuery operation must include exactly one of the following parameters: "
                "logGroupName, logGroupNames, or logGroupIdentifiers."
            )
        if name:
            return [name]
        for identifier in identifiers or []:
            if identifier.startswith("arn:") and (identifier.endswith("*") or not log_group_name(identifier)):
                raise invalid_parameter(f"Invalid log group ARN {identifier!r} (it can't end with *).")
        requested = list(names) if names else [log_group_name(i) for i in identifiers]
        if len(requested) > MAX_LOG_GROUPS_PER_QUERY:
            raise invalid_parameter(f"A query can include at most {MAX_LOG_GROUPS_PER_QUERY} log groups.")
        return requested

    @staticmethod
    def _snapshot(backend: Any, names: list[str], account_id: str) -> Iterable[engine.SourceEvent]:
        """The events stored right now; list() copies so later PutLogEvents don't leak in."""
        for name in names:
            for stream in list(backend.groups[name].streams.values()):
                for event in list(stream.events):
                    pointer = f"{name}\0{stream.log_stream_name}\0{event.event_id}"
                    yield engine.SourceEvent(
                        timestamp=event.timestamp,
                        message=event.message,
                        ingestion_time=event.ingestion_time,
                        log_group=name,
                        log_stream=stream.log_stream_name,
                        account_id=account_id,
                        ptr=base64.urlsafe_b64encode(pointer.encode()).decode(),
                    )


# --------------------------------------------------------------------- HTTP layer


def json_response(start_response: Any, status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class EmulatorApp:
    """WSGI wrapper around moto: serves /_authpulse/, applies per-group delays to
    CloudWatch Logs requests, and hands every request on to moto."""

    def __init__(self, moto_app: Any, service: InsightsService):
        self.moto_app = moto_app
        self.service = service

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_authpulse/"):
            return self.admin(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(LOGS_TARGET_PREFIX):
            self.delay(environ)
        if target.startswith(DYNAMODB_TARGET_PREFIX):
            refused = self.dynamodb_fault(environ, start_response)
            if refused is not None:
                return refused
        return self.moto_app(environ, start_response)

    @staticmethod
    def dynamodb_tables(params: dict[str, Any]) -> list[str]:
        """The tables a DynamoDB request names (TableName, or each item of a transaction
        or batch)."""
        tables = [params.get("TableName")]
        for item in params.get("TransactItems") or []:
            if isinstance(item, dict):
                tables += [op.get("TableName") for op in item.values() if isinstance(op, dict)]
        for key in ("RequestItems",):
            if isinstance(params.get(key), dict):
                tables += list(params[key])
        return [t for t in tables if isinstance(t, str) and t]

    def dynamodb_fault(self, environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
        """Answers a DynamoDB request with an injected error, or None to let moto answer."""
        try:
            params = json.loads(self.read_body(environ) or b"{}")
        except ValueError:
            return None
        if not isinstance(params, dict):
            return None
        tables = self.dynamodb_tables(params)
        faults = self.service.faults
        if faults.take(tables, "throttle_dynamodb"):
            code, status, message = "ProvisionedThroughputExceededException", "400 Bad Request", "Throughput exceeded (injected)"
        elif faults.take(tables, "fail_dynamodb"):
            code, status, message = "InternalServerError", "500 Internal Server Error", "Internal server error (injected)"
        else:
            return None
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amzn-ErrorType", code),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    @staticmethod
    def read_body(environ: dict[str, Any]) -> bytes:
        """Reads the request body and puts it back for moto to read again."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def delay(self, environ: dict[str, Any]) -> None:
        try:
            params = json.loads(self.read_body(environ) or b"{}")
        except ValueError:
            return  # moto answers the malformed body
        if not isinstance(params, dict):
            return
        groups = [params.get("logGroupName"), params.get("logGroupIdentifier")]
        groups += params.get("logGroupNames") or []
        groups += [log_group_name(i) for i in params.get("logGroupIdentifiers") or [] if isinstance(i, str)]
        if params.get("queryId"):
            groups += self.service.log_groups_of_query(params["queryId"])
        delay_ms = self.service.faults.setting([g for g in groups if isinstance(g, str) and g], "delay_ms")
        if delay_ms:
            time.sleep(delay_ms / 1000)

    def admin(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        log_group = query.get("log_group")
        faults = self.service.faults

        if path == "/_authpulse/faults" and method == "POST":
            try:
                settings = json.loads(self.read_body(environ) or b"{}")
                if not isinstance(settings, dict) or not isinstance(settings.get("log_group"), str):
                    raise ValueError('the body must be a JSON object with a "log_group" string')
                group = settings.pop("log_group")
                current = faults.update(group, settings)
            except ValueError as error:
                return json_response(start_response, "400 Bad Request", {"error": str(error)})
            return json_response(start_response, "200 OK", {"log_group": group, "faults": current})
        if path == "/_authpulse/faults" and method == "DELETE":
            faults.clear(log_group)
            return json_response(start_response, "200 OK", {"cleared": log_group or "all"})
        if path == "/_authpulse/faults" and method == "GET":
            return json_response(start_response, "200 OK", faults.snapshot())
        if path == "/_authpulse/queries" and method == "GET":
            queries = self.service.queries(log_group)
            return json_response(start_response, "200 OK", [q.describe() for q in queries])
        return json_response(start_response, "404 Not Found", {"error": f"no admin route {method} {path}"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument(
        "--running-polls", type=int, default=1, help="GetQueryResults calls answered Running (default 1)"
    )
    parser.add_argument(
        "--scheduled-polls",
        type=int,
        default=0,
        help="GetQueryResults calls answered Scheduled before those (default 0)",
    )
    args = parser.parse_args(argv)

    service = InsightsService(running_polls=args.running_polls, scheduled_polls=args.scheduled_polls)
    service.install()
    app = EmulatorApp(DomainDispatcherApplication(create_backend_app), service)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    # moto builds some URLs (SQS queue URLs, for one) from MOTO_PORT, as `moto_server` sets it.
    os.environ.setdefault("MOTO_PORT", str(server.server_port))

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    serving = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    serving.start()
    print(f"emulator listening on http://{args.host}:{server.server_port}", flush=True)
    while not stopping.wait(0.5):
        pass
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
