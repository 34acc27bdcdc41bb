//! What Ferry maps for itself at EL2, and with which permissions.
//!
//! The EL2 map is an identity map of: the image, section by section (code
//! read+execute, constants read-only, data read+write), every RAM region of the
//! host device tree (read+write, never executable; guests are loaded through it
//! later), and the device registers Ferry drives (console, GIC) as device memory.
//! The image is mapped first so its permissions win over the RAM mapping around it
//! (the table builder fills holes only). Nothing else is mapped: a stray access
//! faults.

use ferry_boot::layout::ImageLayout;
use ferry_boot::mmu::el2::Memory;
use ferry_boot::mmu::{MapError, PAGE_SIZE, Tables};
use ferry_platform::Region;

/// The most mappings a plan holds.
pub const MAX_MAPPINGS: usize = 32;

/// One identity mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The range (page-aligned).
    pub region: Region,
    /// What it is.
    pub memory: Memory,
}

/// The EL2 map, in the order it must be applied.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    items: [Mapping; MAX_MAPPINGS],
    count: usize,
}

/// Why no EL2 map could be planned or built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The image does not lie inside any RAM region of the device tree.
    ImageOutsideRam {
        /// Image start.
        start: u64,
        /// Image end.
        end: u64,
    },
    /// A device's registers overlap RAM.
    DeviceInRam {
        /// The device region.
        device: Region,
    },
    /// More regions than [`MAX_MAPPINGS`].
    TooManyMappings,
    /// The table builder refused a mapping.
    Map {
        /// The mapping.
        region: Region,
        /// Why.
        error: MapError,
    },
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlanError::ImageOutsideRam { start, end } => write!(
                f,
                "Ferry's image [{start:#x}, {end:#x}) is not inside any RAM region of the host device tree"
            ),
            PlanError::DeviceInRam { device } => write!(
                f,
                "device registers [{:#x}, {:#x}) overlap RAM in the host device tree",
                device.base,
                device.end()
            ),
            PlanError::TooManyMappings => write!(f, "more than {MAX_MAPPINGS} EL2 mappings"),
            PlanError::Map { region, error } => write!(
                f,
                "cannot map [{:#x}, {:#x}) at EL2: {error}",
                region.base,
                region.end()
            ),
        }
    }
}

const fn align_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

