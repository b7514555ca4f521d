//! A bounded YAML reader: multi-document YAML into JSON values, one pass over parser events,
//! refusing input past [`YamlLimits`] (nesting, documents, nodes, alias expansions) as soon
//! as it is reached. Deep nesting therefore costs microseconds, not the quadratic time a
//! recursive reader spends, and an alias bomb is refused before it is expanded. Error
//! messages name the position and the limit, never the content (it may hold a Secret).
//!
//! Plain scalars resolve as in the YAML 1.2 core schema (null, booleans, integers, floats);
//! mapping keys become strings, as Kubernetes objects require.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// How much a submission may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most documents in one submission.
    pub max_documents: usize,
    /// Most nodes (scalars, mappings, sequences, with aliases expanded) in all documents.
    pub max_nodes: usize,
    /// Most aliases (`*name`) used.
    pub max_aliases: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_documents: 1000,
            max_nodes: 1_000_000,
            max_aliases: 1000,
        }
    }
}

/// Why YAML was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("document {document} is not valid YAML at line {line} column {column}: {reason}")]
    Syntax {
        document: usize,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("document {document} exceeds the limit of {limit} {what} (at line {line})")]
    Limit {
        document: usize,
        what: &'static str,
        limit: usize,
        line: usize,
    },
    #[error("document {document} has a mapping or sequence as a key (at line {line})")]
    ComplexKey { document: usize, line: usize },
    #[error("document {document} uses an undefined alias (at line {line})")]
    UnknownAlias { document: usize, line: usize },
}

impl YamlError {
    /// The index of the document the error is in.
    pub fn document(&self) -> usize {
        match self {
            Self::Syntax { document, .. }
            | Self::Limit { document, .. }
            | Self::ComplexKey { document, .. }
            | Self::UnknownAlias { document, .. } => *document,
        }
    }
}

/// A mapping or sequence being built.
enum Frame {
    Sequence(Vec<Value>, usize),
    Mapping(Map<String, Value>, Option<String>, usize),
}

/// The reader's state across events.
struct Reader {
    limits: YamlLimits,
    stack: Vec<Frame>,
    /// Anchored values and how many nodes each holds.
    anchors: HashMap<usize, (Value, usize)>,
    /// Nodes of the node being built, per open frame (for anchors).
    sizes: Vec<usize>,
    nodes: usize,
    aliases: usize,
    documents: Vec<Value>,
    document: usize,
    line: usize,
}

/// Every document of `text` as JSON; empty documents are left out.
pub fn documents(text: &str, limits: &YamlLimits) -> Result<Vec<Value>, YamlError> {
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        return Err(YamlError::Syntax {
            document: text[..at].matches("\n---").count(),
            line,
            column: text[..at]
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count())
                + 1,
            reason: "a NUL character is not allowed in YAML".into(),
        });
    }
    let mut reader = Reader {
        limits: *limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        sizes: Vec::new(),
        nodes: 0,
        aliases: 0,
        documents: Vec::new(),
        document: 0,
        line: 1,
    };
    let mut started: usize = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError::Syntax {
            document: started.saturating_sub(1),
            line: e.marker().line(),
            column: e.marker().col() + 1,
            reason: e.info().to_string(),
        })?;
        reader.line = span.start.line();
        if let Event::DocumentStart(_) = event {
            started += 1;
            reader.document = started - 1;
            if started > limits.max_documents {
                return Err(reader.limit("documents", limits.max_documents));
            }
        }
        reader.on(event)?;
    }
    Ok(reader.documents)
}

impl Reader {
    fn limit(&self, what: &'static str, limit: usize) -> YamlError {
        YamlError::Limit {
            document: self.document,
            what,
            limit,
            line: self.line,
        }
    }

