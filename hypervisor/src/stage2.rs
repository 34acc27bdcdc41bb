//! Stage-2 translation: the attributes of a partition's mappings and VTCR_EL2.
//!
//! Every partition gets its own tables (built with the same builder as the EL2
//! map, `ferry_boot::mmu::Tables`) and a VMID. The IPA space is 39 bits (512 GiB,
//! a single level-1 root table): enough for guest RAM and the identity-mapped
//! device windows of every supported board.

use ferry_boot::mmu::el2;

/// Input (IPA) size of every partition's stage-2 translation.
pub const IPA_BITS: u32 = 39;

/// What a partition's mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMemory {
    /// Guest RAM: Normal write-back, read/write/execute.
    Ram,
    /// A passthrough device: Device-nGnRE, read/write, never executed.
    Device,
    /// Another partition's memory shared with this one (a virtio backend's view of
    /// its frontend's RAM): Normal write-back, read/write, never executed. The
    /// partition may read and write it as data, but an instruction fetch from it is
    /// a stage-2 permission fault, whatever its own stage 1 says.
    Shared,
}

impl GuestMemory {
    /// Leaf attribute bits of a stage-2 block or page descriptor.
    pub fn attributes(self) -> u64 {
        const AF: u64 = 1 << 10;
        const S2AP_RW: u64 = 0b11 << 6;
        const SH_INNER: u64 = 0b11 << 8;
        const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
        const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
        // Stage-2 XN[1:0] (bits 54:53): 0b10 = not executable at EL1 or EL0. The same
        // encoding without FEAT_XNX (bit 54 = XN, bit 53 RES0).
        const XN_ALL: u64 = 0b10 << 53;
        match self {
            GuestMemory::Ram => AF | S2AP_RW | SH_INNER | MEMATTR_NORMAL_WB,
            GuestMemory::Device => AF | S2AP_RW | MEMATTR_DEVICE_NGNRE | XN_ALL,
            GuestMemory::Shared => AF | S2AP_RW | SH_INNER | MEMATTR_NORMAL_WB | XN_ALL,
        }
    }
}

/// VTCR_EL2 for [`IPA_BITS`] of IPA, a level-1 start, 4 KiB granule, write-back
/// inner-shareable walks, and `pa_bits` of output address.
pub fn vtcr(pa_bits: u32) -> u64 {
    const RES1: u64 = 1 << 31;
    let t0sz = 64 - IPA_BITS as u64;
    let sl0_level1 = 0b01 << 6;
    let walks = (0b01 << 8) | (0b01 << 10) | (0b11 << 12);
    // PS uses the same encoding as TCR_EL2.PS.
    let ps = (el2::tcr(pa_bits) >> 16) & 0b111;
    RES1 | t0sz | sl0_level1 | walks | (ps << 16)
}

/// VTTBR_EL2 for tables rooted at `root` with `vmid` (8-bit VMIDs).
pub fn vttbr(vmid: u8, root: u64) -> u64 {
    (vmid as u64) << 48 | root
}

/// Where the faulting IPA of an abort from a guest comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAddress {
    /// HPFAR_EL2 holds it: a stage-2 translation, access-flag or address-size
    /// fault, or any stage-2 fault on a stage-1 table walk (S1PTW).
    Hpfar,
    /// HPFAR_EL2 is UNKNOWN (a permission fault, an external abort): translate
    /// FAR_EL2 with the guest's stage 1 (AT S1E1R) instead.
    TranslateFar,
    /// Neither can be trusted: FAR_EL2 is not valid (ISS.FnV) either.
    Unknown,
}

/// Where to find the faulting IPA of a data or instruction abort with syndrome
/// `esr` (Arm ARM D19.2 HPFAR_EL2: valid for stage-2 translation, access-flag and
/// address-size faults, and for faults on a stage-1 walk; KVM's
/// `__get_fault_info` does the same).
pub fn fault_address(esr: u64) -> FaultAddress {
    let s1ptw = esr & (1 << 7) != 0;
    let far_not_valid = esr & (1 << 10) != 0;
    match esr & 0x3f {
        _ if s1ptw => FaultAddress::Hpfar,
        // Address size (levels 0-3, -1), translation (0-3, -1), access flag.
        0x00..=0x0b | 0x29 | 0x2b => FaultAddress::Hpfar,
        _ if far_not_valid => FaultAddress::Unknown,
        _ => FaultAddress::TranslateFar,
    }
}

/// The IPA an `AT S1E1R` of `far` produced, from PAR_EL1 (`None` if it faulted).
pub fn par_ipa(par: u64, far: u64) -> Option<u64> {
    (par & 1 == 0).then_some(par & 0x000f_ffff_ffff_f000 | far & 0xfff)
}

