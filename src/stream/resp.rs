//! RESP helpers: stream replies are parsed by hand to keep field order and avoid a map per
//! entry.

use redis::Value;

pub(crate) fn as_array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => as_string(other)?.parse().ok(),
    }
}

/// As [`as_string`], taking the bytes over instead of copying them.
fn into_string(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(
            String::from_utf8(bytes).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
        ),
        other => as_string(&other),
    }
}

/// `[id, [field, value, …]]` → (id, fields); nil (a deleted entry) → None.
pub(crate) fn parse_entry(value: Value) -> Option<(String, Vec<(String, String)>)> {
    let mut parts = as_array(value).into_iter();
    let id = into_string(parts.next()?)?;
    let flat = parts.next().map(as_array)?;
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        if let (Some(name), Some(value)) = (into_string(name), into_string(value)) {
            fields.push((name, value));
        }
    }
    Some((id, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_in_order_and_nil_is_none() {
        let entry = Value::Array(vec![
            Value::BulkString(b"1-1".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"b".to_vec()),
                Value::BulkString(b"2".to_vec()),
                Value::BulkString(b"a".to_vec()),
                Value::BulkString(b"1".to_vec()),
            ]),
        ]);
        let (id, fields) = parse_entry(entry).unwrap();
        assert_eq!(id, "1-1");
        assert_eq!(fields, vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert!(parse_entry(Value::Nil).is_none());
    }
}
