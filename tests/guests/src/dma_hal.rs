//! The `virtio-drivers` HAL shared by the frontend test guests (`vfe`, `vbench`): a
//! bump allocator over a static pool of DMA pages (never freed: a test run is short),
//! physical == virtual (the guests run identity-mapped at their IPA).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use ferry_partition_rt::fail;
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// Pages in the DMA pool.
const POOL_PAGES: usize = 32;

#[repr(C, align(4096))]
struct Pool([u8; POOL_PAGES * PAGE_SIZE]);

static mut POOL: Pool = Pool([0; POOL_PAGES * PAGE_SIZE]);
static NEXT_PAGE: AtomicUsize = AtomicUsize::new(0);

/// The HAL.
pub struct PoolHal;

// SAFETY: pages come zeroed (.bss) from a static pool and are handed out once;
// physical == virtual (identity map at IPA).
unsafe impl Hal for PoolHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = NEXT_PAGE.fetch_add(pages, Ordering::Relaxed);
        if first + pages > POOL_PAGES {
            fail!("DMA pool exhausted ({pages} more pages, {first} used of {POOL_PAGES})");
        }
        let p = (&raw mut POOL).cast::<u8>().wrapping_add(first * PAGE_SIZE);
        (p as u64, NonNull::new(p).expect("pool pointer"))
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).expect("MMIO address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _dir: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as u64
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _dir: BufferDirection) {}
}
