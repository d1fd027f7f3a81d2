//! SNS delivery through the AWS emulator (moto, started by `scripts/test.sh`): an SQS
//! queue subscribed to the topic receives the alert with its Subject, message and
//! attributes; a filter policy on the attributes routes; the daemon delivers through SNS.

use std::collections::BTreeSet;
use std::time::Duration;

use authpulse::alert::Alert;
use authpulse::retry::RemoteError;
use serde_json::{json, Value};

use crate::support::{self, aws, traffic};

/// The sink reads credentials from the AWS default chain, like in production: give it
/// the emulator's dummy ones (scripts/test.sh exports the same).
fn aws_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    });
}

struct Topic {
    arn: String,
    sqs: aws_sdk_sqs::Client,
}

/// A topic and a queue subscribed to it (`raw`: RawMessageDelivery; `filter`: a filter
/// policy on message attributes). Returns the queue URL.
async fn subscribe_queue(topic: &Topic, raw: bool, filter: Option<Value>) -> String {
    let sns = aws_sdk_sns::Client::new(&aws::sdk_config().await);
    let url = topic
        .sqs
        .create_queue()
        .queue_name(aws::unique("authpulse-q"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = topic
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let mut sub = sns
        .subscribe()
        .topic_arn(&topic.arn)
        .protocol("sqs")
        .endpoint(arn)
        .return_subscription_arn(true);
    if raw {
        sub = sub.attributes("RawMessageDelivery", "true");
    }
    if let Some(f) = filter {
        sub = sub.attributes("FilterPolicy", f.to_string());
    }
    sub.send().await.unwrap();
    url
}

async fn topic() -> Topic {
    let conf = aws::sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let arn = sns
        .create_topic()
        .name(aws::unique("authpulse-alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    Topic {
        arn,
        sqs: aws_sdk_sqs::Client::new(&conf),
    }
}

/// Receive until `n` messages arrived or 15 s passed.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        out.extend(r.messages.unwrap_or_default());
    }
    out
}

fn alert(status: &str, severity: &str, bin_start: &str) -> Alert {
    serde_json::from_value::<Alert>(json!({
        "status": status, "rule": "okta-sign-ins", "detector": "failure_spike",
        "series": {"client.ipAddress": "203.0.113.9"},
        "bin_start": bin_start, "bin_end": bin_start,
        "observed": 412.0, "expected": 23.4, "lower": 0.0, "upper": 61.0, "p_value": 1e-14,
        "severity": severity, "fingerprint": "3fa19c0d2b7e4a11",
        "summary": "Failed sign-ins spiked (credential stuffing or password spraying?): 412 failed sign-ins in the 15m bin, expected about 23.",
        "measure": "failed sign-ins", "started_at": bin_start,
        "investigate": "fields @timestamp | limit 200", "kind": "credential_stuffing",
    }))
    .unwrap()
    .with_idempotency_key()
}

async fn sns_sink(topic_arn: &str) -> std::sync::Arc<dyn authpulse::sink::Sink> {
    let config = authpulse::config::from_toml(&format!(
        "[[sinks]]\nkind = \"sns\"\ntopic_arn = \"{topic_arn}\"\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n",
        aws::endpoint()
    ))
    .unwrap();
    config.sinks[0]
        .build(0, authpulse::clock::system())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_queue_gets_subject_message_and_attributes() {
    aws_env();
    let topic = topic().await;
    let envelope_q = subscribe_queue(&topic, false, None).await;
    let critical_q = subscribe_queue(&topic, true, Some(json!({"severity": ["critical"]}))).await;
    let sink = sns_sink(&topic.arn).await;

    let firing = alert("firing", "critical", "2026-11-25T10:15:00Z");
    let resolved = alert("resolved", "warning", "2026-11-25T11:00:00Z");
    sink.send(&firing).await.unwrap();
    sink.send(&resolved).await.unwrap();

    // The standard SNS envelope.
    let got = receive(&topic.sqs, &envelope_q, 2).await;
    assert_eq!(got.len(), 2);
    let mut seen = BTreeSet::new();
    for m in &got {
        let env: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(env["Type"], "Notification");
        assert_eq!(env["TopicArn"], topic.arn.as_str());
        let subject = env["Subject"].as_str().unwrap();
        assert!(subject.len() <= 100 && subject.is_ascii(), "{subject}");
        // SQS subscribers get the `default` message: the alert JSON itself.
        let a: Alert = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        let want = if a.status == firing.status {
            &firing
        } else {
            &resolved
        };
        assert_eq!(&a, want);
        assert_eq!(subject, authpulse::sink::render::subject(want));
        let attrs = &env["MessageAttributes"];
        let status = if want == &firing {
            "firing"
        } else {
            "resolved"
        };
        assert_eq!(attrs["status"]["Value"], status);
        assert_eq!(attrs["severity"]["Value"], want.severity.to_string());
        assert_eq!(attrs["rule"]["Value"], "okta-sign-ins");
        assert_eq!(attrs["detector"]["Value"], "failure_spike");
        assert_eq!(
            attrs["idempotency_key"]["Value"],
            want.idempotency_key.as_str()
        );
        seen.insert(a.idempotency_key);
    }
    assert_eq!(seen.len(), 2);
    assert!(firing
        .idempotency_key
        .starts_with("3fa19c0d2b7e4a11-firing-20261125T101500Z"));

    // Raw delivery with a filter policy: only the critical one, attributes as SQS
    // message attributes.
    let got = receive(&topic.sqs, &critical_q, 1).await;
    assert_eq!(got.len(), 1);
    let a: Alert = serde_json::from_str(got[0].body().unwrap()).unwrap();
    assert_eq!(a, firing);
    let attrs = got[0].message_attributes().unwrap();
    assert_eq!(attrs["severity"].string_value(), Some("critical"));
    assert_eq!(attrs["status"].string_value(), Some("firing"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receive_now(&topic.sqs, &critical_q).await.is_empty());
}

async fn receive_now(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_a_permanent_failure() {
    aws_env();
    let sink = sns_sink(&format!(
        "arn:aws:sns:us-east-1:123456789012:{}",
        aws::unique("no-such-topic")
    ))
    .await;
    let e = sink
        .send(&alert("firing", "critical", "2026-11-25T10:15:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(e, RemoteError::Permanent(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_pages_through_sns() {
    aws_env();
    let topic = topic().await;
    let q = subscribe_queue(&topic, true, None).await;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    traffic::append(&events, &traffic::traffic_lines(0..60, 40..44));
    let sinks = format!(
        "[[sinks]]\nkind = \"sns\"\ntopic_arn = \"{}\"\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n",
        topic.arn,
        aws::endpoint()
    );
    let (config, port) = traffic::config(dir.path(), &events, false, &sinks);
    let expected = traffic::expected_alerts(&config, &events);
    let want: BTreeSet<String> = expected
        .iter()
        .map(|a| a["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    let log = dir.path().join("daemon.log");
    let mut d = support::Daemon::start(&config, port, &log, &[]);
    d.wait_ready(Duration::from_secs(30)).await;
    let got = receive(&topic.sqs, &q, want.len()).await;
    let keys: BTreeSet<String> = got
        .iter()
        .map(|m| {
            let a: Alert = serde_json::from_str(m.body().unwrap()).unwrap();
            a.idempotency_key
        })
        .collect();
    assert_eq!(keys, want, "log:\n{}", d.log_text());
    assert!(d.terminate().success());
}
