//! A 4 KiB-granule translation-table builder over a caller-supplied pool of tables.
//!
//! It knows the walk (levels, indices, table/block/page descriptors), not the
//! meaning of attributes: callers pass the leaf attribute bits of their regime (EL2
//! stage 1 from [`super::el2`]; stage 2 later). It runs on the host, so its
//! decisions are unit-tested; on the target the pool is a static in `.bss` and
//! table addresses are physical (Ferry is identity-mapped).
//!
//! Mapping fills holes only: where a range is already mapped (by an earlier call),
//! the earlier mapping stays. So callers map what needs special permissions first
//! (the image's text, read-only data) and wide ranges (all RAM) after.

use super::PAGE_SIZE;

/// One translation table: 512 descriptors, page-aligned.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct Table(pub [u64; 512]);

const _: () = assert!(core::mem::size_of::<Table>() == 4096);

impl Table {
    /// A table of invalid descriptors.
    pub const EMPTY: Table = Table([0; 512]);
}

/// Bit 0 of a descriptor: valid.
const VALID: u64 = 1 << 0;
/// Bit 1: table (levels 0-2) or page (level 3); clear for a block.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Output address, bits 47:12.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// The bits a caller's leaf attributes may use: everything but type and address.
pub const ATTRIBUTE_MASK: u64 = !(ADDRESS_MASK | VALID | TABLE_OR_PAGE);

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The pool has no free table left.
    OutOfTables,
    /// An address or size is not a multiple of the 4 KiB page size.
    Misaligned,
    /// The range does not fit in the address space the tables translate.
    OutOfRange,
    /// The leaf attributes touch the descriptor's type or address bits.
    BadAttributes,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MapError::OutOfTables => "no free translation table left in the pool",
            MapError::Misaligned => "address or size is not 4 KiB-aligned",
            MapError::OutOfRange => "range lies outside the translated address space",
            MapError::BadAttributes => "leaf attributes overlap descriptor type or address bits",
        })
    }
}

/// Bytes mapped by one descriptor at `level` (0..=3).
const fn level_size(level: usize) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// A set of translation tables being built in a pool.
pub struct Tables<'a> {
    pool: &'a mut [Table],
    /// Physical address of `pool[0]`.
    pool_pa: u64,
    /// How many tables of the pool are in use; `pool[0]` is the root.
    used: usize,
    /// Input address size in bits.
    va_bits: u32,
    /// Level of the root table (0 or 1 with a 4 KiB granule).
    root_level: usize,
}

impl<'a> Tables<'a> {
    /// Starts tables translating `va_bits` of input address (25..=48) in `pool`,
    /// whose first table sits at physical address `pool_pa`. The root is `pool[0]`.
    pub fn new(pool: &'a mut [Table], pool_pa: u64, va_bits: u32) -> Result<Self, MapError> {
        if !(25..=48).contains(&va_bits) {
            return Err(MapError::OutOfRange);
        }
        if !pool_pa.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        let root = pool.first_mut().ok_or(MapError::OutOfTables)?;
        *root = Table::EMPTY;
        let root_level = if va_bits > 39 {
            0
        } else if va_bits > 30 {
            1
        } else {
            2
        };
        Ok(Tables {
            pool,
            pool_pa,
            used: 1,
            va_bits,
            root_level,
        })
    }

    /// Physical address of the root table (for TTBR0_EL2 or VTTBR_EL2).
    pub fn root_pa(&self) -> u64 {
        self.pool_pa
    }

    /// The level the walk starts at.
    pub fn root_level(&self) -> usize {
        self.root_level
    }

