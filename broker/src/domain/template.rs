//! Stack templates, rendered in a sandbox: a minijinja environment with no loader (no
//! includes, imports or files), no globals beyond the builtin functions, nothing from the
//! process (no environment variables), strict undefined variables, an instruction and
//! allocation budget (fuel), a recursion limit, and output capped at a size. The parameters
//! are checked against the template's JSON Schema (draft 2020-12 or 7; no remote references
//! are ever fetched) after the schema's defaults are applied.

use std::collections::BTreeMap;

use brokkr_types::problem::FieldError;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// What one rendering may use.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// minijinja fuel: instructions plus estimated bytes allocated.
    pub fuel: u64,
    pub max_output_bytes: usize,
    pub recursion: usize,
}

/// The name templates are compiled under (shown in nothing the user sees).
const NAME: &str = "template.yaml";

/// Why a template did not compile or render, with the 1-based position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

fn environment(limits: RenderLimits) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(limits.recursion);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // YAML-friendly whitespace: a block tag's own line leaves no blank line behind.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_debug(true);
    env
}

/// 1-based line and column of byte `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn explain(source: &str, err: &minijinja::Error) -> TemplateError {
    let span = err.range().filter(|r| r.end <= source.len());
    let (line, column) = match &span {
        Some(range) => {
            let (line, column) = position(source, range.start);
            (Some(line), Some(column))
        }
        None => (err.line(), None),
    };
    let detail = err.detail().map(str::to_string);
    let message = match err.kind() {
        ErrorKind::UndefinedError => {
            let name = span
                .map(|r| source[r].trim().to_string())
                .unwrap_or_default();
            format!("undefined variable `{name}`")
        }
        ErrorKind::SyntaxError => format!("syntax error: {}", detail.unwrap_or_default()),
        ErrorKind::OutOfFuel => "the template needs more work than a rendering may take".into(),
        ErrorKind::WriteFailure => "the rendered output is larger than allowed".into(),
        _ => detail.unwrap_or_else(|| format!("{:?}", err.kind())),
    };
    TemplateError {
        message,
        line,
        column,
    }
}

/// Checks that `source` compiles.
pub fn check_syntax(source: &str, limits: RenderLimits) -> Result<(), TemplateError> {
    let env = environment(limits);
    env.template_from_named_str(NAME, source)
        .map(|_| ())
        .map_err(|e| explain(source, &e))
}

