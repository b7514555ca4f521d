//! How answers are printed: aligned tables for people, one JSON or YAML document for scripts
//! (no decoration, so `jq` and `yq` read it as it is).

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// A time as a table shows it: to the second, in UTC (`2026-12-07T06:30:00Z`).
pub fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Rows of text under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n") + "\n"
}

/// Prints `value` as JSON or YAML, or its table.
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    as_table: impl FnOnce(&T) -> String,
) -> Result<()> {
    match format {
        // Tables may carry colours: the terminal writer drops them off a terminal.
        Format::Table => anstream::print!("{}", as_table(value)),
        Format::Json => print!("{}", serde_json::to_string_pretty(value)? + "\n"),
        Format::Yaml => print!("{}", serde_yaml_ng::to_string(value)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["web".to_string(), "3".to_string()],
            vec!["database".to_string(), "12".to_string()],
        ];
        assert_eq!(
            table(&["NAME", "OBJECTS"], &rows),
            "NAME      OBJECTS\nweb       3\ndatabase  12\n"
        );
    }
}