/// The faulting IPA of a stage-2 abort, from HPFAR_EL2 (IPA\[51:12\] in bits 43:4)
/// and the page offset from FAR_EL2.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_boot::mmu::{Table, Tables};

    /// Stage-2 XN\[1:0\], descriptor bits 54:53.
    fn xn(attrs: u64) -> u64 {
        attrs >> 53 & 0b11
    }

    #[test]
    fn attributes() {
        assert_eq!(GuestMemory::Ram.attributes(), 0x7fc);
        assert_eq!(
            GuestMemory::Device.attributes(),
            1 << 54 | 1 << 10 | 0b11 << 6 | 1 << 2
        );
        // AF, SH inner, S2AP read/write, MemAttr Normal outer/inner write-back,
        // XN 0b10.
        assert_eq!(
            GuestMemory::Shared.attributes(),
            1 << 54 | 1 << 10 | 0b11 << 8 | 0b11 << 6 | 0b1111 << 2
        );
        assert_eq!(GuestMemory::Shared.attributes(), 0x0040_0000_0000_07fc);
    }

    #[test]
    fn shared_memory_is_ram_but_never_executable() {
        let (ram, shared) = (
            GuestMemory::Ram.attributes(),
            GuestMemory::Shared.attributes(),
        );
        assert_eq!(xn(ram), 0b00, "guest RAM: executable at EL1 and EL0");
        assert_eq!(xn(shared), 0b10, "not executable at EL1 or EL0");
        assert_eq!(xn(GuestMemory::Device.attributes()), 0b10);
        // Everything else (memory type, shareability, access, AF) as guest RAM.
        assert_eq!(shared & !(0b11 << 53), ram);
    }

    #[test]
    fn registers() {
        // T0SZ 25, SL0 1, IRGN/ORGN WB, SH inner, PS 40 bits, RES1.
        assert_eq!(
            vtcr(40),
            1 << 31 | 25 | 1 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 2 << 16
        );
        assert_eq!(vtcr(48) >> 16 & 7, 5);
        assert_eq!(vttbr(3, 0x4800_0000), 0x0003_0000_4800_0000);
        assert_eq!(fault_ipa((0x4900_0000 >> 12) << 4, 0x1234), 0x4900_0234);
    }

    #[test]
    fn hpfar_is_trusted_only_where_it_is_valid() {
        use FaultAddress::*;
        let da = 0x24 << 26 | 1 << 25;
        // Translation faults (the emulated windows) and access flag: HPFAR.
        for fsc in [0x04, 0x05, 0x06, 0x07, 0x09, 0x0b, 0x2b] {
            assert_eq!(fault_address(da | fsc), Hpfar, "{fsc:#x}");
        }
        // Permission faults (e.g. execute-never shared memory): translate FAR.
        for fsc in [0x0d, 0x0e, 0x0f] {
            assert_eq!(fault_address(da | fsc), TranslateFar, "{fsc:#x}");
            assert_eq!(fault_address(da | 1 << 7 | fsc), Hpfar, "on a walk");
        }
        // A synchronous external abort: FAR if valid, else nothing.
        assert_eq!(fault_address(da | 0x10), TranslateFar);
        assert_eq!(fault_address(da | 1 << 10 | 0x10), Unknown);
        assert_eq!(
            par_ipa(0x4900_0000, 0xffff_0000_1234_5678),
            Some(0x4900_0678)
        );
        assert_eq!(par_ipa(0x4900_0001, 0x678), None, "PAR_EL1.F");
        assert_eq!(
            par_ipa(0xff00_0000_4900_0000, 0x1),
            Some(0x4900_0001),
            "attributes"
        );
    }

    #[test]
    fn builds_a_partition_map_with_a_level_one_root() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut t = Tables::new(&mut pool, 0x5000_0000, IPA_BITS).unwrap();
        assert_eq!(t.root_level(), 1);
        t.map(
            0x4000_0000,
            0x4800_0000,
            8 << 20,
            GuestMemory::Ram.attributes(),
        )
        .unwrap();
        t.map(
            0x0904_0000,
            0x0904_0000,
            0x1000,
            GuestMemory::Device.attributes(),
        )
        .unwrap();
        assert_eq!(t.translate(0x4000_1000).unwrap().0, 0x4800_1000);
        assert_eq!(t.translate(0x4080_0000), None);
        assert_eq!(
            t.translate(0x0904_0010).unwrap().1,
            GuestMemory::Device.attributes()
        );
    }

    #[test]
    fn shared_memory_keeps_execute_never_in_blocks_and_pages() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut t = Tables::new(&mut pool, 0x5000_0000, IPA_BITS).unwrap();
        let shared = GuestMemory::Shared.attributes();
        // A frontend's 8 MiB (2 MiB blocks) and a region that needs pages.
        t.map(0x8000_0000, 0x4800_0000, 8 << 20, shared).unwrap();
        t.map(0x8100_0000, 0x4900_0000, 0x3000, shared).unwrap();
        t.map(
            0x4000_0000,
            0x4880_0000,
            8 << 20,
            GuestMemory::Ram.attributes(),
        )
        .unwrap();
        for ipa in [0x8000_0000, 0x8040_0abc, 0x807f_fffc, 0x8100_2000] {
            let (_, attrs, _) = t.translate(ipa).unwrap();
            assert_eq!(attrs, shared, "{ipa:#x}");
            assert_eq!(xn(attrs), 0b10, "{ipa:#x}");
        }
        assert_eq!(t.translate(0x8000_0000).unwrap().2, 2, "a block");
        assert_eq!(t.translate(0x8100_2000).unwrap().2, 3, "a page");
        assert_eq!(t.translate(0x8040_0000).unwrap().0, 0x4840_0000);
        assert_eq!(xn(t.translate(0x4000_0000).unwrap().1), 0b00);
    }
}
