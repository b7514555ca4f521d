//! Compiled expressions by source. Stored expressions were checked when written, so compiling
//! them again only costs time; these caches keep each compiled once per process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use brokkr_policy::{ExpressionError, ReachExpression, TargetExpression};

/// Entries kept before a cache starts over.
const CAPACITY: usize = 10_000;

type Cache<T> = OnceLock<Mutex<HashMap<String, T>>>;

fn cached<T: Clone>(
    cache: &'static Cache<T>,
    source: &str,
    parse: fn(&str) -> Result<T, ExpressionError>,
) -> Result<T, String> {
    let cache = cache.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(source).cloned()) {
        return Ok(found);
    }
    let compiled = parse(source).map_err(|e| e.to_string())?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(source.to_string(), compiled.clone());
    }
    Ok(compiled)
}

/// A stack's stored `target_expression`, compiled.
pub fn target_expression(source: &str) -> Result<TargetExpression, String> {
    static CACHE: Cache<TargetExpression> = OnceLock::new();
    cached(&CACHE, source, TargetExpression::parse)
}

/// A generator's stored reach, compiled.
pub fn reach(source: &str) -> Result<ReachExpression, String> {
    static CACHE: Cache<ReachExpression> = OnceLock::new();
    cached(&CACHE, source, ReachExpression::parse)
}
