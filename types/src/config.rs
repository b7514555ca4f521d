//! Layered configuration shared by the broker and the agent: defaults, then a TOML file, then
//! `BROKKR__SECTION__KEY` environment variables, then command-line overrides.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("unknown setting {name}; known keys of [{section}] are: {known}")]
    UnknownKey {
        name: String,
        section: String,
        known: String,
    },
    #[error("setting {name} must be {expected}, got {value:?}")]
    Type {
        name: String,
        expected: &'static str,
        value: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Builds a configuration of type `T` from its defaults, an optional file and the environment.
///
/// Only the environment variables of sections present in `T`'s defaults are read, so the
/// broker ignores `BROKKR__AGENT__*` and the agent ignores `BROKKR__BROKER__*`. A variable
/// naming an unknown key of a known section is an error (it is usually a typo).
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut table = toml::Table::try_from(T::default())
        .map_err(|e| ConfigError::Invalid(format!("defaults do not serialise: {e}")))?;
    if let Some(path) = file {
        merge(&mut table, read_file(path)?);
    }
    for (name, value) in env {
        apply_env(&mut table, &name, value)?;
    }
    T::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid(e.to_string()))
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: shown,
        message: e.to_string(),
    })
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn apply_env(table: &mut toml::Table, name: &str, raw: String) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("BROKKR__") else {
        return Ok(());
    };
    // SECTION__KEY, or SECTION__SUBSECTION__KEY for nested tables such as broker.tls.
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let [section, inner @ .., key] = path.as_slice() else {
        return Ok(());
    };
    let mut entries: &mut toml::Table = match table.get_mut(section) {
        Some(toml::Value::Table(entries)) => entries,
        _ => return Ok(()),
    };
    let mut scope = section.clone();
    for part in inner {
        if !matches!(entries.get(part), Some(toml::Value::Table(_))) {
            return Err(unknown(name, &scope, entries));
        }
        let Some(toml::Value::Table(nested)) = entries.get_mut(part) else {
            return Ok(());
        };
        entries = nested;
        scope = format!("{scope}.{part}");
    }
    let Some(current) = entries.get(key) else {
        return Err(unknown(name, &scope, entries));
    };
    let value = typed_like(current, name, raw)?;
    entries.insert(key.clone(), value);
    Ok(())
}

fn unknown(name: &str, section: &str, entries: &toml::Table) -> ConfigError {
    let known: BTreeMap<_, _> = entries.iter().map(|(k, _)| (k.clone(), ())).collect();
    ConfigError::UnknownKey {
        name: name.to_string(),
        section: section.to_string(),
        known: known.into_keys().collect::<Vec<_>>().join(", "),
    }
}

/// Reads an environment string as the type the setting already has.
fn typed_like(current: &toml::Value, name: &str, raw: String) -> Result<toml::Value, ConfigError> {
    let bad = |expected| ConfigError::Type {
        name: name.to_string(),
        expected,
        value: raw.clone(),
    };
    Ok(match current {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?)
        }
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => toml::Value::Boolean(true),
            "false" | "0" | "no" => toml::Value::Boolean(false),
            _ => return Err(bad("true or false")),
        },
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw),
    })
}

/// Logging: a tracing filter (`info`, `brokkr_broker=debug,info`) and a format.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl LogSettings {
    pub fn check(&self) -> Result<(), ConfigError> {
        if matches!(self.format.as_str(), "text" | "json") {
            Ok(())
        } else {
            Err(ConfigError::Invalid(
                "log.format must be \"text\" or \"json\"".into(),
            ))
        }
    }

    /// Installs the process's tracing subscriber, writing to stderr.
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        use std::io::IsTerminal;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        if self.format == "json" {
            builder.json().init();
        } else {
            builder.init();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        server: Server,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Server {
        addr: String,
        ttl_seconds: u64,
        verbose: bool,
    }

    impl Default for Server {
        fn default() -> Self {
            Self {
                addr: "127.0.0.1:1".into(),
                ttl_seconds: 60,
                verbose: false,
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = std::env::temp_dir().join(format!("brokkr-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[server]\naddr = \"0.0.0.0:9\"\nttl_seconds = 5\n").unwrap();
        let demo: Demo = load(
            Some(&file),
            env(&[
                ("BROKKR__SERVER__TTL_SECONDS", "7"),
                ("BROKKR__OTHER__X", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(demo.server.addr, "0.0.0.0:9");
        assert_eq!(demo.server.ttl_seconds, 7);
        assert!(!demo.server.verbose);
    }

    #[test]
    fn typos_and_bad_types_are_reported() {
        let err = load::<Demo>(None, env(&[("BROKKR__SERVER__TTL", "1")])).unwrap_err();
        assert!(err.to_string().contains("ttl_seconds"), "{err}");
        let err = load::<Demo>(None, env(&[("BROKKR__SERVER__TTL_SECONDS", "soon")])).unwrap_err();
        assert!(err.to_string().contains("must be an integer"), "{err}");
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        server: WithTls,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct WithTls {
        addr: String,
        tls: Tls,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Tls {
        cert_file: String,
    }

    #[test]
    fn nested_sections_take_the_environment_too() {
        let nested: Nested =
            load(None, env(&[("BROKKR__SERVER__TLS__CERT_FILE", "/c.pem")])).unwrap();
        assert_eq!(nested.server.tls.cert_file, "/c.pem");
        let err = load::<Nested>(None, env(&[("BROKKR__SERVER__TLS__CERT", "x")])).unwrap_err();
        assert!(
            err.to_string().contains("[server.tls]") && err.to_string().contains("cert_file"),
            "{err}"
        );
        let err =
            load::<Nested>(None, env(&[("BROKKR__SERVER__TSL__CERT_FILE", "x")])).unwrap_err();
        assert!(err.to_string().contains("addr, tls"), "{err}");
    }

    #[test]
    fn numeric_looking_strings_stay_strings() {
        let demo: Demo = load(None, env(&[("BROKKR__SERVER__ADDR", "1234")])).unwrap();
        assert_eq!(demo.server.addr, "1234");
    }
}
