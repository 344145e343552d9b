//! CSV for people: one column per field of the view as the OpenAPI schema documents it (so the header is the same
//! whatever the rows hold), a nested object's fields as `object.field` columns, lists and maps as JSON text in one
//! cell. Text that Excel would run as a formula is neutralised.

use std::collections::HashMap;

use serde_json::Value;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// A column: its header and where its value sits in the record (`["intake_location", "lat"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    path: Vec<String>,
}

/// The columns of `V`'s CSV, in the schema's field order.
pub fn columns<V: ToSchema>() -> Vec<Column> {
    let mut found = Vec::new();
    V::schemas(&mut found);
    let named: HashMap<String, RefOr<Schema>> = found.into_iter().collect();
    let mut out = Vec::new();
    for (field, schema) in properties(&V::schema(), &named).unwrap_or_default() {
        match properties(&schema, &named) {
            Some(inner) if !inner.is_empty() => out.extend(
                inner
                    .into_iter()
                    .map(|(sub, _)| Column { name: format!("{field}.{sub}"), path: vec![field.clone(), sub] }),
            ),
            _ => out.push(Column { name: field.clone(), path: vec![field] }),
        }
    }
    out
}

/// The fields of an object schema (through a reference, or the one non-null choice of an optional), if it is one.
fn properties(schema: &RefOr<Schema>, named: &HashMap<String, RefOr<Schema>>) -> Option<Vec<(String, RefOr<Schema>)>> {
    match schema {
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next()?;
            properties(named.get(name)?, named)
        }
        RefOr::T(Schema::Object(o)) if !o.properties.is_empty() => {
            Some(o.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        RefOr::T(Schema::OneOf(one)) => {
            let mut choices = one.items.iter().filter(|s| !is_null(s));
            let only = choices.next()?;
            if choices.next().is_some() {
                return None;
            }
            properties(only, named)
        }
        RefOr::T(Schema::AllOf(all)) if all.items.len() == 1 => properties(&all.items[0], named),
        _ => None,
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    use utoipa::openapi::schema::{SchemaType, Type};
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// The cells of one record (a JSON object as the view serialises), column by column.
pub fn row(columns: &[Column], record: &Value) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let value = c.path.iter().try_fold(record, |v, key| v.get(key));
            cell(value.unwrap_or(&Value::Null))
        })
        .collect()
}

/// One value as a cell: empty for null, numbers and booleans as written in JSON, lists and objects as JSON text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => neutralise(s),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// Text that a spreadsheet would take for a formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a leading apostrophe: Excel shows it as the text it is and never runs it. So does text that begins
/// with an apostrophe itself, so that the rule reads back: a reader takes one apostrophe off a cell that begins with
/// `'` followed by one of those characters or another `'`.
pub fn neutralise(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_become_dotted_columns_and_lists_one_cell() {
        let names: Vec<String> = columns::<crate::permits::Permit>().into_iter().map(|c| c.name).collect();
        assert!(names.starts_with(&["id".to_string(), "permit_no".to_string()]), "{names:?}");
        for n in ["intake_location.lat", "intake_location.lng", "intake_location.address", "status", "version"] {
            assert!(names.contains(&n.to_string()), "{n} in {names:?}");
        }
        assert!(!names.contains(&"intake_location".to_string()));
        let inspection: Vec<String> = columns::<crate::inspections::Inspection>().into_iter().map(|c| c.name).collect();
        assert!(inspection.contains(&"findings".to_string()), "{inspection:?}");
    }

    #[test]
    fn cells_are_neutralised_and_typed() {
        assert_eq!(cell(&Value::String("=1+1".into())), "'=1+1");
        assert_eq!(cell(&Value::String("@SUM(A1)".into())), "'@SUM(A1)");
        assert_eq!(cell(&Value::String("-2".into())), "'-2");
        assert_eq!(cell(&Value::String("'=x".into())), "''=x");
        assert_eq!(cell(&Value::String("'引号".into())), "''引号");
        assert_eq!(cell(&Value::String("赤水河".into())), "赤水河");
        assert_eq!(cell(&serde_json::json!(-2)), "-2");
        assert_eq!(cell(&serde_json::json!(null)), "");
        assert_eq!(cell(&serde_json::json!(["a", 1])), r#"["a",1]"#);
    }
}
