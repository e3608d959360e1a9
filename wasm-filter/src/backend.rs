//! The two services the filter chooses between, as headers and metric
//! labels name them.

/// The two services the filter chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Python,
    Rust,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Python, Backend::Rust];

    /// The value of the routing header and of every `backend` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Python => "python",
            Backend::Rust => "rust",
        }
    }

    pub fn other(self) -> Backend {
        match self {
            Backend::Python => Backend::Rust,
            Backend::Rust => Backend::Python,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Backend::Python => 0,
            Backend::Rust => 1,
        }
    }

    /// Parses a header value (`python` / `rust`, any case, surrounding spaces ignored).
    pub fn parse(value: &[u8]) -> Option<Backend> {
        let v = value.trim_ascii();
        if v.eq_ignore_ascii_case(b"python") {
            Some(Backend::Python)
        } else if v.eq_ignore_ascii_case(b"rust") {
            Some(Backend::Rust)
        } else {
            None
        }
    }
}
