//! Errors of the Azure layer. They carry what an operator needs (the request,
//! Azure's error code and message, what to do) and never a request body: the
//! only body that could hold a secret is the Key Vault set-secret body, and no
//! error is built from a request body.

use std::fmt;
use std::time::Duration;

/// Anything that went wrong talking to Azure or planning against it.
#[derive(Debug)]
pub enum AzureError {
    /// No credential produced a token.
    Credential(String),
    /// A configured endpoint is unusable (bad URL, plain http to a
    /// non-loopback host, a poll URL on a foreign host).
    Endpoint(String),
    /// The request did not get an HTTP answer (connection, TLS, timeout).
    Transport {
        method: String,
        url: String,
        message: String,
    },
    /// Azure answered with an error status (ARM/Key Vault error body parsed).
    Api {
        status: u16,
        method: String,
        url: String,
        code: String,
        message: String,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    Operation {
        resource: String,
        status: String,
        code: String,
        message: String,
    },
    /// A long-running operation did not finish in time.
    Timeout { resource: String, waited: Duration },
    /// An answer could not be understood.
    Decode { url: String, message: String },
    /// The live state or the blueprint does not allow going on (OIDC issuer
    /// off, VM size not offered, replace without the flag, ...).
    Precondition(Vec<String>),
}

impl AzureError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Azure's error code (`ResourceNotFound`, `SecretNotFound`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Api { code, .. } | AzureError::Operation { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn precondition(msg: impl Into<String>) -> Self {
        AzureError::Precondition(vec![msg.into()])
    }
}

impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureError::Credential(m) => write!(f, "Azure credentials: {m}"),
            AzureError::Endpoint(m) => write!(f, "Azure endpoint: {m}"),
            AzureError::Transport {
                method,
                url,
                message,
            } => write!(f, "{method} {url}: no answer from Azure: {message}"),
            AzureError::Api {
                status,
                method,
                url,
                code,
                message,
            } => {
                write!(f, "{method} {url} failed with HTTP {status}")?;
                if !code.is_empty() {
                    write!(f, " ({code})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                match status {
                    401 => write!(
                        f,
                        "\n  hint: the token was rejected; run `az login` again (or check the workload identity federation)"
                    ),
                    403 => write!(
                        f,
                        "\n  hint: the identity running stateplan lacks a role for this request; see the Azure RBAC roles in the README"
                    ),
                    _ => Ok(()),
                }
            }
            AzureError::Operation {
                resource,
                status,
                code,
                message,
            } => {
                write!(f, "{resource}: Azure operation {status}")?;
                if !code.is_empty() {
                    write!(f, " ({code})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            AzureError::Timeout { resource, waited } => write!(
                f,
                "{resource}: Azure operation still running after {}s; it continues in Azure, re-run apply later to converge",
                waited.as_secs()
            ),
            AzureError::Decode { url, message } => {
                write!(f, "{url}: unexpected answer from Azure: {message}")
            }
            AzureError::Precondition(msgs) => {
                for (i, m) in msgs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{m}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AzureError {}
