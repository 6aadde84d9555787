//! Retries with exponential backoff for transient failures: 429, 5xx and
//! transport errors/timeouts. kube's client already retries 429/503/504 a
//! few times; this layer also covers 500/502 and dropped connections, for
//! idempotent requests only (GET, LIST, server-side apply, delete, merge
//! patch to a fixed value).

use std::future::Future;
use std::time::Duration;

/// Attempts in total (first try included).
const ATTEMPTS: u32 = 5;
const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Whether an error is worth retrying.
pub fn is_retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `f` until it succeeds, fails with a non-retryable error, or the
/// attempts are used up.
pub async fn with_retry<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && is_retryable(&e) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
