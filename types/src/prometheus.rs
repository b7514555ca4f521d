//! The Prometheus text format, for the few unlabelled metrics Brokkr's processes expose.

/// One metric: name, `counter` or `gauge`, help text, value.
pub type Row<'a> = (&'a str, &'a str, &'a str, i64);

/// Renders metrics in the Prometheus text exposition format.
pub fn render(rows: &[Row<'_>]) -> String {
    rows.iter()
        .map(|(name, kind, help, value)| {
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_format() {
        let text = super::render(&[("brokkr_x_total", "counter", "Things.", 3)]);
        assert_eq!(
            text,
            "# HELP brokkr_x_total Things.\n# TYPE brokkr_x_total counter\nbrokkr_x_total 3\n"
        );
    }
}
