//! Reading the OpenAPI document in tests: its paths made concrete, a body checked against a
//! schema, the least body a schema accepts. Only what our document uses is understood
//! (`$ref`, `allOf`, `anyOf`, `type`, `enum`, `const`, `properties`, `required`, `items`,
//! `additionalProperties`); it is not a general JSON Schema validator.

use serde_json::{Value, json};

/// The documented path with its parameters filled in: every value of an enum, a UUID otherwise.
pub fn concrete_paths(template: &str, op: &Value) -> Vec<String> {
    let mut out = vec![template.to_owned()];
    for p in op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "path")
    {
        let placeholder = format!("{{{}}}", p["name"].as_str().unwrap());
        let values: Vec<String> = match p["schema"]["enum"].as_array() {
            Some(e) => e.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            None => vec![uuid::Uuid::new_v4().to_string()],
        };
        out = out
            .iter()
            .flat_map(|path| values.iter().map(|v| path.replace(&placeholder, v)))
            .collect();
    }
    assert!(!out.iter().any(|p| p.contains('{')), "{template}");
    out
}

/// Whether `value` has the shape `schema` describes, as far as field names and types go: the
/// required properties are there, no property is undocumented, arrays and `$ref`s followed.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(&r[1..]).ok_or(format!("{at}: {r}"))?;
        return conforms(doc, target, value, at);
    }
    if let Some(all) = schema["allOf"].as_array()
        && !all
            .iter()
            .any(|p| p["$ref"] == "#/components/schemas/Problem")
    {
        return all
            .iter()
            .try_for_each(|part| conforms(doc, part, value, at));
    }
    if let Some(all) = schema["allOf"].as_array() {
        // The parts together: properties documented in any part are documented.
        let mut merged = serde_json::Map::new();
        let mut required = Vec::new();
        for part in all {
            let part = match part["$ref"].as_str() {
                Some(r) => doc.pointer(&r[1..]).unwrap(),
                None => part,
            };
            if let Some(p) = part["properties"].as_object() {
                merged.extend(p.clone());
            }
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        let flat = json!({"type": "object", "properties": merged, "required": required});
        return conforms(doc, &flat, value, at);
    }
    if let Some(alternatives) = schema["anyOf"].as_array() {
        // The first that fits; a body that fits none is described by each one's complaint.
        let mut why = Vec::new();
        for alt in alternatives {
            match conforms(doc, alt, value, at) {
                Ok(()) => return Ok(()),
                Err(e) => why.push(e),
            }
        }
        return Err(format!("{at}: fits none of anyOf ({})", why.join("; ")));
    }
    if let Some(c) = schema.get("const") {
        return (c == value)
            .then_some(())
            .ok_or(format!("{at}: {value} is not {c}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
    if !types.is_empty() && !fits {
        return Err(format!("{at}: a {actual}, documented as {types:?}"));
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {e:?}"));
    }
    match value {
        Value::Object(fields) if schema["properties"].is_object() => {
            let props = schema["properties"].as_object().unwrap();
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !fields.contains_key(r) {
                    return Err(format!("{at}: `{r}` is required but absent"));
                }
            }
            for (k, v) in fields {
                let s = props
                    .get(k)
                    .ok_or(format!("{at}: `{k}` is not documented"))?;
                conforms(doc, s, v, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        Value::Object(fields) if schema["additionalProperties"].is_object() => {
            fields.iter().try_for_each(|(k, v)| {
                conforms(
                    doc,
                    &schema["additionalProperties"],
                    v,
                    &format!("{at}.{k}"),
                )
            })
        }
        Value::Array(items) if schema["items"].is_object() => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| conforms(doc, &schema["items"], v, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

/// The least value of `schema`: its required properties, each the first of its enum or a
/// plain value of its type.
pub fn sample(doc: &Value, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        return sample(doc, doc.pointer(&r[1..]).unwrap());
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::Array(ts) => ts.first().and_then(Value::as_str),
        t => t.as_str(),
    };
    match ty {
        Some("object") => {
            let fields = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|k| (k.to_owned(), sample(doc, &schema["properties"][k])))
                .collect();
            Value::Object(fields)
        }
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        _ => json!("x"),
    }
}

pub fn template_params(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}
