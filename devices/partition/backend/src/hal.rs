//! `virtio-drivers`' platform hooks ([`FerryHal`]) for the physical devices the
//! backend drives (the disk, [`crate::disk`]; the uplink NIC, [`crate::uplink`]):
//! identity-mapped MMIO, virtqueue memory from a static pool, buffers translated
//! to bus addresses with `dma-ranges` ([`crate::dma`]: there is no SMMU, a
//! passthrough DMA master sees host physical addresses).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::dma::{DmaRange, DmaRanges, MAX_RANGES};

/// Pages of the virtqueue pool: the disk's queue (64 entries: 2 pages) and the
/// uplink's two (16 entries: 2 pages each), with room to spare.
pub const POOL_PAGES: usize = 8;

/// The backend's guest → bus translation, set once from `/ferry-backend`.
static RANGES: [[AtomicU64; 3]; MAX_RANGES] =
    [const { [const { AtomicU64::new(0) }; 3] }; MAX_RANGES];

/// Records `dma` for [`FerryHal`] (before any physical device is set up).
pub fn set_dma_ranges(dma: &DmaRanges) {
    for (slot, r) in RANGES.iter().zip(dma.iter()) {
        slot[0].store(r.guest, Ordering::Relaxed);
        slot[1].store(r.bus, Ordering::Relaxed);
        slot[2].store(r.size, Ordering::Release);
    }
}

/// The bus address of `[addr, addr + len)`.
fn to_bus(addr: u64, len: u64) -> Option<u64> {
    let mut d = DmaRanges::new();
    for slot in &RANGES {
        let size = slot[2].load(Ordering::Acquire);
        if size == 0 {
            break;
        }
        d.push(DmaRange {
            guest: slot[0].load(Ordering::Relaxed),
            bus: slot[1].load(Ordering::Relaxed),
            size,
        });
    }
    d.to_bus(addr, len)
}

/// Memory for the physical virtqueues (never freed: a physical device lives as long as the
/// partition).
#[repr(C, align(4096))]
struct Pool([u8; POOL_PAGES * 4096]);

static mut POOL: Pool = Pool([0; POOL_PAGES * 4096]);
static POOL_USED: AtomicUsize = AtomicUsize::new(0);

/// `virtio-drivers`' platform hooks for this partition: identity-mapped MMIO,
/// queue memory from [`POOL`], buffers translated by `dma-ranges`.
pub struct FerryHal;

// SAFETY: dma_alloc returns zeroed, page-aligned, exclusively owned memory that stays
// valid for the partition's life, with its bus address; share returns the bus
// address of the buffer it is given (the device reads and writes RAM coherently:
// `dma-coherent`, no bounce needed), or stops the partition if it has none.
unsafe impl Hal for FerryHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let len = pages * 4096;
        let at = POOL_USED.fetch_add(len, Ordering::AcqRel);
        if at + len > core::mem::size_of::<Pool>() {
            ferry_partition_rt::fail!("virtqueue memory pool exhausted ({pages} pages)");
        }
        // SAFETY: [at, at + len) of POOL is handed out once (the atomic bump above).
        let va = unsafe { (&raw mut POOL).cast::<u8>().add(at) };
        let Some(pa) = to_bus(va as u64, len as u64) else {
            ferry_partition_rt::fail!("virtqueue memory {va:p} is outside dma-ranges");
        };
        // SAFETY: va is non-null (inside a static).
        (pa, unsafe { NonNull::new_unchecked(va) })
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Passthrough MMIO is identity-mapped (guest = host address).
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let addr = buffer.cast::<u8>().as_ptr() as u64;
        match to_bus(addr, buffer.len() as u64) {
            Some(pa) => pa,
            None => ferry_partition_rt::fail!(
                "DMA buffer {addr:#x}+{:#x} is outside dma-ranges",
                buffer.len()
            ),
        }
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
