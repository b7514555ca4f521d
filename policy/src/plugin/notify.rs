//! Calling a notifier: one event in, the request to send (or nothing) out. What the plugin
//! returns is bounded and checked before the broker signs and sends it: the body and headers
//! within the output limit, at most [`MAX_HEADERS`] headers, none of which may replace the
//! signing headers or framing.

use super::host::{Instance, PluginError, PluginHost, PluginKind};
use super::{Event, Outgoing, Plugin};

pub use brokkr_types::webhooks::{MAX_HEADERS, header_allowed};

impl PluginHost {
    /// The request a notifier makes of `event`; `None` drops the event.
    pub fn notify(
        &self,
        plugin: &Plugin,
        event: &Event,
        config: &str,
    ) -> Result<Option<Outgoing>, PluginError> {
        let (mut store, instance) = self.instantiate(plugin)?;
        let Instance::Notifier(notifier) = &instance else {
            return Err(PluginError::WrongKind {
                wanted: PluginKind::Notifier,
                actual: plugin.kind(),
            });
        };
        let answer = notifier
            .call_notify(&mut store, event, config)
            .map_err(|e| self.classify(&e, &store))?;
        let outgoing =
            answer.map_err(|message| PluginError::Guest(message.chars().take(1000).collect()))?;
        if let Some(outgoing) = &outgoing {
            self.check_outgoing(outgoing)?;
        }
        Ok(outgoing)
    }

    fn check_outgoing(&self, outgoing: &Outgoing) -> Result<(), PluginError> {
        let size = outgoing.body.len()
            + outgoing.content_type.len()
            + outgoing
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len())
                .sum::<usize>();
        let max = self.limits().max_output_bytes;
        if size > max {
            return Err(PluginError::Output(size, max));
        }
        if outgoing.headers.len() > MAX_HEADERS {
            return Err(PluginError::Guest(format!(
                "the plugin returned {} headers; at most {MAX_HEADERS} are allowed",
                outgoing.headers.len()
            )));
        }
        let printable = |text: &str| text.chars().all(|c| !c.is_control() || c == '\t');
        if let Some(bad) = outgoing
            .headers
            .iter()
            .find(|h| !header_allowed(&h.name) || !printable(&h.value))
        {
            return Err(PluginError::Guest(format!(
                "the plugin returned a header it may not set: {:?}",
                bad.name
            )));
        }
        if outgoing.content_type.is_empty() || !printable(&outgoing.content_type) {
            return Err(PluginError::Guest(
                "the plugin returned an empty or unprintable content type".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_headers_and_framing_are_reserved() {
        for reserved in ["webhook-signature", "Content-Type", "HOST", "webhook-id"] {
            assert!(!header_allowed(reserved), "{reserved}");
        }
        for fine in ["x-team", "Authorization", "X_Custom"] {
            assert!(header_allowed(fine), "{fine}");
        }
        assert!(!header_allowed("bad header"));
        assert!(!header_allowed(""));
    }
}
