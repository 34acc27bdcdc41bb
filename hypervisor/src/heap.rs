//! Ferry's heap: a buddy allocator over a fixed region inside the image, so
//! Ferry's memory is exactly its image (`.bss` included) and nothing else.

use buddy_system_allocator::LockedHeap;

/// Heap size.
const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands the heap region to the allocator. Call once, with the MMU on.
pub fn init() {
    let space = &raw mut HEAP_SPACE;
    // SAFETY: called once on the primary before any allocation; HEAP_SPACE is used
    // by nothing else.
    unsafe { HEAP.lock().init(space as usize, HEAP_SIZE) };
}
