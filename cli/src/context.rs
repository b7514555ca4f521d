//! Where the broker is and which PAK to present: a context of `~/.config/brokkr/config.toml`
//! (or `$BROKKR_CONFIG`), overridden by `BROKKR_URL` and `BROKKR_PAK` for pipelines. The file
//! names where a PAK is kept (an environment variable or a file), never the PAK itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use brokkr_client::Client;
use brokkr_types::Pak;
use serde::Deserialize;

/// The configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One broker and how to authenticate to it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub url: Option<String>,
    /// PEM bundle to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate followed by its key.
    pub client_cert_file: Option<PathBuf>,
    /// The environment variable holding the PAK.
    pub pak_env: Option<String>,
    /// A file holding the PAK (mode 0600 advised).
    pub pak_file: Option<PathBuf>,
}

fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BROKKR_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("brokkr").join("config.toml"))
}

fn load_file() -> Result<ConfigFile> {
    let Some(path) = config_path() else {
        return Ok(ConfigFile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("{} does not parse", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The context to use: `--context`, else the file's current one, with the environment on top.
pub fn resolve(name: Option<&str>) -> Result<Context> {
    let file = load_file()?;
    let wanted = name.map(str::to_string).or(file.current_context.clone());
    let mut context = match wanted {
        Some(name) => match file.contexts.get(&name) {
            Some(found) => found.clone(),
            None => bail!("no context {name:?} in the configuration file"),
        },
        None => Context::default(),
    };
    if let Ok(url) = std::env::var("BROKKR_URL") {
        context.url = Some(url);
    }
    Ok(context)
}

fn pak_of(context: &Context) -> Result<Option<Pak>> {
    if let Ok(pak) = std::env::var("BROKKR_PAK") {
        return Ok(Some(Pak::new(pak.trim().to_string())));
    }
    if let Some(var) = &context.pak_env {
        let pak = std::env::var(var)
            .with_context(|| format!("the context names {var}, which is not set"))?;
        return Ok(Some(Pak::new(pak.trim().to_string())));
    }
    if let Some(path) = &context.pak_file {
        let pak = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(Some(Pak::new(pak.trim().to_string())));
    }
    Ok(None)
}

/// A client for the context.
pub fn client(context: &Context) -> Result<Client> {
    let Some(url) = &context.url else {
        bail!("no broker: set BROKKR_URL, or a context in the configuration file");
    };
    let mut builder = Client::builder(url.clone());
    if let Some(pak) = pak_of(context)? {
        builder = builder.pak(pak);
    }
    if let Some(path) = &context.ca_file {
        builder = builder.ca_pem(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    if let Some(path) = &context.client_cert_file {
        builder = builder.identity_pem(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    Ok(builder.build()?)
}
