"""The DuckDB side of benches/compare_duckdb.sh: parse + filter + bin only, the part of a
backtest a user would hand to DuckDB.

Reads EventBridge-wrapped Okta events (NDJSON) with `read_json` and an explicit column
struct (no schema sampling), keeps `user.session.start`, and counts attempts, failures
and successes per 15-minute `time_bucket`. Prints one JSON line: events counted, bins,
seconds (inside Python, after `import duckdb`).

    python benches/compare_duckdb.py EXPORT.ndjson [THREADS]
"""

import json
import sys
import time

import duckdb

QUERY = """
SELECT time_bucket(INTERVAL '15 minutes', CAST(detail.published AS TIMESTAMP)) AS bin,
       count(*) AS total,
       count(*) FILTER (WHERE detail.outcome.result = 'FAILURE') AS failure,
       count(*) FILTER (WHERE detail.outcome.result = 'SUCCESS') AS success
FROM read_json(?, format = 'newline_delimited', columns = {
    'detail': 'STRUCT(published VARCHAR, "eventType" VARCHAR, outcome STRUCT(result VARCHAR))'
})
WHERE detail."eventType" = 'user.session.start'
GROUP BY bin
ORDER BY bin
"""


def main(path: str, threads: int) -> None:
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    rows = con.execute(QUERY, [path]).fetchall()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "counted": sum(r[1] for r in rows),
                "bins": len(rows),
                "seconds": round(seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