    /// How many tables of the pool are in use.
    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with leaf attributes `attrs`,
    /// using the largest blocks alignment allows. Parts already mapped keep their
    /// earlier mapping.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, attrs: u64) -> Result<(), MapError> {
        if attrs & !ATTRIBUTE_MASK != 0 {
            return Err(MapError::BadAttributes);
        }
        if !va.is_multiple_of(PAGE_SIZE)
            || !pa.is_multiple_of(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Misaligned);
        }
        let limit = 1u64 << self.va_bits;
        let end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > limit
            || pa
                .checked_add(size)
                .is_none_or(|e| e > ADDRESS_MASK + PAGE_SIZE)
        {
            return Err(MapError::OutOfRange);
        }
        self.map_in(0, self.root_level, va, pa, size, attrs)
    }

    fn map_in(
        &mut self,
        table: usize,
        level: usize,
        mut va: u64,
        mut pa: u64,
        mut size: u64,
        attrs: u64,
    ) -> Result<(), MapError> {
        let span = level_size(level);
        while size > 0 {
            let index = ((va / span) % 512) as usize;
            let chunk = (span - va % span).min(size);
            let entry = self.pool[table].0[index];
            if entry & VALID != 0 {
                if level < 3 && entry & TABLE_OR_PAGE != 0 {
                    let child = self.table_index(entry);
                    self.map_in(child, level + 1, va, pa, chunk, attrs)?;
                }
                // Otherwise a leaf already maps this chunk: the earlier mapping wins.
            } else if level >= 1 && chunk == span && pa.is_multiple_of(span) {
                let kind = if level == 3 {
                    VALID | TABLE_OR_PAGE
                } else {
                    VALID
                };
                self.pool[table].0[index] = (pa & ADDRESS_MASK) | attrs | kind;
            } else {
                let child = self.allocate()?;
                let child_pa = self.pool_pa + child as u64 * PAGE_SIZE;
                self.pool[table].0[index] = child_pa | VALID | TABLE_OR_PAGE;
                self.map_in(child, level + 1, va, pa, chunk, attrs)?;
            }
            va += chunk;
            pa += chunk;
            size -= chunk;
        }
        Ok(())
    }

    fn allocate(&mut self) -> Result<usize, MapError> {
        let index = self.used;
        let table = self.pool.get_mut(index).ok_or(MapError::OutOfTables)?;
        *table = Table::EMPTY;
        self.used += 1;
        Ok(index)
    }

    fn table_index(&self, descriptor: u64) -> usize {
        ((descriptor & ADDRESS_MASK) - self.pool_pa) as usize / PAGE_SIZE as usize
    }

    /// Walks the tables for `va`: the output address, the leaf's attribute bits and
    /// the level of the leaf, or `None` if unmapped.
    pub fn translate(&self, va: u64) -> Option<(u64, u64, usize)> {
        if va >= 1u64 << self.va_bits {
            return None;
        }
        let mut table = 0;
        let mut level = self.root_level;
        loop {
            let span = level_size(level);
            let entry = self.pool[table].0[((va / span) % 512) as usize];
            if entry & VALID == 0 {
                return None;
            }
            if level < 3 && entry & TABLE_OR_PAGE != 0 {
                table = self.table_index(entry);
                level += 1;
                continue;
            }
            let pa = (entry & ADDRESS_MASK & !(span - 1)) | (va % span);
            return Some((pa, entry & ATTRIBUTE_MASK, level));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x4000_0000;
    const ATTR_A: u64 = 1 << 10 | 1 << 2;
    const ATTR_B: u64 = 1 << 10 | 1 << 54;

    fn pool(n: usize) -> Vec<Table> {
        vec![Table::EMPTY; n]
    }

    #[test]
    fn root_level_follows_address_size() {
        let mut p = pool(1);
        assert_eq!(Tables::new(&mut p, BASE, 48).unwrap().root_level(), 0);
        assert_eq!(Tables::new(&mut p, BASE, 40).unwrap().root_level(), 0);
        assert_eq!(Tables::new(&mut p, BASE, 39).unwrap().root_level(), 1);
        assert_eq!(Tables::new(&mut p, BASE, 32).unwrap().root_level(), 1);
        assert_eq!(
            Tables::new(&mut p, BASE, 49).err(),
            Some(MapError::OutOfRange)
        );
        assert_eq!(
            Tables::new(&mut p, BASE + 8, 40).err(),
            Some(MapError::Misaligned)
        );
    }

    #[test]
    fn uses_gigabyte_blocks_when_aligned() {
        let mut p = pool(4);
        let mut t = Tables::new(&mut p, BASE, 39).unwrap();
        t.map(0x4000_0000, 0x4000_0000, 2 << 30, ATTR_A).unwrap();
        assert_eq!(t.tables_used(), 1, "two 1 GiB blocks fit in the root");
        assert_eq!(t.translate(0x4000_1234), Some((0x4000_1234, ATTR_A, 1)));
        assert_eq!(t.translate(0xbfff_ffff), Some((0xbfff_ffff, ATTR_A, 1)));
        assert_eq!(t.translate(0xc000_0000), None);
        assert_eq!(t.translate(0x3fff_ffff), None);
    }

    #[test]
    fn splits_unaligned_ranges_into_blocks_and_pages() {
        let mut p = pool(8);
        let mut t = Tables::new(&mut p, BASE, 40).unwrap();
        // Pages up to 2 MiB, one 2 MiB block, then 3 pages.
        t.map(0x4000_1000, 0x4000_1000, 0x40_2000, ATTR_A).unwrap();
        assert_eq!(t.translate(0x4000_1000).unwrap().2, 3);
        assert_eq!(
            t.translate(0x4020_0000).unwrap().2,
            2,
            "2 MiB block where aligned"
        );
        assert_eq!(t.translate(0x4040_2fff).unwrap().2, 3);
        assert_eq!(t.translate(0x4040_3000), None);
        assert_eq!(t.translate(0x4000_0fff), None);
    }

    #[test]
    fn maps_to_a_different_output_address() {
        let mut p = pool(8);
        let mut t = Tables::new(&mut p, BASE, 40).unwrap();
        t.map(0x8000_0000, 0x1_2345_6000, 0x3000, ATTR_B).unwrap();
        assert_eq!(t.translate(0x8000_2abc), Some((0x1_2345_8abc, ATTR_B, 3)));
    }

    #[test]
    fn earlier_mappings_win() {
        let mut p = pool(8);
        let mut t = Tables::new(&mut p, BASE, 40).unwrap();
        t.map(0x4020_0000, 0x4020_0000, 0x4000, ATTR_A).unwrap();
        t.map(0x4000_0000, 0x4000_0000, 1 << 30, ATTR_B).unwrap();
        assert_eq!(t.translate(0x4020_0000).unwrap().1, ATTR_A);
        assert_eq!(t.translate(0x4020_3fff).unwrap().1, ATTR_A);
        assert_eq!(t.translate(0x4020_4000), Some((0x4020_4000, ATTR_B, 3)));
        assert_eq!(t.translate(0x4060_0000), Some((0x4060_0000, ATTR_B, 2)));
        assert_eq!(t.translate(0x7fff_ffff).unwrap().1, ATTR_B);
    }

    #[test]
    fn rejects_bad_requests() {
        let mut p = pool(2);
        let mut t = Tables::new(&mut p, BASE, 32).unwrap();
        assert_eq!(
            t.map(0x1001, 0x1000, 0x1000, ATTR_A),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            t.map(0x1000, 0x1000, 0x800, ATTR_A),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            t.map(0xffff_f000, 0, 0x2000, ATTR_A),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            t.map(0x1000, 0x1000, 0x1000, 0b11),
            Err(MapError::BadAttributes)
        );
        assert_eq!(
            t.map(0x1000, 0x1000, 0x1000, 1 << 20),
            Err(MapError::BadAttributes)
        );
    }

    #[test]
    fn reports_pool_exhaustion() {
        let mut p = pool(2);
        let mut t = Tables::new(&mut p, BASE, 39).unwrap();
        t.map(0x1000, 0x1000, 0x1000, ATTR_A).unwrap_err();
        assert_eq!(
            t.map(0x1000, 0x1000, 0x1000, ATTR_A),
            Err(MapError::OutOfTables)
        );
    }

    #[test]
    fn random_maps_translate_back() {
        // Deterministic xorshift: map random page runs, then check every page.
        let mut p = pool(64);
        let mut t = Tables::new(&mut p, BASE, 36).unwrap();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut expected = std::collections::BTreeMap::new();
        for _ in 0..40 {
            let page = next() % (1 << 12);
            let pages = 1 + next() % 600;
            let va = (page << 12) + 0x1000_0000;
            let pa = va ^ 0x8000_0000;
            t.map(va, pa, pages << 12, ATTR_A).unwrap();
            for i in 0..pages {
                expected.entry(va + (i << 12)).or_insert(pa + (i << 12));
            }
        }
        for (va, pa) in expected {
            assert_eq!(t.translate(va).map(|x| x.0), Some(pa), "va {va:#x}");
        }
    }
}
