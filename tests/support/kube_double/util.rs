//! Small helpers: API errors as `Status` bodies, time stamps, ids, selectors,
//! quantities, base64.

use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// An error the API server answers with: an HTTP status and a `Status` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
}

impl ApiError {
    fn status(code: u16, reason: Option<&str>, message: String, details: Option<Value>) -> Self {
        let mut body = Map::new();
        body.insert("kind".into(), json!("Status"));
        body.insert("apiVersion".into(), json!("v1"));
        body.insert("metadata".into(), json!({}));
        body.insert("status".into(), json!("Failure"));
        body.insert("message".into(), json!(message));
        if let Some(r) = reason {
            body.insert("reason".into(), json!(r));
        }
        if let Some(d) = details {
            body.insert("details".into(), d);
        }
        body.insert("code".into(), json!(code));
        ApiError {
            code,
            body: Value::Object(body),
        }
    }

    /// `the server could not find the requested resource` (unknown path / resource).
    pub fn unknown_path() -> Self {
        Self::status(
            404,
            Some("NotFound"),
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    /// `statefulsets.apps "orders-db" not found`
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::status(
            404,
            Some("NotFound"),
            format!("{} \"{name}\" not found", qualified(plural, group)),
            Some(details(name, group, plural)),
        )
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::status(
            409,
            Some("AlreadyExists"),
            format!("{} \"{name}\" already exists", qualified(plural, group)),
            Some(details(name, group, plural)),
        )
    }

    /// Optimistic-concurrency failure (stale resourceVersion).
    pub fn modified(group: &str, plural: &str, name: &str) -> Self {
        Self::status(
            409,
            Some("Conflict"),
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(plural, group)
            ),
            Some(details(name, group, plural)),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, Some("BadRequest"), message.into(), None)
    }

    pub fn method_not_allowed() -> Self {
        Self::status(
            405,
            Some("MethodNotAllowed"),
            "the server does not allow this method on the requested resource".into(),
            Some(json!({})),
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::status(
            415,
            Some("UnsupportedMediaType"),
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct:?})"
            ),
            None,
        )
    }

    /// 500 without a reason, as the apply path reports schema errors.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::status(500, None, message.into(), None)
    }

    /// 422 `Invalid` with one cause per field error.
    /// `kind_qualified` is e.g. `StatefulSet.apps`, `PersistentVolumeClaim`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let kind_q = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let texts: Vec<String> = causes.iter().map(|c| c.text()).collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let mut d = Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| {
                        json!({"reason": c.reason, "message": c.cause_message(), "field": c.field})
                    })
                    .collect(),
            ),
        );
        Self::status(
            422,
            Some("Invalid"),
            format!("{kind_q} \"{name}\" is invalid: {joined}"),
            Some(Value::Object(d)),
        )
    }

    pub fn too_many_requests() -> Self {
        Self::status(
            429,
            Some("TooManyRequests"),
            "Too many requests, please try again later.".into(),
            Some(json!({"retryAfterSeconds": 1})),
        )
    }

    /// A generic injected failure for any status code.
    pub fn injected(code: u16) -> Self {
        match code {
            429 => Self::too_many_requests(),
            404 => Self::unknown_path(),
            500 => Self::status(
                500,
                Some("InternalError"),
                "Internal error occurred: injected failure".into(),
                Some(json!({"causes": [{"message": "injected failure"}]})),
            ),
            503 => Self::status(
                503,
                Some("ServiceUnavailable"),
                "the server is currently unable to handle the request".into(),
                None,
            ),
            504 => Self::status(
                504,
                Some("Timeout"),
                "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
                None,
            ),
            c => Self::status(c, None, format!("injected failure {c}"), None),
        }
    }

    /// An admission plugin's 403: `persistentvolumeclaims "x" is forbidden: …`.
    pub fn forbidden_admission(plural: &str, name: &str, why: &str) -> Self {
        Self::status(
            403,
            Some("Forbidden"),
            format!("{plural} \"{name}\" is forbidden: {why}"),
            Some(json!({"name": name, "kind": plural})),
        )
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::not_found("", "namespaces", ns)
    }

    pub fn with_message(code: u16, reason: &str, message: String) -> Self {
        Self::status(code, Some(reason), message, None)
    }
}

fn details(name: &str, group: &str, plural: &str) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(plural));
    Value::Object(d)
}

/// `statefulsets.apps`, `leases.coordination.k8s.io`, `persistentvolumeclaims`.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// One field error of a 422 `Invalid` status.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// `FieldValueForbidden`, `FieldValueInvalid`, `FieldValueRequired`…
    pub reason: &'static str,
    pub field: String,
    /// The detail, e.g. `field is immutable`.
    pub detail: String,
    /// For `FieldValueInvalid`: the offending value, Go-quoted.
    pub value: Option<String>,
}

