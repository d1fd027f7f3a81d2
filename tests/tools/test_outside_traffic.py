"""scripts/outside-traffic.py: deterministic, Okta-shaped, labelled as `evaluate` reads it,
and read by authpulse without a dropped line (run by scripts/test.sh after the cargo
tests, with target/debug/authpulse built)."""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "outside-traffic.py")
AUTHPULSE = os.environ.get("AUTHPULSE_BIN", os.path.join(ROOT, "target", "debug", "authpulse"))


def generate(tmp, name, seed=7):
    out, labels = os.path.join(tmp, name + ".ndjson.gz"), os.path.join(tmp, name + ".labels.jsonl")
    subprocess.run(
        [sys.executable, SCRIPT, "--seed", str(seed), "--users", "120", "--days", "28",
         "--out", out, "--labels", labels],
        check=True, capture_output=True,
    )
    return out, labels


class OutsideTraffic(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.events, cls.labels = generate(cls.tmp.name, "a")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_the_same_seed_gives_the_same_bytes(self):
        events, labels = generate(self.tmp.name, "b")
        with gzip.open(self.events, "rb") as a, gzip.open(events, "rb") as b:
            self.assertEqual(a.read(), b.read())
        with open(self.labels, "rb") as a, open(labels, "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_events_are_eventbridge_envelopes_of_okta_events(self):
        kinds = set()
        with gzip.open(self.events, "rt") as f:
            for line in f:
                e = json.loads(line)
                self.assertEqual(e["detail-type"], "SystemLog")
                d = e["detail"]
                for key in ("uuid", "published", "eventType", "actor", "client", "outcome"):
                    self.assertIn(key, d)
                kinds.add(d["eventType"])
        for k in ("user.session.start", "security.threat.detected",
                  "user.authentication.auth_via_mfa", "user.mfa.okta_verify.deny_push"):
            self.assertIn(k, kinds)

    def test_labels_cover_every_class_and_authpulse_scores_them(self):
        with open(self.labels) as f:
            labels = [json.loads(line) for line in f]
        kinds = {x["kind"] for x in labels}
        for k in ("quiet_stuffing", "distributed_spraying", "outage", "short_gap_night",
                  "benign_reset_wave", "benign_holiday"):
            self.assertIn(k, kinds)
        alerts = os.path.join(self.tmp.name, "a.alerts.jsonl")
        run = subprocess.run(
            [AUTHPULSE, "backtest", "--config", os.path.join(ROOT, "scripts", "outside-org.toml"),
             "--events", self.events, "--alerts-out", alerts],
            capture_output=True, text=True,
        )
        # Exit 3 would mean lines were dropped (late or outside the time window).
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        run = subprocess.run(
            [AUTHPULSE, "evaluate", "--alerts", alerts, "--labels", self.labels, "--days", "28"],
            capture_output=True, text=True,
        )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("Recall", run.stdout)


if __name__ == "__main__":
    unittest.main()
