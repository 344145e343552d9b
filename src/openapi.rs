//! The OpenAPI 3.1 document: operations come from the handlers' `#[utoipa::path]` as registered with
//! utoipa-actix-web (so the document lists exactly the routes that exist); then one pass adds what every
//! operation shares — the standard error responses, `Idempotency-Key`, and each operation's roles.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use crate::error::{ErrorCode, FieldProblem, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shuiwu 水务",
        description = "Back-end service of a county water affairs bureau: water users, permits, fees, planned use, enforcement.\n\n\
Authenticate with `POST /api/v1/auth/login` and use the `access_token` with **Authorize** (bearer). Every operation lists the roles \
that may call it; errors are RFC 9457 `application/problem+json` with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem, FieldProblem, ErrorCode)),
    tags(
        (name = "auth", description = "Sign-in, tokens"),
        (name = "accounts", description = "Staff accounts (admin)"),
        (name = "departments", description = "Departments (admin)"),
        (name = "service-accounts", description = "Accounts of provincial platforms (admin)"),
        (name = "water-users", description = "取用水户名录 — the registry of water users"),
        (name = "water-zones", description = "Zones with total-quantity caps (总量控制)"),
        (name = "permits", description = "取水许可 — water-abstraction permits from application to revocation"),
        (name = "withdrawals", description = "Monthly withdrawals per permit"),
        (name = "audit", description = "Append-only audit trail with a hash chain"),
        (name = "changes", description = "Change feed for provincial platforms"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// The document as utoipa builds it from the routes `routes` registers.
fn generated(routes: fn(&mut ServiceConfig)) -> utoipa::openapi::OpenApi {
    let (_, api) =
        actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(routes).split_for_parts();
    api
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

const STANDARD: [(&str, &str, &str); 13] = [
    ("400", "BadRequest", "Malformed request or invalid fields (`validation_failed`)"),
    ("401", "Unauthorized", "Missing, invalid, expired or revoked token (`unauthorized`)"),
    ("403", "Forbidden", "The caller's roles do not allow this operation (`forbidden`)"),
    ("404", "NotFound", "No such resource (`not_found`)"),
    ("409", "Conflict", "Refused by a business rule, or a request with the same Idempotency-Key is still running"),
    ("412", "PreconditionFailed", "If-Match does not match the current version (`precondition_failed`)"),
    ("413", "PayloadTooLarge", "Request body over 1 MiB (`payload_too_large`)"),
    ("415", "UnsupportedMediaType", "Request body is not application/json (`unsupported_media_type`)"),
    ("422", "IdempotencyKeyReused", "Idempotency-Key reused with a different request (`idempotency_key_reused`)"),
    ("428", "PreconditionRequired", "If-Match header missing (`precondition_required`)"),
    ("429", "TooManyRequests", "Too many attempts (`rate_limited`)"),
    ("500", "InternalError", "Unexpected error (`internal_error`); details are in the server log under the request id"),
    ("503", "ServiceUnavailable", "Database unreachable or overloaded (`service_unavailable`)"),
];

fn add_response(op: &mut Map<String, Value>, status: &str) {
    let responses = op.entry("responses").or_insert_with(|| json!({})).as_object_mut().expect("responses object");
    if !responses.contains_key(status) {
        let name = STANDARD.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).expect("standard status");
        responses.insert(status.into(), json!({ "$ref": format!("#/components/responses/{name}") }));
    }
}

fn has_param(op: &Map<String, Value>, location: &str, name: Option<&str>) -> bool {
    op.get("parameters").and_then(Value::as_array).is_some_and(|ps| {
        ps.iter().any(|p| {
            p["in"] == location && name.is_none_or(|n| p["name"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(n)))
        })
    })
}

/// Adds shared responses, parameters and role documentation to every operation.
fn complete(doc: &mut Value) {
    let components = doc["components"].as_object_mut().expect("components");
    let codes: Vec<(&str, &str)> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.title_zh())).collect();
    let code_schema =
        crate::domain::enum_schema("Every `code` a problem may carry (stable across releases and languages).", &codes);
    components["schemas"]["ErrorCode"] = serde_json::to_value(code_schema).expect("schema serialises");
    let mut responses = Map::new();
    for (_, name, description) in STANDARD {
        responses.insert(name.into(), problem_response(description));
    }
    components.insert("responses".into(), Value::Object(responses));
    components.insert(
        "securitySchemes".into(),
        json!({ "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "Access token from `POST /api/v1/auth/login` or `/api/v1/auth/token`. Scopes on operations are the roles that may call them." } }),
    );
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("path item").iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            let roles: Option<Vec<String>> = op.get("security").and_then(Value::as_array).and_then(|reqs| {
                reqs.iter()
                    .find_map(|r| r.get("bearer").and_then(Value::as_array))
                    .map(|scopes| scopes.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            });
            let who = match &roles {
                None => "No authentication.".to_string(),
                Some(r) if r.is_empty() => "Any authenticated caller.".to_string(),
                Some(r) => format!("Roles: {}.", r.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")),
            };
            let description = match op.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d}\n\n**{who}**"),
                _ => format!("**{who}**"),
            };
            op.insert("description".into(), Value::String(description));
            if let Some(r) = &roles {
                op.insert("x-roles".into(), json!(r));
                add_response(op, "401");
                if !r.is_empty() {
                    add_response(op, "403");
                }
            }
            if op.contains_key("requestBody") {
                for s in ["400", "413", "415"] {
                    add_response(op, s);
                }
            }
            if has_param(op, "query", None) {
                add_response(op, "400");
            }
            if path.contains('{') {
                add_response(op, "404");
            }
            if has_param(op, "header", Some("If-Match")) && method != "delete" {
                add_response(op, "412");
                add_response(op, "428");
            }
            if method == "post" {
                let params = op.entry("parameters").or_insert_with(|| json!([])).as_array_mut().expect("parameters");
                params.push(json!({
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "Retry safely: the same key and body get the stored response (kept 24 h, per caller).",
                    "schema": { "type": "string", "maxLength": 255 }
                }));
                add_response(op, "409");
                add_response(op, "422");
            }
            add_response(op, "500");
            add_response(op, "503");
        }
    }
}

/// The finished document for the routes `routes` registers (`crate::startup::routes`).
pub fn document(routes: fn(&mut ServiceConfig)) -> Value {
    let mut doc = serde_json::to_value(generated(routes)).expect("OpenAPI serialises");
    complete(&mut doc);
    doc
}

/// The document as served and committed (`openapi/openapi.json`): pretty JSON with a final newline.
pub fn to_string(doc: &Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("JSON serialises");
    s.push('\n');
    s
}
