//! Every operation in the OpenAPI document is called with a token of every role: roles outside the
//! operation's declared roles must get 403, roles inside must not; without a token, 401. This ties the
//! documented roles to what the extractor enforces.

use shuiwu::identity::Role;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(every_operation_refuses_every_other_role);

async fn every_operation_refuses_every_other_role(app: TestApp) {
    let doc = shuiwu::startup::api_document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        for (method, op) in item.as_object().unwrap() {
            let Some(roles) = op.get("x-roles").and_then(|r| r.as_array()) else {
                continue;
            };
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str().unwrap()).collect();
            let m: awc::http::Method = method.to_uppercase().parse().unwrap();
            let none = app.request(m.clone(), &concrete).raw("{}", "application/json").send().await;
            assert_eq!(none.status, 401, "{method} {path} without a token: {}", none.text);
            for role in Role::ALL {
                let token = app.token(&[role]);
                let r = app.request(m.clone(), &concrete).bearer(&token).raw("{}", "application/json").send().await;
                if allowed.is_empty() || allowed.contains(&role.as_str()) {
                    assert_ne!(r.status, 403, "{method} {path} must allow {}: {}", role.as_str(), r.text);
                } else {
                    assert_eq!(r.status, 403, "{method} {path} must refuse {}: {}", role.as_str(), r.text);
                    r.assert_problem(403, "forbidden");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10 * 20, "only {checked} checks");
}
