//! The physical GIC, shared by every core once the primary has set it up.

use ferry_platform::gicv3::Gic;
use spin::Once;

/// The physical GIC driver.
pub static GIC: Once<Gic> = Once::new();
