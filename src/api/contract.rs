//! The exact contract: completes the generated OpenAPI document with what the shared
//! layers answer, so every operation declares every status it can return.
//!
//! Handlers declare their own outcomes in `#[utoipa::path]`. The errors that come from
//! the layers every route shares (path, query and body extractors, authentication and
//! roles, the body limit, the request timeout, the panic catcher) are added here, by rule,
//! to every operation the rule fits, each as a reference to one shared response whose
//! body is `ErrorBody`. An endpoint added later gets them without touching this file.
//! `tests` below fails if an operation lacks them.

use serde_json::{Map, Value, json};

/// One response of the shared set: the component name, the status, what it means, and
/// which operations can give it.
struct Common {
    name: &'static str,
    status: &'static str,
    description: &'static str,
    applies: fn(&Op) -> bool,
}

/// What the rules look at in an operation.
struct Op {
    /// The path has a `{parameter}`.
    has_path_param: bool,
    /// The operation reads query or path parameters or a body.
    has_input: bool,
    /// It has a request body.
    has_body: bool,
    /// It changes state (POST, PUT, PATCH, DELETE).
    changes_state: bool,
    /// It needs a token or a session (its `security` is not the empty list).
    authenticated: bool,
}

/// The shared set. Statuses a layer gives only on some routes (429 of the login limiter
/// and of file transfers, 408 of `wait`, 502/504 of game servers) are declared by those
/// handlers themselves.
const COMMON: &[Common] = &[
    Common {
        name: "BadRequest",
        status: "400",
        description: "The request is malformed: a path or query parameter of the wrong type or an unknown one, or a body that is not valid JSON.",
        applies: |_| true,
    },
    Common {
        name: "Unauthenticated",
        status: "401",
        description: "No valid API token or session: send 'Authorization: Bearer <token>' or log in.",
        applies: |op| op.authenticated,
    },
    Common {
        name: "Forbidden",
        status: "403",
        description: "The caller's role does not allow this, or a session request lacks its X-CSRF-Token header.",
        applies: |op| op.authenticated,
    },
    Common {
        name: "NotFound",
        status: "404",
        description: "What the path names does not exist.",
        applies: |op| op.has_path_param,
    },
    Common {
        name: "Conflict",
        status: "409",
        description: "The change conflicts with the current state (a name already taken, a resource in use or in the wrong state).",
        applies: |op| op.changes_state,
    },
    Common {
        name: "PayloadTooLarge",
        status: "413",
        description: "The request body is larger than the server accepts (api.body_limit_bytes).",
        applies: |op| op.has_body,
    },
    Common {
        name: "UnsupportedMediaType",
        status: "415",
        description: "The body is not sent with the content type this operation takes.",
        applies: |op| op.has_body,
    },
    Common {
        name: "Unprocessable",
        status: "422",
        description: "The request is well formed but invalid: `details` lists each field and what is wrong with it.",
        applies: |op| op.has_input,
    },
    Common {
        name: "Internal",
        status: "500",
        description: "warden hit an internal error; the cause is in its log, never in the answer.",
        applies: |_| true,
    },
    Common {
        name: "Unavailable",
        status: "503",
        description: "warden is shutting down, its database is not usable, or the request took longer than api.request_timeout.",
        applies: |_| true,
    },
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Completes the generated document in place: flattened closed schemas are opened (see
/// [`open_flattened`]) and every operation gets the shared error responses it lacks.
pub fn complete(doc: &mut Value) {
    open_flattened(doc);
    bound_integers(doc);
    unique_operation_ids(doc);
    let global_security = doc.get("security").cloned();
    add_response_components(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let path_params = item.get("parameters").is_some_and(non_empty);
        for (method, op) in item.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let security = op.get("security").or(global_security.as_ref());
            let facts = Op {
                has_path_param: path.contains('{'),
                has_input: path_params
                    || op.get("parameters").is_some_and(non_empty)
                    || op.contains_key("requestBody"),
                has_body: op.contains_key("requestBody"),
                changes_state: matches!(method.as_str(), "post" | "put" | "patch" | "delete"),
                authenticated: security.is_some_and(non_empty),
            };
            let responses = op
                .entry("responses")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for common in COMMON.iter().filter(|c| (c.applies)(&facts)) {
                responses.entry(common.status).or_insert_with(
                    || json!({ "$ref": format!("#/components/responses/{}", common.name) }),
                );
            }
        }
    }
}

/// Operation ids must be unique in a document (generated clients name their methods by
/// them), but handlers of different resources share short names (`list`, `delete`…).
/// Each id used more than once becomes the method and the path, e.g.
/// `get_api_programs_name_backups`.
fn unique_operation_ids(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in paths.values() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str)
                && METHODS.contains(&method.as_str())
            {
                *seen.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let shared = op
                .get("operationId")
                .and_then(Value::as_str)
                .is_some_and(|id| seen.get(id).is_some_and(|n| *n > 1));
            if shared {
                let words: Vec<&str> = path
                    .split(['/', '{', '}', '-', '.'])
                    .filter(|w| !w.is_empty())
                    .collect();
                op.insert(
                    "operationId".into(),
                    Value::String(format!("{method}_{}", words.join("_"))),
                );
            }
        }
    }
}

