//! The filters stateplan adds to minijinja for templates: `merge`,
//! `tojson` (YAML-safe, and strict about undefined values) and `checksum`.

use minijinja::value::Value as JinjaValue;
use minijinja::{Environment, Error as JinjaError};

/// Adds the filters to a template environment.
pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("merge", merge);
    env.add_filter("tojson", tojson);
    env.add_filter("checksum", checksum);
}

/// `merge`: a copy of the first map with the second map's entries on top,
/// keeping first-seen key order.
fn merge(a: JinjaValue, b: JinjaValue) -> Result<JinjaValue, JinjaError> {
    let mut pairs: Vec<(String, JinjaValue)> = Vec::new();
    for v in [&a, &b] {
        if v.is_undefined() || v.is_none() {
            continue;
        }
        if v.kind() != minijinja::value::ValueKind::Map {
            return Err(JinjaError::new(
                minijinja::ErrorKind::InvalidOperation,
                "merge works on mappings only",
            ));
        }
        for key in v.try_iter()? {
            let k = key.to_string();
            let val = v.get_item(&key)?;
            match pairs.iter_mut().find(|(x, _)| *x == k) {
                Some(slot) => slot.1 = val,
                None => pairs.push((k, val)),
            }
        }
    }
    Ok(JinjaValue::from_pairs(pairs))
}

/// `tojson` without the HTML escaping minijinja's built-in applies (`>` as
/// `\u003e`): our output is YAML, where plain JSON is valid and readable.
/// An undefined value anywhere in it (a misspelt attribute) is an error,
/// not `null`.
fn tojson(v: JinjaValue) -> Result<JinjaValue, JinjaError> {
    serde_json::to_string(&Defined(&v))
        .map(|s| JinjaValue::from_safe_string(yaml_safe(s)))
        .map_err(|e| {
            let (kind, message) = if e.to_string().starts_with(UNDEFINED) {
                (
                    minijinja::ErrorKind::UndefinedError,
                    format!("tojson of {e} (a misspelt name or attribute?)"),
                )
            } else {
                (
                    minijinja::ErrorKind::InvalidOperation,
                    format!("cannot serialize to JSON: {e}"),
                )
            };
            JinjaError::new(kind, message)
        })
}

const UNDEFINED: &str = "an undefined value";

/// Serializes like minijinja's own `Serialize` for `Value`, in one pass,
/// but fails on an undefined value at any depth, where minijinja writes
/// `null`.
struct Defined<'a>(&'a JinjaValue);

impl serde::Serialize for Defined<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use minijinja::value::ObjectRepr;
        use serde::ser::{Error, SerializeMap, SerializeSeq};
        let v = self.0;
        if v.is_undefined() {
            return Err(S::Error::custom(UNDEFINED));
        }
        match v.as_object().map(|o| (o, o.repr())) {
            Some((o, ObjectRepr::Map)) => {
                let mut map = s.serialize_map(None)?;
                for (key, value) in o.try_iter_pairs().into_iter().flatten() {
                    if value.is_undefined() {
                        return Err(S::Error::custom(format!("{UNDEFINED} at key `{key}`")));
                    }
                    map.serialize_entry(&Defined(&key), &Defined(&value))?;
                }
                map.end()
            }
            Some((o, ObjectRepr::Seq | ObjectRepr::Iterable)) => {
                let mut seq = s.serialize_seq(None)?;
                for item in o.try_iter().into_iter().flatten() {
                    seq.serialize_element(&Defined(&item))?;
                }
                seq.end()
            }
            _ => v.serialize(s),
        }
    }
}

/// JSON text YAML reads as the same value. JSON leaves DEL, the C1 controls
/// and U+FFFE/U+FFFF unescaped, which YAML does not allow in a document;
/// they become `\u` escapes, which both read alike. (Only inside strings can
/// they occur.)
fn yaml_safe(json: String) -> String {
    let unsafe_char = |c: char| matches!(c, '\u{7f}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}');
    // Most text is ASCII below DEL: one pass over the bytes decides.
    if json.bytes().all(|b| b < 0x7f) || !json.chars().any(unsafe_char) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `checksum`: a short stable hash of a string, to roll pods on config change.
fn checksum(s: String) -> String {
    format!("{:016x}", crate::compile::fnv1a(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn tojson_output_is_yaml_safe() {
        assert_eq!(yaml_safe("\"plain\"".into()), "\"plain\"");
        assert_eq!(yaml_safe("\"é\"".into()), "\"é\"");
        assert_eq!(
            yaml_safe("\"a\u{7f}b\u{85}c\u{ffff}\"".into()),
            "\"a\\u007fb\\u0085c\\uffff\""
        );
        // YAML reads the escapes as the characters JSON had.
        let v: Value =
            serde_saphyr::from_str(&yaml_safe("{\"k\": \"a\u{7f}b\u{9f}\"}".into())).expect("yaml");
        assert_eq!(v["k"], "a\u{7f}b\u{9f}");
        assert!(tojson(JinjaValue::UNDEFINED).is_err());
        let map = JinjaValue::from(std::collections::BTreeMap::from([
            ("a", JinjaValue::from(1)),
            ("b", JinjaValue::UNDEFINED),
        ]));
        let err = tojson(map).expect_err("undefined inside");
        assert!(
            err.to_string().contains("an undefined value at key `b`"),
            "{err}"
        );
        let fine = JinjaValue::from(std::collections::BTreeMap::from([
            ("a", JinjaValue::from(vec![1, 2])),
            ("b", JinjaValue::from(())),
        ]));
        assert_eq!(
            tojson(fine).expect("json").to_string(),
            r#"{"a":[1,2],"b":null}"#
        );
    }
}
