use crate::helpers::*;

fn committed() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"))
        .expect("openapi/openapi.json is committed")
}

/// The committed spec is what the code generates; regenerate with `cargo run -- openapi > openapi/openapi.json`.
#[test]
fn committed_spec_matches_the_code() {
    let generated = shuiwu::startup::api_document_string();
    if generated != committed() {
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"), &generated)
                .unwrap();
        }
        panic!("openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` (or UPDATE_OPENAPI=1 cargo test)");
    }
}

#[test]
fn every_operation_is_documented() {
    let doc = shuiwu::startup::api_document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let declared: Vec<&str> = doc["tags"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{what} has a tag");
            for tag in op["tags"].as_array().unwrap() {
                assert!(
                    declared.contains(&tag.as_str().unwrap()),
                    "{what}: tag {tag} is declared (with its Chinese label)"
                );
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|k| k.starts_with('2')), "{what} documents success");
            assert!(responses.contains_key("500") && responses.contains_key("503"), "{what} documents server errors");
            if op.get("x-roles").is_some() {
                assert!(responses.contains_key("401"), "{what} documents 401");
            }
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("400") && responses.contains_key("413") && responses.contains_key("415"),
                    "{what}"
                );
            }
            assert!(op["description"].as_str().unwrap().contains("**"), "{what} states who may call it");
        }
    }
}

#[actix_rt::test]
async fn served_spec_and_swagger_ui() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.get("/api-docs/openapi.json").send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, committed(), "the service serves the committed document byte for byte");
    let ui = app.get("/swagger-ui/").send().await;
    assert_eq!(ui.status, 200);
    assert!(ui.text.contains("swagger"), "{}", &ui.text[..ui.text.len().min(200)]);
    let init = app.get("/swagger-ui/swagger-initializer.js").send().await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains("/api-docs/openapi.json"));
}

/// Enumerations are documented with the values the API actually sends and accepts, each with its Chinese label;
/// problem codes are one of them.
#[test]
fn enums_show_wire_values_with_chinese_labels() {
    let doc = shuiwu::startup::api_document();
    let mut enums = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let Some(values) = schema.get("enum").and_then(|v| v.as_array()) else { continue };
        enums += 1;
        let labels = schema["x-enum-descriptions"].as_array().unwrap_or_else(|| panic!("{name} has labels"));
        assert_eq!(labels.len(), values.len(), "{name}");
        for (v, l) in values.iter().zip(labels) {
            let v = v.as_str().unwrap();
            assert!(v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}: {v}");
            assert!(!l.as_str().unwrap().is_ascii(), "{name}: {v} has a Chinese label");
        }
    }
    assert!(enums >= 8, "{enums}");
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
    assert!(
        codes.contains(&serde_json::json!("zone_cap_exceeded"))
            && codes.contains(&serde_json::json!("precondition_failed"))
    );
    assert_eq!(doc["components"]["schemas"]["Problem"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");
}

/// Swagger UI in Chinese first: every tag, operation summary, schema property, parameter and enum value of the
/// document carries a Chinese label (English beside it), and `info.description` explains signing in, in Chinese.
#[test]
fn every_label_is_in_chinese() {
    let doc = shuiwu::startup::api_document();
    let chinese = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let mut missing = Vec::new();
    assert!(
        chinese(doc["info"]["description"].as_str().unwrap())
            && doc["info"]["description"].as_str().unwrap().contains("Authorize")
    );
    for tag in doc["tags"].as_array().unwrap() {
        if !chinese(tag["description"].as_str().unwrap_or("")) {
            missing.push(format!("tag {}", tag["name"]));
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !chinese(op["summary"].as_str().unwrap_or("")) {
                missing.push(format!("summary of {method} {path}"));
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if !chinese(p["description"].as_str().unwrap_or("")) {
                    missing.push(format!("parameter {} of {method} {path}", p["name"]));
                }
            }
        }
    }
    fn walk(name: &str, schema: &serde_json::Value, chinese: &dyn Fn(&str) -> bool, missing: &mut Vec<String>) {
        if let Some(props) = schema["properties"].as_object() {
            for (prop, s) in props {
                if !chinese(s["description"].as_str().unwrap_or("")) {
                    missing.push(format!("property {name}.{prop}"));
                }
                walk(&format!("{name}.{prop}"), s, chinese, missing);
            }
        }
        if let Some(values) = schema["enum"].as_array() {
            let labels = schema["x-enum-descriptions"].as_array().map_or(0, |l| l.len());
            if labels != values.len() {
                missing.push(format!("enum labels of {name}"));
            }
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for s in schema[key].as_array().into_iter().flatten() {
                walk(name, s, chinese, missing);
            }
        }
        if schema["items"].is_object() {
            walk(name, &schema["items"], chinese, missing);
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        walk(name, schema, &chinese, &mut missing);
    }
    for (name, r) in doc["components"]["responses"].as_object().unwrap() {
        if !chinese(r["description"].as_str().unwrap_or("")) {
            missing.push(format!("response {name}"));
        }
    }
    assert!(missing.is_empty(), "no Chinese label: {missing:#?}");
}

/// The staff guide explains every error code a problem may carry (a new code needs its line there).
#[test]
fn the_guide_explains_every_error_code() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    let missing: Vec<&str> = shuiwu::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !guide.contains(&format!("| `{c}` |")))
        .collect();
    assert!(missing.is_empty(), "docs/guide.md does not explain {missing:?}");
}

/// The repository stands on its own: the README and docs link only to files that are in it.
#[test]
fn documents_link_only_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    files.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap()];
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            assert!(dir.join(path).exists(), "{}: link to {target}, which is not in the repository", file.display());
            let resolved = dir.join(path).canonicalize().unwrap();
            assert!(resolved.starts_with(root.canonicalize().unwrap()), "{}: {target} is outside", file.display());
        }
    }
}

#[test]
fn every_reference_resolves() {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let spec = shuiwu::startup::api_document();
    let mut found = Vec::new();
    refs(&spec, &mut found);
    assert!(found.len() > 100);
    let missing: Vec<&String> = found
        .iter()
        .filter(|r| {
            let path = r.strip_prefix("#/").expect("a local reference");
            path.split('/').try_fold(&spec, |v, part| v.get(part)).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}
