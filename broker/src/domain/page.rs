//! Paging of lists: a checked `LIMIT`/`OFFSET` window and the page built from it.

use brokkr_types::resources::Page;

/// `LIMIT`/`OFFSET` of a list query, already checked.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: u32,
    pub offset: u64,
}

impl Window {
    /// Fetches one row more than asked, to know whether another page follows.
    pub fn probe_limit(self) -> i64 {
        i64::from(self.limit) + 1
    }

    pub fn offset(self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }

    /// Cuts the probe row off and builds the page.
    pub fn page<T>(self, mut items: Vec<T>) -> Page<T> {
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        Page {
            next_offset: more.then(|| self.offset + u64::from(self.limit)),
            items,
            limit: self.limit,
            offset: self.offset,
        }
    }
}
