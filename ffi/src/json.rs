//! Arguments between `chathub::Value` and the JSON text C reads and
//! writes, binary data as Socket.IO placeholders plus attachments (the
//! core's `to_json_with_placeholders` / `from_json_with_placeholders`).

use bytes::Bytes;
use chathub::Value;

use crate::result::{Failure, chathub_result};

/// `args` as a JSON array text, with its attachments.
pub(crate) fn args_to_json(args: &[Value]) -> (String, Vec<Bytes>) {
    let mut attachments = Vec::new();
    let json: Vec<serde_json::Value> = args
        .iter()
        .map(|a| a.to_json_with_placeholders(&mut attachments))
        .collect();
    (serde_json::Value::Array(json).to_string(), attachments)
}

/// One value as JSON text, with its attachments.
pub(crate) fn value_to_json(value: &Value) -> (String, Vec<Bytes>) {
    let mut attachments = Vec::new();
    let json = value.to_json_with_placeholders(&mut attachments);
    (json.to_string(), attachments)
}

/// Parses C's argument list: a JSON array, each element one argument,
/// placeholders naming `attachments`.
pub(crate) fn parse_args(args_json: &str, attachments: &[Bytes]) -> Result<Vec<Value>, Failure> {
    let json: serde_json::Value = serde_json::from_str(args_json).map_err(|e| {
        Failure::new(
            chathub_result::InvalidJson,
            format!("the arguments are not JSON: {e}"),
        )
    })?;
    let serde_json::Value::Array(items) = json else {
        return Err(Failure::new(
            chathub_result::InvalidJson,
            "the arguments must be a JSON array (one element per argument)",
        ));
    };
    items
        .into_iter()
        .map(|item| {
            Value::from_json_with_placeholders(item, attachments)
                .map_err(|e| Failure::invalid(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_with_binary() {
        let bins = [Bytes::from_static(b"\x00\x01")];
        let args = parse_args(
            r#"["a", {"b": {"_placeholder": true, "num": 0}}, 3]"#,
            &bins,
        )
        .unwrap();
        assert_eq!(args.len(), 3);
        let (json, back) = args_to_json(&args);
        assert_eq!(json, r#"["a",{"b":{"_placeholder":true,"num":0}},3]"#);
        assert_eq!(back, bins);
    }

    #[test]
    fn bad_arguments_are_refused_with_a_code() {
        assert_eq!(
            parse_args("{", &[]).unwrap_err().code,
            chathub_result::InvalidJson
        );
        assert_eq!(
            parse_args(r#""one""#, &[]).unwrap_err().code,
            chathub_result::InvalidJson
        );
        assert_eq!(
            parse_args(r#"[{"_placeholder":true,"num":1}]"#, &[])
                .unwrap_err()
                .code,
            chathub_result::InvalidArgument
        );
        assert!(parse_args("[]", &[]).unwrap().is_empty());
    }
}
