//! Event arguments: JSON values that may carry binary data.
//!
//! Socket.IO arguments are JSON values in which any node may be a binary
//! blob (a `Buffer` in Node, an `ArrayBuffer` in a browser). On the wire the
//! blobs travel as separate attachments and the JSON holds placeholders
//! `{"_placeholder":true,"num":N}`. [`Value`] is the decoded tree: the same
//! as a JSON value, plus [`Value::Binary`].
//!
//! Hosts that prefer plain JSON text (the C face) use
//! [`Value::to_json_with_placeholders`] and
//! [`Value::from_json_with_placeholders`], which speak the wire convention.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// One argument of an event, or a node inside one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string.
    String(String),
    /// A JSON array.
    Array(Vec<Value>),
    /// A JSON object (keys sorted).
    Object(BTreeMap<String, Value>),
    /// Binary data (a `Buffer` / `ArrayBuffer` on the client side).
    Binary(Bytes),
}

/// The error of [`Value::from_json_with_placeholders`]: a placeholder names
/// an attachment that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placeholder {num} names a missing binary attachment ({available} attached)")]
pub struct MissingAttachment {
    /// The attachment number the placeholder asked for.
    pub num: u64,
    /// How many attachments there were.
    pub available: usize,
}

impl Value {
    /// The string inside, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes inside, if this is a [`Value::Binary`].
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this value or any node inside it is binary.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(a) => a.iter().any(Value::has_binary),
            Value::Object(o) => o.values().any(Value::has_binary),
            _ => false,
        }
    }

    /// Splits into JSON with Socket.IO placeholders plus the attachments,
    /// appending to `attachments` (so several arguments share one list).
    pub fn to_json_with_placeholders(&self, attachments: &mut Vec<Bytes>) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(
                a.iter()
                    .map(|v| v.to_json_with_placeholders(attachments))
                    .collect(),
            ),
            Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_with_placeholders(attachments)))
                    .collect(),
            ),
            Value::Binary(b) => {
                attachments.push(b.clone());
                serde_json::json!({ "_placeholder": true, "num": attachments.len() - 1 })
            }
        }
    }

    /// Builds a value from JSON that may hold Socket.IO placeholders,
    /// replacing each with its attachment.
    pub fn from_json_with_placeholders(
        json: serde_json::Value,
        attachments: &[Bytes],
    ) -> Result<Value, MissingAttachment> {
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|v| Value::from_json_with_placeholders(v, attachments))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(o) => {
                if let Some(num) = placeholder_num(&o) {
                    let bin = usize::try_from(num)
                        .ok()
                        .and_then(|i| attachments.get(i))
                        .ok_or(MissingAttachment {
                            num,
                            available: attachments.len(),
                        })?;
                    Value::Binary(bin.clone())
                } else {
                    Value::Object(
                        o.into_iter()
                            .map(|(k, v)| {
                                Ok((k, Value::from_json_with_placeholders(v, attachments)?))
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
            }
        })
    }
}

/// `Some(num)` when `o` is exactly a Socket.IO binary placeholder.
fn placeholder_num(o: &serde_json::Map<String, serde_json::Value>) -> Option<u64> {
    if o.len() != 2 || o.get("_placeholder") != Some(&serde_json::Value::Bool(true)) {
        return None;
    }
    o.get("num")?.as_u64()
}

impl From<serde_json::Value> for Value {
    /// Plain JSON, no placeholder handling (a placeholder object stays an object).
    fn from(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Binary(b)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Binary(Bytes::from(b))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl Serialize for Value {
    /// Serializes as JSON; binary nodes go through `serialize_bytes`, which
    /// the Socket.IO serializer turns into attachments.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Binary(b) => s.serialize_bytes(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_round_trip() {
        let v = Value::Array(vec![
            Value::from("a"),
            Value::Binary(Bytes::from_static(b"xy")),
            Value::Object(BTreeMap::from([(
                "k".to_owned(),
                Value::Binary(Bytes::from_static(b"z")),
            )])),
        ]);
        let mut bins = Vec::new();
        let json = v.to_json_with_placeholders(&mut bins);
        assert_eq!(
            json,
            json!(["a", {"_placeholder": true, "num": 0}, {"k": {"_placeholder": true, "num": 1}}])
        );
        assert_eq!(bins.len(), 2);
        assert_eq!(Value::from_json_with_placeholders(json, &bins).unwrap(), v);
    }

    #[test]
    fn missing_attachment_is_an_error() {
        let err = Value::from_json_with_placeholders(json!({"_placeholder": true, "num": 3}), &[])
            .unwrap_err();
        assert_eq!(err.num, 3);
    }

    #[test]
    fn look_alike_objects_stay_objects() {
        let j = json!({"_placeholder": true, "num": 0, "extra": 1});
        let v = Value::from_json_with_placeholders(j.clone(), &[]).unwrap();
        assert_eq!(v, Value::from(j));
    }
}
