//! [`ConfigError`] and the helpers that format its messages.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One problem with a config: where (node path and property) and what.
///
/// Messages are self-contained (they name every node involved) and do not
/// depend on who produced them, so `ferry check` and Ferry's boot log agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Node path, e.g. `/partitions/partition@1`; `config` for a problem with
    /// the blob itself (not a device tree, truncated, ...).
    pub path: String,
    /// The property, if the problem is with one.
    pub property: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path` (and `property`, if any).
    pub fn new(path: &str, property: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            property: property.map(ToString::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    /// `{path}: {property}: {message}`, or `{path}: {message}` without a property.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.property {
            Some(p) => write!(f, "{}: {}: {}", self.path, p, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Problems found so far.
#[derive(Default)]
pub(crate) struct Errors(pub Vec<ConfigError>);

impl Errors {
    /// Records a problem with `property` of `path`.
    pub fn prop(&mut self, path: &str, property: &str, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, Some(property), message));
    }

    /// Records a problem with node `path` itself.
    pub fn node(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, None, message));
    }
}

/// A half-open range `[base, base + size)` in hex; the end is computed without
/// wrapping (it may exceed 64 bits).
pub(crate) struct Range(pub u64, pub u64);

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = u128::from(self.0) + u128::from(self.1);
        write!(f, "[{:#x}, {:#x})", self.0, end)
    }
}

impl From<ferry_abi::Region> for Range {
    fn from(r: ferry_abi::Region) -> Self {
        Range(r.base, r.size)
    }
}

/// A byte count as `0x1234 bytes`.
pub(crate) struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} bytes", self.0)
    }
}

/// A MAC address as `02:46:52:59:00:0a`.
pub(crate) struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}
