//! The transport of every device: the frontend's memory as Ferry maps it into this
//! partition (`shared` sharing mode), bounds-checked on every access, plus the
//! interrupt causes the device raised since the last NOTIFY_FRONTEND.

use core::ptr;

use ferry_virtio_backend::{Interrupt, MemError, Transport};

use crate::node::FrontendMemory;

/// Interrupt cause bits of NOTIFY_FRONTEND.
pub mod cause {
    /// A used buffer.
    pub const USED_BUFFER: u64 = 1;
    /// A configuration change.
    pub const CONFIG_CHANGE: u64 = 2;
}

/// A device's view of its frontend's memory.
pub struct SharedWindow {
    memory: FrontendMemory,
    causes: u64,
}

impl SharedWindow {
    /// The window `memory`.
    ///
    /// # Safety
    /// `[memory.be_addr, + memory.size)` is mapped (Normal memory) in this
    /// partition for as long as the value lives, and no Rust reference to it exists:
    /// the frontend may change it at any time, so only byte copies touch it.
    pub unsafe fn new(memory: FrontendMemory) -> SharedWindow {
        SharedWindow { memory, causes: 0 }
    }

    /// The window.
    pub fn memory(&self) -> FrontendMemory {
        self.memory
    }

    /// The backend address of frontend range `[addr, addr + len)`, if it lies
    /// entirely inside the window.
    pub fn translate(&self, addr: u64, len: usize) -> Result<usize, MemError> {
        let m = &self.memory;
        let off = addr.checked_sub(m.fe_base).ok_or(MemError)?;
        let end = off.checked_add(len as u64).ok_or(MemError)?;
        if end > m.size {
            return Err(MemError);
        }
        usize::try_from(m.be_addr + off).map_err(|_| MemError)
    }

    /// Takes the causes raised since the last call (bits of [`cause`]).
    pub fn take_causes(&mut self) -> u64 {
        core::mem::take(&mut self.causes)
    }
}

impl Transport for SharedWindow {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let src = self.translate(addr, buf.len())?;
        // SAFETY: inside the window (`translate`), mapped per `new`'s contract; a
        // byte copy, no reference to frontend memory is formed.
        unsafe { ptr::copy_nonoverlapping(src as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let dst = self.translate(addr, data.len())?;
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
        Ok(())
    }

    fn notify(&mut self, c: Interrupt) {
        self.causes |= match c {
            Interrupt::UsedBuffer => cause::USED_BUFFER,
            Interrupt::ConfigChange => cause::CONFIG_CHANGE,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(buf: &mut [u8]) -> SharedWindow {
        let memory = FrontendMemory {
            fe_base: 0x4000_0000,
            size: buf.len() as u64,
            be_addr: buf.as_mut_ptr() as u64,
        };
        // SAFETY: `buf` outlives every use in these tests.
        unsafe { SharedWindow::new(memory) }
    }

    #[test]
    fn accesses_inside_the_window_reach_its_memory() {
        let mut buf = vec![0u8; 64];
        let mut w = window(&mut buf);
        w.write(0x4000_0010, b"ferry").unwrap();
        let mut out = [0u8; 5];
        w.read(0x4000_0010, &mut out).unwrap();
        assert_eq!(&out, b"ferry");
        w.write(0x4000_003c, &[1, 2, 3, 4]).unwrap();
        let _ = w;
        assert_eq!(&buf[0x10..0x15], b"ferry");
        assert_eq!(&buf[0x3c..], &[1, 2, 3, 4]);
    }

    #[test]
    fn accesses_outside_are_refused() {
        let mut buf = vec![0u8; 64];
        let mut w = window(&mut buf);
        let mut out = [0u8; 4];
        assert_eq!(w.read(0x3fff_fffc, &mut out), Err(MemError));
        assert_eq!(w.read(0x4000_003d, &mut out), Err(MemError));
        assert_eq!(w.write(0x4000_0040, &[0]), Err(MemError));
        assert_eq!(w.write(u64::MAX, &[0, 0]), Err(MemError));
        assert_eq!(w.translate(0x4000_0000, usize::MAX), Err(MemError));
        assert!(
            w.translate(0x4000_0040, 0).is_ok(),
            "an empty range at the end"
        );
    }

    #[test]
    fn causes_accumulate_until_taken() {
        let mut buf = vec![0u8; 8];
        let mut w = window(&mut buf);
        assert_eq!(w.take_causes(), 0);
        w.notify(Interrupt::UsedBuffer);
        w.notify(Interrupt::UsedBuffer);
        w.notify(Interrupt::ConfigChange);
        assert_eq!(w.take_causes(), 3);
        assert_eq!(w.take_causes(), 0);
    }
}
