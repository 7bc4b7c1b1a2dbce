//! docs/api.md, written from the OpenAPI document: the operations by tag, their parameters,
//! bodies and responses, then the schemas.

use std::fmt::Write as _;

use serde_json::Value;

/// The document as Markdown.
pub fn markdown(doc: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(doc).unwrap_or_default();
    let mut out = String::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().replace('\n', " ");
    let _ = writeln!(out, "# {}\n", text(&doc["info"]["title"]));
    out.push_str(
        "<!-- Generated from the OpenAPI document (GET /api/v1/openapi.json) by\n     \
         `EITWATCH_WRITE_DOCS=1 cargo test -p eitwatch-server --test api_contract`; do not edit. -->\n\n",
    );
    let _ = writeln!(out, "{}\n", text(&doc["info"]["description"]));
    let operations = operations(&doc);
    out.push_str("| Method | Path | Summary |\n|---|---|---|\n");
    for (method, path, op) in &operations {
        let _ = writeln!(out, "| {} | `{path}` | {} |", method.to_uppercase(), cell(&text(&op["summary"])));
    }
    let mut tags: Vec<String> = operations.iter().map(|(_, _, op)| text(&op["tags"][0])).collect();
    tags.dedup();
    tags.sort();
    tags.dedup();
    for tag in tags {
        let _ = writeln!(out, "\n## {tag}");
        for (method, path, op) in operations.iter().filter(|(_, _, op)| text(&op["tags"][0]) == tag) {
            let _ = writeln!(out, "\n### {} `{path}`\n", method.to_uppercase());
            let _ = writeln!(out, "{}", text(&op["summary"]));
            if !op["description"].is_null() {
                let _ = writeln!(out, "\n{}", text(&op["description"]));
            }
            if op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|r| r.is_empty())))
            {
                out.push_str("\nNo token needed.\n");
            }
            if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                out.push_str("\n| Parameter | In | Type | Description |\n|---|---|---|---|\n");
                for p in params {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} |",
                        text(&p["name"]),
                        text(&p["in"]),
                        cell(&type_of(&p["schema"])),
                        cell(&text(&p["description"]))
                    );
                }
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, c) in content {
                    let _ = writeln!(out, "\nBody (`{media}`): {}", cell(&type_of(&c["schema"])));
                }
                if !op["requestBody"]["description"].is_null() {
                    let _ = writeln!(out, "{}", text(&op["requestBody"]["description"]));
                }
            }
            out.push_str("\n| Status | Description | Body |\n|---|---|---|\n");
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                let bodies: Vec<String> = r["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(media, c)| format!("{} (`{media}`)", type_of(&c["schema"])))
                    .collect();
                let _ =
                    writeln!(out, "| {status} | {} | {} |", cell(&text(&r["description"])), cell(&bodies.join(", ")));
            }
        }
    }
    out.push_str("\n## Schemas\n");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = writeln!(out, "\n### Schema {name}\n");
        if !schema["description"].is_null() {
            let _ = writeln!(out, "{}\n", text(&schema["description"]));
        }
        match schema["properties"].as_object() {
            Some(fields) => {
                let required: Vec<&str> =
                    schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                out.push_str("| Field | Type | Description |\n|---|---|---|\n");
                for (field, s) in fields {
                    let optional = if required.contains(&field.as_str()) { "" } else { " (optional)" };
                    let _ = writeln!(
                        out,
                        "| `{field}`{optional} | {} | {} |",
                        cell(&type_of(s)),
                        cell(&text(&s["description"]))
                    );
                }
            }
            None => {
                let _ = writeln!(out, "{}", cell(&type_of(schema)));
            }
        }
    }
    out
}

/// Every operation, by path then method, as the document orders them.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

/// A schema in a few words: `[Alert](#alert)`, `array of string`, `string: a | b`.
fn type_of(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[{name}](#schema-{})", name.to_lowercase());
    }
    if let Some(any) = s["oneOf"].as_array().or(s["anyOf"].as_array()) {
        return any.iter().map(type_of).filter(|t| t != "null").collect::<Vec<_>>().join(" or ");
    }
    let ty = match &s["type"] {
        Value::Array(types) => {
            types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
        }
        Value::String(t) => t.clone(),
        _ => "any".into(),
    };
    let mut out = match ty.as_str() {
        "array" => format!("array of {}", type_of(&s["items"])),
        _ => ty,
    };
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        let _ = write!(out, ": {}", values.join(" | "));
    }
    if let Some(f) = s["format"].as_str() {
        let _ = write!(out, " ({f})");
    }
    if let Some(d) = s["description"].as_str().filter(|_| s["properties"].is_null()) {
        if out.starts_with("object") {
            let _ = write!(out, " — {}", d.replace('\n', " "));
        }
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}
