//! What answers when no route matched: 405 with `Allow` when the path exists under other methods, else 404.
//! The table of paths and methods is the OpenAPI document's, so it cannot drift from the routes.

use actix_web::dev::ResourceDef;
use actix_web::{web, HttpRequest};

use crate::error::ApiError;

pub struct RouteTable(Vec<(ResourceDef, Vec<String>)>);

impl RouteTable {
    pub fn from_document(doc: &serde_json::Value) -> Self {
        let mut table = Vec::new();
        let empty = serde_json::Map::new();
        let paths = doc.get("paths").and_then(|p| p.as_object()).unwrap_or(&empty);
        for (path, json) in paths {
            let methods: Vec<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
                .iter()
                .filter(|m| json.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
            table.push((ResourceDef::new(path.as_str()), methods));
        }
        Self(table)
    }

    fn allowed(&self, path: &str) -> Option<Vec<String>> {
        self.0.iter().find(|(def, _)| def.is_match(path)).map(|(_, m)| m.clone())
    }
}

pub async fn handler(req: HttpRequest, table: web::Data<RouteTable>) -> Result<actix_web::HttpResponse, ApiError> {
    Err(match table.allowed(req.path()) {
        Some(allow) if !allow.iter().any(|m| m == req.method().as_str()) => ApiError::MethodNotAllowed { allow },
        _ => ApiError::NotFound,
    })
}
