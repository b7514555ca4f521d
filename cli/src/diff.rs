//! What `brokkr apply` would change, for people: `+` added, `-` removed, `~` changed with one
//! line per field (the diff itself is `brokkr_types::manifest_diff`, shared with the console).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
pub use brokkr_types::manifest_diff::Diff;
use serde_json::Value;

/// The longest value shown in a table line.
const SHOWN_CHARS: usize = 120;

/// The diff as coloured lines. Styles are written always; the terminal writer strips them where
/// they do not belong.
pub fn render(diff: &Diff) -> String {
    let (add, remove, change) = (
        AnsiColor::Green.on_default(),
        AnsiColor::Red.on_default(),
        AnsiColor::Yellow.on_default(),
    );
    let mut out = String::new();
    let mut line = |style: Style, text: String| {
        let _ = writeln!(out, "{style}{text}{style:#}");
    };
    diff.added
        .iter()
        .for_each(|id| line(add, format!("+ {id}")));
    diff.removed
        .iter()
        .for_each(|id| line(remove, format!("- {id}")));
    for object in &diff.changed {
        line(change, format!("~ {}", object.object));
        for field in &object.fields {
            let (style, text) = match (&field.old, &field.new) {
                (None, Some(new)) => (add, format!("+ {}: {}", field.path, shown(new))),
                (Some(old), None) => (remove, format!("- {}: {}", field.path, shown(old))),
                (Some(old), Some(new)) => (
                    change,
                    format!("~ {}: {} → {}", field.path, shown(old), shown(new)),
                ),
                (None, None) => continue,
            };
            line(style, format!("    {text}"));
        }
    }
    out
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN_CHARS {
        return text;
    }
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendering_shows_fields_and_never_a_secret_value() {
        let secret = |v: &str| {
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"}, "stringData": {"password": v}})
        };
        let text = render(&Diff::between(&[secret("hunter2")], &[secret("swordfish")]));
        assert!(
            !text.contains("hunter2") && !text.contains("swordfish"),
            "{text}"
        );
        assert!(
            text.contains("~ Secret v1 s") && text.contains("stringData.password"),
            "{text}"
        );
    }
}
