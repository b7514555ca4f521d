//! Functions the targeting environment defines itself: `matches`, compiling each pattern once
//! per process and within a size limit (the standard one compiles it on every call).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cel::ExecutionError;
use cel::common::types::{CelBool, CelString};
use regex::{Regex, RegexBuilder};

/// Most compiled regular expressions kept; the cache starts over beyond.
const REGEX_CACHE: usize = 1000;
/// Largest compiled form of one regular expression (bounds hostile patterns).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `matches`, compiling each pattern once per process and within a size limit.
pub(super) fn matches(
    this: &CelString<'_>,
    pattern: &CelString<'_>,
) -> Result<CelBool, ExecutionError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let found = cache
        .lock()
        .ok()
        .and_then(|c| c.get(pattern.inner()).cloned());
    let regex = match found {
        Some(regex) => regex,
        None => {
            let compiled = RegexBuilder::new(pattern.inner())
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| ExecutionError::FunctionError {
                    function: "matches".into(),
                    message: format!("not a usable regular expression: {e}"),
                })?;
            if let Ok(mut c) = cache.lock() {
                if c.len() >= REGEX_CACHE {
                    c.clear();
                }
                c.insert(pattern.inner().to_string(), compiled.clone());
            }
            compiled
        }
    };
    Ok(CelBool::from(regex.is_match(this.inner())))
}
