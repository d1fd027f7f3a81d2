//! A webhook receiver on a local port that answers every request with the status the
//! test sets (paths ending in `/reject` always 400), or hangs while the test says so,
//! and records everything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it was answered with; 0: never answered (the receiver hung).
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone)]
struct ReceiverState {
    status: Arc<AtomicU16>,
    hang: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Received>>>,
}

/// A webhook receiver on a local port that answers every request with the status the
/// test sets, and records everything.
pub struct Receiver {
    pub addr: SocketAddr,
    state: ReceiverState,
}

async fn receive(
    State(s): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = s.status.load(Ordering::SeqCst);
    // Paths ending in /reject always answer 400 (a permanent failure).
    let status = if uri.path().ends_with("/reject") {
        400
    } else {
        status
    };
    let hang = s.hang.load(Ordering::SeqCst);
    s.log.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        answered: if hang { 0 } else { status },
    });
    if hang {
        // Never answer: the sender times out and drops the connection, which drops this.
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let state = ReceiverState {
            status: Arc::new(AtomicU16::new(status)),
            hang: Arc::new(AtomicBool::new(false)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// While `hang`, requests are recorded and never answered.
    #[cfg_attr(not(feature = "aws-emulator"), allow(dead_code))]
    pub fn set_hang(&self, hang: bool) {
        self.state.hang.store(hang, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// The JSON bodies of the requests answered 2xx: the alerts a webhook sink delivered.
    #[cfg_attr(not(feature = "aws-emulator"), allow(dead_code))]
    pub fn alerts(&self) -> Vec<Value> {
        self.accepted().iter().map(Received::json).collect()
    }
}

/// Check `X-Authpulse-Signature` the way a receiver would.
pub fn signature_ok(r: &Received, secret: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (
        r.header("x-authpulse-timestamp"),
        r.header("x-authpulse-signature"),
    ) else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let Ok(bytes) = hex::decode(hex_sig) else {
        return false;
    };
    mac.verify_slice(&bytes).is_ok()
}
