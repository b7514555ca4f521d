//! docs/configuration.md cannot drift from the settings the binaries read: every setting of
//! the broker and the agent has a row with its variable and its default, and no row names a
//! setting that does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

/// `(key, variable, default)` of every setting, flattened from the defaults.
fn settings<T: Default + serde::Serialize>() -> Vec<(String, String, String)> {
    let table = toml::Table::try_from(T::default()).unwrap();
    let mut rows = Vec::new();
    flatten(&table, "", &mut rows);
    rows
}

fn flatten(table: &toml::Table, prefix: &str, rows: &mut Vec<(String, String, String)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(inner, &path, rows),
            other => {
                let variable = format!("BROKKR__{}", path.replace('.', "__").to_uppercase());
                rows.push((path, variable, shown(other)));
            }
        }
    }
}

fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) if s.is_empty() => "\"\"".into(),
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) if items.is_empty() => "[]".into(),
        toml::Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(","),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// The table rows of the document: key → (variable, default).
fn documented() -> BTreeMap<String, (String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap();
    let cell = |c: &str| c.trim().trim_matches('`').to_string();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            (cell(cells[1]), (cell(cells[2]), cell(cells[3])))
        })
        .collect()
}

#[test]
fn every_setting_is_documented_with_its_variable_and_default() {
    let documented = documented();
    let mut expected = settings::<brokkr_broker::config::Settings>();
    expected.extend(settings::<brokkr_agent::config::Settings>());
    let mut problems = Vec::new();
    for (key, variable, default) in &expected {
        match documented.get(key) {
            None => problems.push(format!(
                "| `{key}` | `{variable}` | `{default}` | … |  (missing)"
            )),
            Some((v, d)) if v != variable || d != default => problems.push(format!(
                "| `{key}` | `{variable}` | `{default}` |  (documented as `{v}`, `{d}`)"
            )),
            Some(_) => {}
        }
    }
    for key in documented.keys() {
        if !expected.iter().any(|(k, _, _)| k == key) {
            problems.push(format!("`{key}` is documented but is no setting"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of date:\n{}",
        problems.join("\n")
    );
}

/// The metric names in a text exposition (`# TYPE name kind` lines).
fn metric_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_is_in_the_operations_guide() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .unwrap();
    let broker = brokkr_broker::metrics::Metrics::default();
    broker.webhook_attempt("delivered");
    let mut names = metric_names(&broker.encode());
    names.extend(metric_names(
        &brokkr_agent::metrics::Metrics::default().render(),
    ));
    assert!(names.len() >= 15, "{names:?}");
    for name in names {
        let shown = match name.as_str() {
            // OpenMetrics names counters without `_total` in TYPE lines.
            n if !n.ends_with("_total") && guide.contains(&format!("`{n}_total")) => continue,
            n => n,
        };
        assert!(
            guide.contains(&format!("`{shown}")),
            "{shown} is not in docs/operations.md"
        );
    }
}