/// A writer that refuses to go beyond a size.
struct Bounded {
    out: Vec<u8>,
    max: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` with the parameters as variables, and `stack` (name, labels, annotations)
/// and `parameters` (all of them) beside them.
pub fn render(
    source: &str,
    parameters: &Value,
    stack: &Value,
    limits: RenderLimits,
) -> Result<String, TemplateError> {
    let env = environment(limits);
    let template = env
        .template_from_named_str(NAME, source)
        .map_err(|e| explain(source, &e))?;
    let mut context: BTreeMap<String, Value> = parameters
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    context.insert("stack".into(), stack.clone());
    context.insert("parameters".into(), parameters.clone());
    let mut out = Bounded {
        out: Vec::new(),
        max: limits.max_output_bytes,
    };
    template
        .render_captured_to(
            minijinja::Value::from(minijinja::value::Serde(&context)),
            &mut out,
        )
        .map_err(|e| explain(source, &e))?;
    String::from_utf8(out.out).map_err(|_| TemplateError {
        message: "the rendered output is not UTF-8".into(),
        line: None,
        column: None,
    })
}

/// A compiled JSON Schema.
#[derive(Debug)]
pub struct Schema {
    source: Value,
    validator: jsonschema::Validator,
}

impl Schema {
    /// Compiles a schema (draft 2020-12, or the draft its `$schema` names), refusing one that is
    /// not valid against its meta-schema or that refers to anything outside itself.
    pub fn compile(source: &Value) -> Result<Self, String> {
        jsonschema::meta::validate(source).map_err(|e| {
            let at = e.instance_path().to_string();
            let place = if at.is_empty() {
                String::new()
            } else {
                format!(" at {at}")
            };
            format!("not a valid JSON Schema{place}: {e}")
        })?;
        let validator = jsonschema::options()
            .with_draft(draft_of(source))
            .build(source)
            .map_err(|e| format!("the JSON Schema does not compile: {e}"))?;
        Ok(Self {
            source: source.clone(),
            validator,
        })
    }

    /// The parameters with the schema's defaults filled in, or every violation with its JSON
    /// pointer.
    pub fn check(&self, parameters: &Value) -> Result<Value, Vec<FieldError>> {
        let mut filled = parameters.clone();
        apply_defaults(&self.source, &mut filled, 0);
        let errors: Vec<FieldError> = self
            .validator
            .iter_errors(&filled)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                FieldError {
                    location: format!(
                        "parameters{}",
                        if pointer.is_empty() {
                            String::new()
                        } else {
                            pointer
                        }
                    ),
                    message: e.to_string(),
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(filled)
        } else {
            Err(errors)
        }
    }
}

/// The draft a schema names in `$schema` (draft 7 and 2020-12 are supported; 2020-12 when
/// it names none).
fn draft_of(schema: &Value) -> jsonschema::Draft {
    match schema.get("$schema").and_then(Value::as_str) {
        Some(uri) if uri.contains("draft-07") => jsonschema::Draft::Draft7,
        Some(uri) if uri.contains("draft-06") => jsonschema::Draft::Draft6,
        Some(uri) if uri.contains("draft-04") => jsonschema::Draft::Draft4,
        Some(uri) if uri.contains("2019-09") => jsonschema::Draft::Draft201909,
        _ => jsonschema::Draft::Draft202012,
    }
}

/// Fills in `properties.*.default` of object schemas, recursively (bounded depth).
fn apply_defaults(schema: &Value, value: &mut Value, depth: usize) {
    if depth > 16 {
        return;
    }
    let (Some(properties), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object_mut(),
    ) else {
        return;
    };
    for (name, property) in properties {
        if !object.contains_key(name)
            && let Some(default) = property.get("default")
        {
            object.insert(name.clone(), default.clone());
        }
        if let Some(inner) = object.get_mut(name) {
            apply_defaults(property, inner, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: RenderLimits = RenderLimits {
        fuel: 5_000_000,
        max_output_bytes: 64 * 1024,
        recursion: 32,
    };

    fn stack() -> Value {
        json!({ "name": "web", "labels": ["prod"], "annotations": {} })
    }

    #[test]
    fn renders_parameters_and_the_stack() {
        let source = "replicas: {{ replicas }}\nname: {{ stack.name }}-{{ parameters.image }}\n";
        let out = render(
            source,
            &json!({ "replicas": 3, "image": "app:1" }),
            &stack(),
            LIMITS,
        )
        .unwrap();
        assert_eq!(out, "replicas: 3\nname: web-app:1\n");
    }

    #[test]
    fn the_sandbox_holds() {
        let run = |source: &str| render(source, &json!({}), &stack(), LIMITS).unwrap_err();
        let env = run("a: {{ env }}");
        assert_eq!(env.message, "undefined variable `env`");
        assert_eq!((env.line, env.column), (Some(1), Some(7)));
        assert!(run("{{ range(10**9) }}").message.contains("too many"));
        assert!(
            run("{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(1) }}")
                .message
                .contains("recursion")
        );
        let spin = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}";
        assert!(run(spin).message.contains("more work"));
        assert!(
            run("{% include '/etc/passwd' %}")
                .message
                .contains("syntax error")
        );
        let big = "{% for i in range(9000) %}{{ 'x' * 100 }}{% endfor %}";
        assert!(run(big).message.contains("larger"));
        let undefined = run("a: 1\nb: {{ image.tag }}");
        assert_eq!(undefined.message, "undefined variable `image.tag`");
        assert_eq!(undefined.line, Some(2));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err =
            check_syntax("kind: Deployment\nreplicas: {{ replicas bad }}\n", LIMITS).unwrap_err();
        assert!(err.message.starts_with("syntax error"), "{err}");
        assert_eq!(err.line, Some(2));
        assert!(err.column.is_some(), "{err:?}");
    }

    #[test]
    fn schemas_validate_with_defaults_and_pointers() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "required": ["image"],
            "properties": {
                "replicas": { "type": "integer", "minimum": 1, "default": 2 },
                "image": { "type": "string" },
            },
        }))
        .unwrap();
        let filled = schema.check(&json!({ "image": "app:1" })).unwrap();
        assert_eq!(filled["replicas"], 2);
        let errors = schema.check(&json!({ "replicas": 0 })).unwrap_err();
        assert!(
            errors.iter().any(|e| e.location == "parameters/replicas"),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.message.contains("image")),
            "{errors:?}"
        );
        assert!(Schema::compile(&json!({ "type": "no-such-type" })).is_err());
        let draft7 =
            json!({ "$schema": "http://json-schema.org/draft-07/schema#", "type": "object" });
        assert!(Schema::compile(&draft7).is_ok());
    }
}
