//! Property values: cells, addresses, regions and strings, decoded with every
//! malformed value reported (and `None` returned) instead of guessed at.
//!
//! Every address and size is 2 cells (the root's `#address-cells` and
//! `#size-cells` are 2); other numbers are 1 cell.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ferry_abi::Region;

use crate::error::Errors;
use crate::model::{GuestRegion, Transport};
use crate::tree::Node;

/// The big-endian cell `i` of `v` (caller checked the length).
fn cell(v: &[u8], i: usize) -> u32 {
    let at = i * 4;
    v.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// The 2-cell number starting at cell `i`.
fn cells2(v: &[u8], i: usize) -> u64 {
    (u64::from(cell(v, i)) << 32) | u64::from(cell(v, i + 1))
}

/// Decodes properties of one node, recording problems against its path.
pub(crate) struct Props<'n, 'a, 'e> {
    pub node: &'n Node<'a>,
    pub errs: &'e mut Errors,
}

impl<'a> Props<'_, 'a, '_> {
    fn bad(&mut self, name: &str, what: &str, v: &[u8]) {
        let msg = format!("must be {what} (found {} bytes)", v.len());
        self.errs.prop(&self.node.path, name, msg);
    }

    /// The raw value of a required property (records "is missing").
    pub fn required(&mut self, name: &str) -> Option<&'a [u8]> {
        let v = self.node.prop(name);
        if v.is_none() {
            self.errs.prop(&self.node.path, name, "is missing");
        }
        v
    }

    /// Decodes optional property `name` with `f`: `Some(None)` when absent,
    /// `None` when malformed (recorded).
    pub fn optional<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self, &str, &'a [u8]) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.node.prop(name) {
            None => Some(None),
            Some(v) => f(self, name, v).map(Some),
        }
    }

    /// Decodes required property `name` with `f` (records "is missing").
    pub fn require<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self, &str, &'a [u8]) -> Option<T>,
    ) -> Option<T> {
        let v = self.required(name)?;
        f(self, name, v)
    }

    /// A boolean property (`name;`): present with an empty value.
    pub fn flag(&mut self, name: &str, v: &[u8]) -> Option<bool> {
        if !v.is_empty() {
            self.bad(name, &format!("empty (a flag: write `{name};`)"), v);
            return None;
        }
        Some(true)
    }

    /// Exactly one 32-bit cell.
    pub fn u32(&mut self, name: &str, v: &[u8]) -> Option<u32> {
        if v.len() != 4 {
            self.bad(name, "one 32-bit cell", v);
            return None;
        }
        Some(cell(v, 0))
    }

    /// Any number of 32-bit cells.
    pub fn u32_list(&mut self, name: &str, v: &[u8]) -> Option<Vec<u32>> {
        if !v.len().is_multiple_of(4) {
            self.bad(name, "a list of 32-bit cells", v);
            return None;
        }
        Some((0..v.len() / 4).map(|i| cell(v, i)).collect())
    }

    /// Exactly one 2-cell address.
    pub fn address(&mut self, name: &str, v: &[u8]) -> Option<u64> {
        if v.len() != 8 {
            self.bad(name, "one address of 2 cells", v);
            return None;
        }
        Some(cells2(v, 0))
    }

    /// Any number of (address, size) pairs of 2 + 2 cells.
    pub fn regions(&mut self, name: &str, v: &[u8]) -> Option<Vec<Region>> {
        if !v.len().is_multiple_of(16) {
            self.bad(name, "(address, size) pairs of 2 + 2 cells", v);
            return None;
        }
        Some(
            (0..v.len() / 16)
                .map(|i| Region::new(cells2(v, i * 4), cells2(v, i * 4 + 2)))
                .collect(),
        )
    }

    /// Exactly one (address, size) pair of 2 + 2 cells.
    pub fn region(&mut self, name: &str, v: &[u8]) -> Option<Region> {
        if v.len() != 16 {
            self.bad(name, "one (address, size) pair of 2 + 2 cells", v);
            return None;
        }
        Some(Region::new(cells2(v, 0), cells2(v, 2)))
    }

    /// Any number of (guest address, host address, size) triples of 2 + 2 + 2 cells.
    pub fn guest_regions(&mut self, name: &str, v: &[u8]) -> Option<Vec<GuestRegion>> {
        if !v.len().is_multiple_of(24) {
            let what = "(guest address, host address, size) triples of 2 + 2 + 2 cells";
            self.bad(name, what, v);
            return None;
        }
        Some(
            (0..v.len() / 24)
                .map(|i| GuestRegion {
                    ipa: cells2(v, i * 6),
                    pa: cells2(v, i * 6 + 2),
                    size: cells2(v, i * 6 + 4),
                })
                .collect(),
        )
    }

    /// A physical transport (a blk device's `storage`, a backend's
    /// `net-uplink`): one 2-cell address and one 1-cell SPI.
    pub fn transport(&mut self, name: &str, v: &[u8]) -> Option<Transport> {
        if v.len() != 12 {
            self.bad(name, "(address, SPI) of 2 + 1 cells", v);
            return None;
        }
        Some(Transport {
            address: cells2(v, 0),
            spi: cell(v, 2),
        })
    }

    /// A MAC address: a byte string of exactly 6 bytes (`[02 00 00 00 00 01]`).
    pub fn mac(&mut self, name: &str, v: &[u8]) -> Option<[u8; 6]> {
        let mac = <[u8; 6]>::try_from(v).ok();
        if mac.is_none() {
            self.bad(
                name,
                "a MAC address of 6 bytes (a byte string: [02 00 00 00 00 01])",
                v,
            );
        }
        mac
    }

    /// Any number of 3-cell GIC interrupt specifiers (type, number, flags).
    pub fn interrupts(&mut self, name: &str, v: &[u8]) -> Option<Vec<[u32; 3]>> {
        if !v.len().is_multiple_of(12) {
            self.bad(name, "GIC specifiers of 3 cells (type, number, flags)", v);
            return None;
        }
        Some(
            (0..v.len() / 12)
                .map(|i| [cell(v, i * 3), cell(v, i * 3 + 1), cell(v, i * 3 + 2)])
                .collect(),
        )
    }

    /// One NUL-terminated UTF-8 string.
    pub fn string(&mut self, name: &str, v: &[u8]) -> Option<String> {
        let s = match v.split_last() {
            Some((0, body)) if !body.contains(&0) => core::str::from_utf8(body).ok(),
            _ => None,
        };
        if s.is_none() {
            self.errs.prop(
                &self.node.path,
                name,
                "must be one NUL-terminated UTF-8 string",
            );
        }
        s.map(String::from)
    }

    /// A list of NUL-terminated UTF-8 strings (at least one).
    pub fn string_list(&mut self, name: &str, v: &[u8]) -> Option<Vec<String>> {
        let list = v.strip_suffix(&[0]).and_then(|body| {
            body.split(|&b| b == 0)
                .map(|s| core::str::from_utf8(s).ok().map(String::from))
                .collect::<Option<Vec<_>>>()
        });
        if list.is_none() {
            self.errs.prop(
                &self.node.path,
                name,
                "must be a list of NUL-terminated UTF-8 strings",
            );
        }
        list
    }

    /// Records an "unknown property" problem for every property not in `known`
    /// (`phandle` and `linux,phandle` are always allowed).
    pub fn only(&mut self, known: &[&str]) {
        for (name, _) in &self.node.props {
            if !known.contains(name) && *name != "phandle" && *name != "linux,phandle" {
                self.errs.prop(&self.node.path, name, "unknown property");
            }
        }
    }
}
