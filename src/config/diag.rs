//! Diagnostics in compiler form: `FILE:LINE:COL: error: KEY: message (allowed: …)`.
//!
//! This module owns the output contract of `dagw check` (DESIGN.md §3) and the
//! conversion from the byte offsets that `toml_edit` reports to the 1-based
//! line/column pairs an operator's editor understands.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// 1-based line of the offending value (or key, or table header).
    pub line: usize,
    /// 1-based column, counted in characters (not bytes) as editors do.
    pub col: usize,
    /// Dotted path of the offending key, e.g. `gateway[2].mac`, `peer.interval`.
    pub key: String,
    pub message: String,
    /// What would have been accepted, when that can be said briefly.
    pub allowed: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: error: KEY: message (allowed: …)`; the parenthesis is
    /// omitted when there is nothing to say about allowed values.
    pub fn render(&self, file: &str) -> String {
        let mut s = format!(
            "{}:{}:{}: {}: {}: {}",
            file, self.line, self.col, self.severity, self.key, self.message
        );
        if let Some(allowed) = &self.allowed {
            s.push_str(" (allowed: ");
            s.push_str(allowed);
            s.push(')');
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    /// Same as [`Diagnostic::render`] without the file name prefix, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}: {}",
            self.line, self.col, self.severity, self.key, self.message
        )?;
        if let Some(allowed) = &self.allowed {
            write!(f, " (allowed: {allowed})")?;
        }
        Ok(())
    }
}

/// Renders every diagnostic, one per line (each line newline-terminated).
pub fn render_all(diags: &[Diagnostic], file: &str) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(file));
        out.push('\n');
    }
    out
}

/// Maps byte offsets to (line, column). Built once per file so that a file
/// with thousands of gateways does not rescan the text for every diagnostic.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based (line, column). Offsets past the end or inside a UTF-8
    /// sequence are clamped rather than trusted: they come from a parser.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_the_compiler_form() {
        let d = Diagnostic {
            severity: Severity::Error,
            line: 3,
            col: 7,
            key: "gateway[0].mac".into(),
            message: "bad".into(),
            allowed: Some("unicast".into()),
        };
        assert_eq!(
            d.render("f.toml"),
            "f.toml:3:7: error: gateway[0].mac: bad (allowed: unicast)"
        );
        let w = Diagnostic {
            severity: Severity::Warning,
            allowed: None,
            ..d
        };
        assert_eq!(
            w.render("f.toml"),
            "f.toml:3:7: warning: gateway[0].mac: bad"
        );
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\nçd = 1\n\nx";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(1), (1, 2));
        assert_eq!(idx.position(2), (1, 3));
        assert_eq!(idx.position(3), (2, 1));
        // 'd' follows the two-byte 'ç'.
        assert_eq!(idx.position(5), (2, 2));
        // Inside 'ç': clamped back to its start.
        assert_eq!(idx.position(4), (2, 1));
        assert_eq!(idx.position(text.len() - 1), (4, 1));
        assert_eq!(idx.position(usize::MAX), (4, 2));
        assert_eq!(LineIndex::new("").position(5), (1, 1));
    }
}