    fn count(&mut self, nodes: usize) -> Result<(), YamlError> {
        self.nodes += nodes;
        for size in &mut self.sizes {
            *size += nodes;
        }
        if self.nodes > self.limits.max_nodes {
            return Err(self.limit("nodes", self.limits.max_nodes));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame) -> Result<(), YamlError> {
        self.count(1)?;
        self.stack.push(frame);
        self.sizes.push(1);
        if self.stack.len() > self.limits.max_depth {
            return Err(self.limit("levels of nesting", self.limits.max_depth));
        }
        Ok(())
    }

    fn on(&mut self, event: Event<'_>) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1)?;
                let value = scalar(&text, style, tag.as_deref());
                self.remember(anchor, &value, 1);
                self.place(value)
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Sequence(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => self.open(Frame::Mapping(Map::new(), None, anchor)),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => {
                self.aliases += 1;
                if self.aliases > self.limits.max_aliases {
                    return Err(self.limit("aliases", self.limits.max_aliases));
                }
                let unknown = YamlError::UnknownAlias {
                    document: self.document,
                    line: self.line,
                };
                // The size is counted before the value is copied: a bomb is refused unexpanded.
                let size = self
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or(unknown)?;
                self.count(size)?;
                let value = self
                    .anchors
                    .get(&id)
                    .map(|(v, _)| v.clone())
                    .unwrap_or_default();
                self.place(value)
            }
            _ => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let size = self.sizes.pop().unwrap_or(1);
        let (value, anchor) = match self.stack.pop() {
            Some(Frame::Sequence(items, anchor)) => (Value::Array(items), anchor),
            Some(Frame::Mapping(map, _, anchor)) => (Value::Object(map), anchor),
            None => return Ok(()),
        };
        self.remember(anchor, &value, size);
        self.place(value)
    }

    fn remember(&mut self, anchor: usize, value: &Value, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
    }

    /// Puts a finished node into its parent, or makes it a document.
    fn place(&mut self, value: Value) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                if !value.is_null() {
                    self.documents.push(value);
                }
                Ok(())
            }
            Some(Frame::Sequence(items, _)) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Mapping(map, key, _)) => {
                match key.take() {
                    Some(k) => {
                        map.insert(k, value);
                    }
                    None => {
                        *key = Some(key_text(value).ok_or(YamlError::ComplexKey {
                            document: self.document,
                            line: self.line,
                        })?);
                    }
                }
                Ok(())
            }
        }
    }
}

/// A scalar used as a mapping key, as text.
fn key_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A scalar's value: quoted and block scalars are strings; plain ones resolve by the core
/// schema unless a `!!str` tag says otherwise.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let core = tag
        .filter(|t| t.is_yaml_core_schema())
        .map(|t| t.suffix.as_str());
    if core == Some("str") || (style != ScalarStyle::Plain && core.is_none()) {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    number(text).unwrap_or_else(|| Value::String(text.to_string()))
}

fn number(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let radix = |prefix: &str, radix: u32| {
        digits
            .strip_prefix(prefix)
            .and_then(|d| i64::from_str_radix(d, radix).ok())
            .map(|n| Value::from(if negative { -n } else { n }))
    };
    if let Some(v) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Some(v);
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .ok();
    }
    let float_chars = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if float_chars && digits.bytes().any(|b| b.is_ascii_digit()) {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str) -> Result<Vec<Value>, YamlError> {
        documents(text, &YamlLimits::default())
    }

    #[test]
    fn documents_become_json() {
        let text = "a: 1\nb: [x, 'y', \"2\", 0x10, -3.5, true, ~]\nc: {d: null}\n---\n---\n\"k\": |\n  text\n";
        let docs = read(text).unwrap();
        assert_eq!(
            docs,
            vec![
                json!({ "a": 1, "b": ["x", "y", "2", 16, -3.5, true, null], "c": { "d": null } }),
                json!({ "k": "text\n" }),
            ]
        );
        let tagged = read("a: !!str 10\nb: 10\n1: one\n").unwrap();
        assert_eq!(tagged, vec![json!({ "a": "10", "b": 10, "1": "one" })]);
    }

    #[test]
    fn anchors_expand_and_aliases_are_counted() {
        let docs = read("base: &b {x: 1}\ncopy: *b\n").unwrap();
        assert_eq!(
            docs,
            vec![json!({ "base": { "x": 1 }, "copy": { "x": 1 } })]
        );
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, prev) in ["b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g"])
        {
            bomb.push_str(&format!("{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = read(&bomb).unwrap_err();
        assert!(
            matches!(err, YamlError::Limit { what: "nodes", .. }),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_at_once() {
        let n = 100_000;
        let text = format!("x: {}1{}", "{a: ".repeat(n), "}".repeat(n));
        let err = read(&text).unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Limit {
                    what: "levels of nesting",
                    limit: 64,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("64 levels of nesting"), "{err}");
        let block = (0..70)
            .map(|i| format!("{}k:", " ".repeat(i)))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(matches!(read(&block), Err(YamlError::Limit { .. })));
    }

    #[test]
    fn documents_and_keys_are_bounded() {
        let limits = YamlLimits {
            max_documents: 2,
            ..YamlLimits::default()
        };
        let err = documents("a: 1\n---\nb: 2\n---\nc: 3\n", &limits).unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Limit {
                    what: "documents",
                    document: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            read("? [a]\n: 1\n"),
            Err(YamlError::ComplexKey { .. })
        ));
    }

    #[test]
    fn nul_characters_are_refused() {
        let err = read("a: 1\nb: \"x\0y\"\n").unwrap_err();
        assert!(matches!(err, YamlError::Syntax { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_place_not_the_content() {
        let err = read("a: 1\n---\nstringData: {password: hunter2\n").unwrap_err();
        let YamlError::Syntax { document, line, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!((*document, *line > 2), (1, true), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
