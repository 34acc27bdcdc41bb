//! Translation tables: the builder shared by every table Ferry writes, and the EL2
//! stage-1 settings.

pub mod el2;
pub mod table;

pub use table::{MapError, Table, Tables};

/// The translation granule Ferry uses everywhere: 4 KiB.
pub const PAGE_SIZE: u64 = 4096;