const fn align_up(x: u64) -> u64 {
    x.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

impl Plan {
    fn push(&mut self, region: Region, memory: Memory) -> Result<(), PlanError> {
        if region.size == 0 {
            return Ok(());
        }
        let slot = self
            .items
            .get_mut(self.count)
            .ok_or(PlanError::TooManyMappings)?;
        *slot = Mapping { region, memory };
        self.count += 1;
        Ok(())
    }

    /// Plans the map for an image at `image`, host `ram` and `devices`.
    pub fn new(image: &ImageLayout, ram: &[Region], devices: &[Region]) -> Result<Plan, PlanError> {
        let inside = |r: &Region| r.base <= image.start && image.end <= r.end();
        if !ram.iter().any(inside) {
            return Err(PlanError::ImageOutsideRam {
                start: image.start,
                end: image.end,
            });
        }
        let mut plan = Plan {
            items: [Mapping {
                region: Region::default(),
                memory: Memory::Device,
            }; MAX_MAPPINGS],
            count: 0,
        };
        plan.push(
            Region::new(image.start, image.text_end - image.start),
            Memory::Text,
        )?;
        plan.push(
            Region::new(image.text_end, image.rodata_end - image.text_end),
            Memory::ReadOnly,
        )?;
        plan.push(
            Region::new(image.rodata_end, image.end - image.rodata_end),
            Memory::ReadWrite,
        )?;
        for r in ram {
            // RAM is mapped inward to whole pages: a partial page is not used.
            let base = align_up(r.base);
            let end = align_down(r.end());
            if end > base {
                plan.push(Region::new(base, end - base), Memory::ReadWrite)?;
            }
        }
        for d in devices {
            // Device registers are mapped outward to whole pages.
            let base = align_down(d.base);
            let region = Region::new(base, align_up(d.end()) - base);
            if ram.iter().any(|r| r.overlaps(&region)) {
                return Err(PlanError::DeviceInRam { device: *d });
            }
            plan.push(region, Memory::Device)?;
        }
        Ok(plan)
    }

    /// The mappings, in order.
    pub fn mappings(&self) -> &[Mapping] {
        &self.items[..self.count]
    }

    /// Writes the plan into `tables`.
    pub fn build(&self, tables: &mut Tables<'_>) -> Result<(), PlanError> {
        for m in self.mappings() {
            let r = m.region;
            tables
                .map(r.base, r.base, r.size, m.memory.attributes())
                .map_err(|error| PlanError::Map { region: r, error })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_boot::mmu::Table;

    const IMAGE: ImageLayout = ImageLayout {
        start: 0x4020_0000,
        text_end: 0x4021_0000,
        rodata_end: 0x4021_4000,
        end: 0x4080_0000,
    };
    const RAM: Region = Region::new(0x4000_0000, 1 << 30);
    const UART: Region = Region::new(0x0900_0000, 0x1000);
    const GICD: Region = Region::new(0x0800_0000, 0x1_0000);

    #[test]
    fn image_sections_keep_their_permissions_inside_ram() {
        let plan = Plan::new(&IMAGE, &[RAM], &[UART, GICD]).unwrap();
        let mut pool = vec![Table::EMPTY; 16];
        let mut tables = Tables::new(&mut pool, 0x1000_0000, 40).unwrap();
        plan.build(&mut tables).unwrap();
        let attrs = |va| tables.translate(va).map(|t| t.1);
        assert_eq!(attrs(0x4020_0000), Some(Memory::Text.attributes()));
        assert_eq!(attrs(0x4020_ffff), Some(Memory::Text.attributes()));
        assert_eq!(attrs(0x4021_0000), Some(Memory::ReadOnly.attributes()));
        assert_eq!(attrs(0x4021_4000), Some(Memory::ReadWrite.attributes()));
        assert_eq!(attrs(0x4000_0000), Some(Memory::ReadWrite.attributes()));
        assert_eq!(attrs(0x7fff_f000), Some(Memory::ReadWrite.attributes()));
        assert_eq!(attrs(0x0900_0fff), Some(Memory::Device.attributes()));
        assert_eq!(attrs(0x0800_ffff), Some(Memory::Device.attributes()));
        assert_eq!(attrs(0x0901_0000), None, "nothing else is mapped");
        assert_eq!(attrs(0x8000_0000), None, "nothing beyond RAM");
        assert_eq!(attrs(0), None);
    }

    #[test]
    fn unaligned_ram_is_mapped_inward_and_devices_outward() {
        let ram = [Region::new(0x4000_0800, 0x4000_0000)];
        let dev = [Region::new(0x3089_0040, 0x10)];
        let image = ImageLayout {
            start: 0x4020_0000,
            text_end: 0x4020_1000,
            rodata_end: 0x4020_2000,
            end: 0x4020_3000,
        };
        let plan = Plan::new(&image, &ram, &dev).unwrap();
        let m = plan.mappings();
        assert_eq!(m[3].region, Region::new(0x4000_1000, 0x3fff_f000));
        assert_eq!(m[4].region, Region::new(0x3089_0000, 0x1000));
    }

    #[test]
    fn refuses_what_cannot_be_right() {
        let outside = ImageLayout {
            start: 0x8000_0000,
            text_end: 0x8000_1000,
            rodata_end: 0x8000_2000,
            end: 0x8000_3000,
        };
        assert!(matches!(
            Plan::new(&outside, &[RAM], &[]),
            Err(PlanError::ImageOutsideRam { .. })
        ));
        let straddling = Region::new(0x3fff_f000, 0x2000);
        assert_eq!(
            Plan::new(&IMAGE, &[RAM], &[straddling]).unwrap_err(),
            PlanError::DeviceInRam { device: straddling }
        );
        let many = [UART; MAX_MAPPINGS];
        assert_eq!(
            Plan::new(&IMAGE, &[RAM], &many).unwrap_err(),
            PlanError::TooManyMappings
        );
        let text = PlanError::ImageOutsideRam { start: 1, end: 2 }.to_string();
        assert!(text.contains("not inside any RAM region"), "{text}");
    }

    #[test]
    fn a_small_pool_fails_with_the_region_named() {
        let plan = Plan::new(&IMAGE, &[RAM], &[UART]).unwrap();
        let mut pool = vec![Table::EMPTY; 2];
        let mut tables = Tables::new(&mut pool, 0x1000_0000, 40).unwrap();
        let err = plan.build(&mut tables).unwrap_err();
        assert!(matches!(
            err,
            PlanError::Map {
                error: MapError::OutOfTables,
                ..
            }
        ));
        assert!(err.to_string().contains("0x40200000"), "{err}");
    }
}
