//! Golden outputs: what a command printed, with ids and times replaced by placeholders of the
//! same width (so tables stay aligned), compared with a file under `tests/cli/golden/`.
//! `BROKKR_BLESS=1` rewrites the files (then read the diff before committing it).

use std::path::PathBuf;

fn normalise(text: &str) -> String {
    split_keeping(text).into_iter().map(placeholder).collect()
}

/// What stands for an id or a time; other words as they are.
fn placeholder(word: &str) -> &str {
    if word.len() == 36 && uuid::Uuid::parse_str(word).is_ok() {
        return "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    }
    if chrono::DateTime::parse_from_rfc3339(word).is_ok() {
        // Tables print whole seconds (a fixed width); JSON and YAML any precision.
        return match word.len() {
            20 => "YYYY-MM-DDThh:mm:ssZ",
            _ => "<time>",
        };
    }
    word
}

/// The text cut into words and the separators between them, all kept.
fn split_keeping(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let is_separator = |c: char| c.is_whitespace() || "\"',()[]{}".contains(c);
    for (at, c) in text.char_indices() {
        if is_separator(c) {
            if start < at {
                parts.push(&text[start..at]);
            }
            parts.push(&text[at..at + c.len_utf8()]);
            start = at + c.len_utf8();
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// Asserts that `text` matches the golden file `name`.
pub fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("cli/golden")
        .join(name);
    let actual = normalise(text);
    if std::env::var_os("BROKKR_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with BROKKR_BLESS=1 to write it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from {}", path.display());
}
