//! `/ferry-backend`'s `dma-ranges`: where the backend's own memory is for a DMA
//! master. Ferry maps the backend's RAM at guest addresses that differ from the host
//! physical addresses a passthrough device uses (there is no SMMU), so the buffers
//! the backend hands its physical disk are translated through these ranges.

/// Most ranges kept (one per memory region of the partition).
pub const MAX_RANGES: usize = 8;

/// One range: guest address, the bus (host physical) address behind it, size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaRange {
    /// First guest (backend) address.
    pub guest: u64,
    /// The address a DMA master uses for it.
    pub bus: u64,
    /// Bytes.
    pub size: u64,
}

/// The backend's DMA translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaRanges {
    ranges: [DmaRange; MAX_RANGES],
    len: usize,
}

impl DmaRanges {
    /// No ranges: nothing translates.
    pub const fn new() -> Self {
        DmaRanges {
            ranges: [DmaRange {
                guest: 0,
                bus: 0,
                size: 0,
            }; MAX_RANGES],
            len: 0,
        }
    }

    /// Parses `<guest(2) bus(2) size(2)>...` (big-endian cells); `None` if the
    /// length is not whole triples, there are more than [`MAX_RANGES`], a range is
    /// empty or wraps.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.is_empty() || !value.len().is_multiple_of(24) || value.len() / 24 > MAX_RANGES {
            return None;
        }
        let mut out = DmaRanges::new();
        for t in value.chunks_exact(24) {
            let cell =
                |i: usize| u64::from_be_bytes(t[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let r = DmaRange {
                guest: cell(0),
                bus: cell(1),
                size: cell(2),
            };
            if r.size == 0
                || r.guest.checked_add(r.size).is_none()
                || r.bus.checked_add(r.size).is_none()
            {
                return None;
            }
            out.ranges[out.len] = r;
            out.len += 1;
        }
        Some(out)
    }

    /// Adds `r`; `false` (and nothing added) when full.
    pub fn push(&mut self, r: DmaRange) -> bool {
        if self.len == MAX_RANGES {
            return false;
        }
        self.ranges[self.len] = r;
        self.len += 1;
        true
    }

    /// The ranges.
    pub fn iter(&self) -> impl Iterator<Item = &DmaRange> {
        self.ranges[..self.len].iter()
    }

    /// The bus address of `[addr, addr + len)`, which must lie inside one range.
    pub fn to_bus(&self, addr: u64, len: u64) -> Option<u64> {
        let end = addr.checked_add(len)?;
        self.iter()
            .find(|r| addr >= r.guest && end <= r.guest + r.size)
            .map(|r| r.bus + (addr - r.guest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(g: u64, b: u64, s: u64) -> Vec<u8> {
        [g, b, s].iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn translates_inside_one_range_only() {
        let mut v = triple(0x4000_0000, 0x4800_0000, 0x80_0000);
        v.extend(triple(0x5000_0000, 0x9000_0000, 0x1000));
        let d = DmaRanges::parse(&v).unwrap();
        assert_eq!(d.to_bus(0x4000_0000, 16), Some(0x4800_0000));
        assert_eq!(d.to_bus(0x407f_fff0, 16), Some(0x487f_fff0));
        assert_eq!(d.to_bus(0x407f_fff8, 16), None, "crosses the end");
        assert_eq!(d.to_bus(0x5000_0800, 0x800), Some(0x9000_0800));
        assert_eq!(d.to_bus(0x3fff_ffff, 1), None);
        assert_eq!(d.to_bus(u64::MAX, 2), None, "wraps");
    }

    #[test]
    fn refuses_malformed_values() {
        assert_eq!(DmaRanges::parse(&[]), None);
        assert_eq!(DmaRanges::parse(&[0; 23]), None);
        assert_eq!(DmaRanges::parse(&triple(0x4000_0000, 0, 0)), None, "empty");
        assert_eq!(DmaRanges::parse(&triple(u64::MAX, 0, 2)), None, "wraps");
        let nine: Vec<u8> = (0..9)
            .flat_map(|i| triple(i << 32, i << 32, 0x1000))
            .collect();
        assert_eq!(DmaRanges::parse(&nine), None, "too many");
    }
}