fn non_empty(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// Registers the shared responses under `components.responses`, each with the one error
/// schema.
fn add_response_components(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let components = root
        .entry("components")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(components) = components.as_object_mut() else {
        return;
    };
    let responses = components
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for common in COMMON {
        responses.insert(
            common.name.to_string(),
            json!({
                "description": common.description,
                "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/ErrorBody" }
                } }
            }),
        );
    }
}

/// A struct flattened into a response (`#[serde(flatten)]`) appears as an `allOf` branch
/// referencing its schema. When that schema is closed (`additionalProperties: false`,
/// from `deny_unknown_fields`, right for requests), the branch would reject the other
/// branches' fields, so no real answer could match. Such a branch is replaced by an open
/// copy of the referenced schema.
fn open_flattened(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return;
    };
    let open: Map<String, Value> = schemas
        .iter()
        .filter(|(_, s)| s.get("additionalProperties") == Some(&Value::Bool(false)))
        .map(|(name, s)| {
            let mut copy = s.clone();
            if let Some(o) = copy.as_object_mut() {
                o.remove("additionalProperties");
            }
            (format!("#/components/schemas/{name}"), copy)
        })
        .collect();
    if !open.is_empty() {
        replace_closed_branches(doc, &open);
    }
}

fn replace_closed_branches(v: &mut Value, open: &Map<String, Value>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(branches)) = o.get_mut("allOf") {
                for branch in branches.iter_mut() {
                    let target = branch.get("$ref").and_then(Value::as_str);
                    if let Some(Value::Object(copy)) = target.and_then(|t| open.get(t)) {
                        // Keep the branch's own keys (its description) over the copy's.
                        let mut merged = copy.clone();
                        if let Some(own) = branch.as_object() {
                            for (k, v) in own.iter().filter(|(k, _)| *k != "$ref") {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        *branch = Value::Object(merged);
                    }
                }
            }
            for child in o.values_mut() {
                replace_closed_branches(child, open);
            }
        }
        Value::Array(a) => {
            for child in a {
                replace_closed_branches(child, open);
            }
        }
        _ => {}
    }
}

