//! [`Region`]: a physical (or guest-physical) address range, the unit of every
//! memory and MMIO layout the config, the host device tree and EL2 describe.

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// A region from its base and size.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte, saturating at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    /// Whether the two regions share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::Region;

    #[test]
    fn bounds_and_overlap() {
        let r = Region::new(0x4000_0000, 0x1000);
        assert_eq!(r.end(), 0x4000_1000);
        assert!(r.contains(0x4000_0000) && r.contains(0x4000_0fff));
        assert!(!r.contains(0x4000_1000) && !r.contains(0x3fff_ffff));
        assert!(r.overlaps(&Region::new(0x4000_0fff, 1)));
        assert!(!r.overlaps(&Region::new(0x4000_1000, 0x1000)), "adjacent");
        assert_eq!(Region::default(), Region::new(0, 0));
    }

    #[test]
    fn end_saturates() {
        let top = Region::new(u64::MAX - 1, 16);
        assert_eq!(top.end(), u64::MAX);
        assert!(top.contains(u64::MAX - 1));
        assert!(top.overlaps(&Region::new(u64::MAX - 1, 1)));
    }
}
