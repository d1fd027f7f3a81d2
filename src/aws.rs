//! Shared AWS set-up: credentials and region from the default chain (environment,
//! profile, ECS task role, IMDS), and an optional endpoint override for emulators
//! (`endpoint_url` in config, or the SDK's own `AWS_ENDPOINT_URL`).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use crate::retry::RemoteError;

pub async fn sdk_config(region: Option<String>, endpoint_url: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Error codes that mean "slow down and try again".
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "KMSThrottlingException",
];

/// Is this SDK error worth retrying? Network trouble, timeouts, throttling and 5xx are;
/// validation errors and missing resources are not.
pub fn classify_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, HttpResponse>,
) -> RemoteError {
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let msg = se.err().message().unwrap_or("");
            let status = se.raw().status().as_u16();
            let text = format!("{code} (HTTP {status}): {msg}");
            if THROTTLING.contains(&code) || status >= 500 || status == 429 {
                RemoteError::Transient(text)
            } else {
                RemoteError::Permanent(text)
            }
        }
        SdkError::ConstructionFailure(_) => RemoteError::Permanent(format!("{e}")),
        other => RemoteError::Transient(aws_error_text(other)),
    }
}

/// The full error chain of an SDK error, for logs (SDK errors hide their cause in
/// `Display`).
pub fn aws_error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
