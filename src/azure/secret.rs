//! Generated secret values: drawn from the operating system's CSPRNG, held in
//! a type whose `Debug`/`Display` are redacted and whose memory is wiped on
//! drop. The value is only ever read to build the Key Vault request body.

use std::fmt;

use zeroize::Zeroizing;

use super::AzureError;
use crate::catalog::Alphabet;

/// A secret value. Prints as `<redacted>`; never serialisable.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// The value, for the one place that must send it (the Key Vault body).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps an existing value (tests).
    pub fn from_string(value: String) -> Self {
        SecretValue(Zeroizing::new(value))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, AzureError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::getrandom(&mut buf).map_err(|e| {
        AzureError::precondition(format!(
            "the operating system's random number generator failed: {e}"
        ))
    })?;
    Ok(buf)
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling,
/// no modulo bias).
fn draw(length: usize, alphabet: &[u8]) -> Result<Zeroizing<String>, AzureError> {
    let n = alphabet.len();
    // Largest multiple of n that fits in a byte: bytes at or above it are
    // rejected so every symbol is equally likely.
    let limit = 256 - (256 % n);
    let mut out = Zeroizing::new(String::with_capacity(length));
    while out.len() < length {
        let bytes = random_bytes((length - out.len()) * 2)?;
        for &b in bytes.iter() {
            if usize::from(b) < limit && out.len() < length {
                out.push(char::from(alphabet[usize::from(b) % n]));
            }
        }
    }
    Ok(out)
}

fn base64(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A new secret: `length` characters of `alphabet` (for `Base64Bytes`,
/// `length` random bytes, base64-encoded).
pub fn generate(length: usize, alphabet: Alphabet) -> Result<SecretValue, AzureError> {
    if length == 0 {
        return Err(AzureError::precondition(
            "a generated secret needs a length of at least 1",
        ));
    }
    let value = match alphabet {
        Alphabet::Alphanumeric => draw(length, ALPHANUMERIC)?,
        Alphabet::Hex => draw(length, HEX)?,
        Alphabet::Base64Bytes => base64(&random_bytes(length)?),
    };
    Ok(SecretValue(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_alphabets() {
        let a = generate(32, Alphabet::Alphanumeric).expect("rng");
        assert_eq!(a.len(), 32);
        assert!(a.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        let h = generate(40, Alphabet::Hex).expect("rng");
        assert_eq!(h.len(), 40);
        assert!(h.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let b = generate(16, Alphabet::Base64Bytes).expect("rng");
        assert_eq!(b.len(), 24);
        assert!(b.expose().ends_with("=="));
        assert_ne!(
            generate(32, Alphabet::Alphanumeric).expect("rng").expose(),
            a.expose()
        );
    }

    #[test]
    fn redacted() {
        let s = SecretValue::from_string("hunter2".into());
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(&*base64(b"f"), "Zg==");
        assert_eq!(&*base64(b"fo"), "Zm8=");
        assert_eq!(&*base64(b"foo"), "Zm9v");
        assert_eq!(&*base64(b"foobar"), "Zm9vYmFy");
    }
}
