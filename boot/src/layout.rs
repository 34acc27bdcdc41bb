//! Where the image lies in memory, from the symbols `link.ld` defines.

/// The image's sections, page-aligned, in load order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// First byte of the image (the Image header).
    pub start: u64,
    /// End of `.text` (read + execute).
    pub text_end: u64,
    /// End of `.rodata` (read only).
    pub rodata_end: u64,
    /// End of `.data` and `.bss` (read + write): one past the image.
    pub end: u64,
}

impl ImageLayout {
    /// Size of the whole image in memory, `.bss` included.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The running image's layout.
#[cfg(target_os = "none")]
pub fn image() -> ImageLayout {
    unsafe extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __image_end: u8;
    }
    // Only the symbols' addresses are taken; nothing is read through them.
    ImageLayout {
        start: &raw const __image_start as u64,
        text_end: &raw const __text_end as u64,
        rodata_end: &raw const __rodata_end as u64,
        end: &raw const __image_end as u64,
    }
}

/// The top of the primary CPU's boot stack (it stays the primary's EL2 stack).
#[cfg(target_os = "none")]
pub fn primary_stack_top() -> u64 {
    unsafe extern "C" {
        static __primary_stack_top: u8;
    }
    // Only the symbol's address is taken.
    &raw const __primary_stack_top as u64
}