impl FieldError {
    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.into(),
            detail: detail.into(),
            value: None,
        }
    }
    pub fn invalid(field: &str, value: String, detail: impl Into<String>) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            detail: detail.into(),
            value: Some(value),
        }
    }
    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            detail: detail.into(),
            value: None,
        }
    }
    fn type_word(&self) -> &'static str {
        match self.reason {
            "FieldValueForbidden" => "Forbidden",
            "FieldValueRequired" => "Required value",
            _ => "Invalid value",
        }
    }
    fn cause_message(&self) -> String {
        match &self.value {
            Some(v) => format!("{}: {v}: {}", self.type_word(), self.detail),
            None => format!("{}: {}", self.type_word(), self.detail),
        }
    }
    fn text(&self) -> String {
        format!("{}: {}", self.field, self.cause_message())
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 time stamp (seconds precision, UTC), as the API server writes.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `2026-11-21T16:13:55Z` (fractions and offsets `Z` only) to epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A deterministic, UUID-shaped id.
pub fn uid(n: u64) -> String {
    let h = fnv(&n.to_le_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        (h & 0xfff) as u16,
        (n & 0xfff) as u16,
        n & 0xffff_ffff_ffff
    )
}

/// FNV-1a, 64 bit: stable hashes for revisions and ids.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Parses a Kubernetes quantity (`200Gi`, `1.5Ti`, `500M`, `100m`, `1e3`) to a number.
pub fn parse_quantity(v: &Value) -> Option<f64> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suf, mult) in suffixes.iter() {
        if let Some(num) = s.strip_suffix(suf) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    if let Some(num) = s.strip_suffix('P') {
        return num.parse::<f64>().ok().map(|n| n * 1e15);
    }
    if let Some(num) = s.strip_suffix('E') {
        return num.parse::<f64>().ok().map(|n| n * 1e18);
    }
    s.parse::<f64>().ok()
}

/// Decoded query string.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One requirement of a label selector.
#[derive(Debug, Clone)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (x,y),!f,g`).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Req>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let lower = p.to_string();
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(k.trim().to_string()));
            } else if let Some((k, rest)) = split_word(&lower, " notin ") {
                reqs.push(Req::NotIn(k, set_values(&rest)?));
            } else if let Some((k, rest)) = split_word(&lower, " in ") {
                reqs.push(Req::In(k, set_values(&rest)?));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::Ne(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if p.contains(' ') || p.contains('(') {
                return Err(format!("unable to parse requirement: {p:?}"));
            } else {
                reqs.push(Req::Exists(p.to_string()));
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

fn split_word(s: &str, word: &str) -> Option<(String, String)> {
    let (k, rest) = s.split_once(word)?;
    Some((k.trim().to_string(), rest.trim().to_string()))
}

fn set_values(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse set {rest:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth <= 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A parsed field selector (`metadata.name=x,involvedObject.kind=Pod,status.phase!=Running`).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((k, v)) = p.split_once("!=") {
                out.push((k.trim().to_string(), false, v.trim().to_string()));
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                out.push((k.trim().to_string(), true, v.trim().to_string()));
            } else {
                return Err(format!("invalid selector: '{p}'; can't understand '{p}'"));
            }
        }
        Ok(FieldSelector(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = Some(obj);
            for seg in path.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let have = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

/// Inserts `key` into a JSON object at the front-preserving position of the
/// given canonical order (used to keep metadata keys in the server's order).
pub fn reorder(obj: &mut Value, order: &[&str]) {
    if let Value::Object(m) = obj {
        let mut out = Map::new();
        for k in order {
            if let Some(v) = m.remove(*k) {
                out.insert((*k).to_string(), v);
            }
        }
        let rest = std::mem::take(m);
        for (k, v) in rest {
            out.insert(k, v);
        }
        *m = out;
    }
}

/// `obj[a][b]…` as a string.
pub fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(obj, path).and_then(Value::as_str)
}

pub fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

/// Mutable access creating intermediate objects.
pub fn at_mut<'a>(obj: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut cur = obj;
    for p in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            unreachable!("made an object above")
        };
        cur = m.entry((*p).to_string()).or_insert(Value::Null);
    }
    cur
}

/// Sets `obj[path] = v` when missing (or null).
pub fn default_at(obj: &mut Value, path: &[&str], v: Value) {
    let slot = at_mut(obj, path);
    if slot.is_null() {
        *slot = v;
    }
}
