"""The pandas side of benches/compare_pandas.sh: what a data scientist would write to get
authpulse's numbers from an export, done the idiomatic way.

Reads EventBridge-wrapped Okta events (NDJSON) in chunks with pandas.read_json, keeps
`user.session.start`, bins `detail.published` by 15 minutes with counts of attempts,
failures and successes, then scores each bin's failures with a rolling z-score against
the previous day (96 bins). Prints one JSON line: events read, events counted, bins,
bins with z > 4, seconds.

    python benches/compare_pandas.py EXPORT.ndjson
"""

import json
import sys
import time

import pandas as pd

CHUNK = 50_000
WINDOW = 96  # one day of 15-minute bins
Z = 4.0


def main(path: str) -> None:
    started = time.perf_counter()
    events = 0
    parts = []
    for chunk in pd.read_json(path, lines=True, chunksize=CHUNK, dtype=False):
        events += len(chunk)
        detail = pd.json_normalize(chunk["detail"].tolist())
        sessions = detail[detail["eventType"] == "user.session.start"]
        result = sessions["outcome.result"]
        frame = pd.DataFrame(
            {
                "bin": pd.to_datetime(sessions["published"], utc=True).dt.floor("15min"),
                "total": 1,
                "failure": (result == "FAILURE").astype("int64"),
                "success": (result == "SUCCESS").astype("int64"),
            }
        )
        parts.append(frame.groupby("bin").sum())
    # Chunks can split a bin: add the partial counts up.
    bins = pd.concat(parts).groupby(level=0).sum().asfreq("15min", fill_value=0)
    history = bins["failure"].shift(1).rolling(WINDOW, min_periods=WINDOW // 2)
    z = (bins["failure"] - history.mean()) / history.std().clip(lower=1.0)
    print(
        json.dumps(
            {
                "events": events,
                "counted": int(bins["total"].sum()),
                "bins": len(bins),
                "flagged": int((z > Z).sum()),
                "seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