/// utoipa (with `non_strict_integers`) names the width of an integer in `format`
/// (`uint32`, spelt `u-int32` by utoipa 6…), which OpenAPI does not define and
/// validators ignore. Each such
/// schema gets the type's range as `minimum` and `maximum` (a bound already declared, being
/// narrower, is kept), so the document says which numbers the server takes: a `u64`
/// field takes up to 2^64-1, where the standard `int64` would say 2^63-1.
fn bound_integers(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let range: Option<(i128, i128)> = match o.get("format").and_then(Value::as_str) {
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("uint8" | "u-int8") => Some((0, u8::MAX.into())),
                Some("uint16" | "u-int16") => Some((0, u16::MAX.into())),
                Some("uint32" | "u-int32") => Some((0, u32::MAX.into())),
                Some("uint64" | "u-int64") => Some((0, u64::MAX.into())),
                _ => None,
            };
            if let Some((lo, hi)) = range {
                o.remove("format");
                if !o.contains_key("minimum") {
                    o.insert("minimum".into(), json_int(lo));
                }
                if !o.contains_key("maximum") {
                    o.insert("maximum".into(), json_int(hi));
                }
            }
            for child in o.values_mut() {
                bound_integers(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

fn json_int(n: i128) -> Value {
    if let Ok(u) = u64::try_from(n) {
        Value::from(u)
    } else {
        Value::from(i64::try_from(n).unwrap_or(i64::MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of the real document names something it defines, and no two
    /// operations share an id: a client generated from it compiles.
    #[test]
    fn every_reference_resolves_and_every_operation_id_is_unique() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = crate::api::openapi_document(1 << 20);
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        let mut dangling: Vec<&str> = all
            .into_iter()
            .filter(|r| {
                let pointer = r.trim_start_matches('#');
                doc.pointer(pointer).is_none()
            })
            .collect();
        dangling.sort_unstable();
        dangling.dedup();
        assert!(dangling.is_empty(), "undefined: {dangling:?}");
        let mut ids = std::collections::HashMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if let Some(id) = op.get("operationId").and_then(Value::as_str)
                    && let Some(other) = ids.insert(id.to_string(), format!("{method} {path}"))
                {
                    panic!("operation id {id} used by {other} and {method} {path}");
                }
            }
        }
        assert!(ids.len() > 50, "{}", ids.len());
    }

    /// Every operation of the real document carries the shared responses its rules give,
    /// each resolving to the one error schema; a flattened closed schema is opened.
    #[test]
    fn every_operation_declares_the_shared_errors() {
        let doc = crate::api::openapi_document(1 << 20);
        let paths = doc["paths"].as_object().expect("paths");
        let mut operations = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                operations += 1;
                let responses = op["responses"].as_object().expect("responses");
                let mut want = vec!["400", "500", "503"];
                if path.contains('{') {
                    want.push("404");
                }
                if op.get("requestBody").is_some() {
                    want.extend(["413", "415", "422"]);
                }
                if method != "get" {
                    want.push("409");
                }
                let public = op.get("security").is_some_and(|s| s == &json!([]));
                if !public {
                    want.extend(["401", "403"]);
                }
                for status in want {
                    // `/health` answers 503 with its own per-component body: the reason a
                    // monitor reads, not an error.
                    if path == "/health" && status == "503" {
                        assert!(responses.get(status).is_some(), "/health declares 503");
                        continue;
                    }
                    let r = responses.get(status).unwrap_or_else(|| {
                        panic!("{} {path} does not declare {status}", method.to_uppercase())
                    });
                    let r = match r.get("$ref").and_then(Value::as_str) {
                        Some(target) => doc
                            .pointer(&target.replacen("#", "", 1))
                            .unwrap_or_else(|| panic!("{target} does not resolve")),
                        None => r,
                    };
                    assert_eq!(
                        r.pointer("/content/application~1json/schema/$ref"),
                        Some(&json!("#/components/schemas/ErrorBody")),
                        "{} {path} {status} is not the error shape",
                        method.to_uppercase()
                    );
                }
            }
        }
        assert!(
            operations > 50,
            "only {operations} operations in the document"
        );
        // Unsigned fields say their real range (a u64 takes more than int64's maximum).
        let text = doc.to_string();
        assert!(
            !text.contains("\"u-int64\"") && !text.contains("\"uint64\""),
            "an integer width left in `format`"
        );
        assert!(
            text.contains(&format!("\"maximum\":{}", u64::MAX)),
            "no u64 bound in the document"
        );
        // Programs are answered as the spec's fields plus status fields.
        assert!(
            doc.pointer("/components/schemas/ProgramSpec/additionalProperties")
                == Some(&json!(false)),
            "requests still refuse unknown fields"
        );
        assert!(
            !doc["components"]["schemas"]["ProgramView"]
                .to_string()
                .contains("#/components/schemas/ProgramSpec"),
            "ProgramView still extends the closed ProgramSpec"
        );
    }
}
