//! Numbers from the virtio 1.2 specification that this library implements:
//! virtio-mmio register offsets (§4.2.2), device status bits (§2.1), feature bits
//! (§6) and split-virtqueue descriptor flags (§2.7.5).

/// virtio-mmio register offsets (§4.2.2), relative to the device window.
pub mod reg {
    /// `MagicValue` (R): 0x74726976, "virt" in little-endian.
    pub const MAGIC_VALUE: u32 = 0x000;
    /// `Version` (R): 2 for the modern (non-legacy) interface.
    pub const VERSION: u32 = 0x004;
    /// `DeviceID` (R): the virtio device type (2 blk, 3 console, 4 rng).
    pub const DEVICE_ID: u32 = 0x008;
    /// `VendorID` (R).
    pub const VENDOR_ID: u32 = 0x00c;
    /// `DeviceFeatures` (R): 32 feature bits selected by `DeviceFeaturesSel`.
    pub const DEVICE_FEATURES: u32 = 0x010;
    /// `DeviceFeaturesSel` (W): 0 selects bits 0..31, 1 selects bits 32..63.
    pub const DEVICE_FEATURES_SEL: u32 = 0x014;
    /// `DriverFeatures` (W): 32 feature bits selected by `DriverFeaturesSel`.
    pub const DRIVER_FEATURES: u32 = 0x020;
    /// `DriverFeaturesSel` (W).
    pub const DRIVER_FEATURES_SEL: u32 = 0x024;
    /// `QueueSel` (W): the queue the `Queue*` registers address.
    pub const QUEUE_SEL: u32 = 0x030;
    /// `QueueNumMax` (R): the largest queue size the device accepts; 0 if the queue does not exist.
    pub const QUEUE_NUM_MAX: u32 = 0x034;
    /// `QueueNum` (W): the queue size the driver chose.
    pub const QUEUE_NUM: u32 = 0x038;
    /// `QueueReady` (RW): 1 once the driver set the queue up.
    pub const QUEUE_READY: u32 = 0x044;
    /// `QueueNotify` (W): the index of a queue with new buffers.
    pub const QUEUE_NOTIFY: u32 = 0x050;
    /// `InterruptStatus` (R): bit 0 used buffer, bit 1 configuration change.
    pub const INTERRUPT_STATUS: u32 = 0x060;
    /// `InterruptACK` (W): clears the bits written.
    pub const INTERRUPT_ACK: u32 = 0x064;
    /// `Status` (RW): the device status byte; writing 0 resets the device.
    pub const STATUS: u32 = 0x070;
    /// `QueueDescLow` (W): descriptor table address, low 32 bits.
    pub const QUEUE_DESC_LOW: u32 = 0x080;
    /// `QueueDescHigh` (W).
    pub const QUEUE_DESC_HIGH: u32 = 0x084;
    /// `QueueDriverLow` (W): available ring address, low 32 bits.
    pub const QUEUE_DRIVER_LOW: u32 = 0x090;
    /// `QueueDriverHigh` (W).
    pub const QUEUE_DRIVER_HIGH: u32 = 0x094;
    /// `QueueDeviceLow` (W): used ring address, low 32 bits.
    pub const QUEUE_DEVICE_LOW: u32 = 0x0a0;
    /// `QueueDeviceHigh` (W).
    pub const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
    /// `SHMSel` (W): shared memory region selector (this library has none).
    pub const SHM_SEL: u32 = 0x0ac;
    /// `SHMLenLow` (R): all-ones, the region does not exist.
    pub const SHM_LEN_LOW: u32 = 0x0b0;
    /// `SHMLenHigh` (R).
    pub const SHM_LEN_HIGH: u32 = 0x0b4;
    /// `SHMBaseLow` (R).
    pub const SHM_BASE_LOW: u32 = 0x0b8;
    /// `SHMBaseHigh` (R).
    pub const SHM_BASE_HIGH: u32 = 0x0bc;
    /// `QueueReset` (RW): writing 1 resets the selected queue (VIRTIO_F_RING_RESET).
    pub const QUEUE_RESET: u32 = 0x0c0;
    /// `ConfigGeneration` (R): changes whenever the device configuration changes.
    pub const CONFIG_GENERATION: u32 = 0x0fc;
    /// Start of the device-specific configuration space.
    pub const CONFIG: u32 = 0x100;
    /// Size of the register window (`reg = <... 0x200>` in a device tree).
    pub const WINDOW_SIZE: u32 = 0x200;
}

/// `MagicValue`: "virt".
pub const MAGIC: u32 = 0x7472_6976;
/// `Version`: 2 (modern). Legacy (1) is not supported.
pub const MMIO_VERSION: u32 = 2;

/// Device status bits (§2.1).
pub mod status {
    /// The guest OS has found the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest OS knows how to drive the device.
    pub const DRIVER: u8 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete (the device may refuse by not keeping this bit).
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 0x80;
}

/// Feature bit numbers (as `1 << n` masks) that are not device-specific (§6).
pub mod feature {
    /// VIRTIO_F_RING_INDIRECT_DESC (28): indirect descriptor tables.
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    /// VIRTIO_F_RING_EVENT_IDX (29): `used_event` / `avail_event` notification suppression.
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// VIRTIO_F_VERSION_1 (32): the modern interface; mandatory here.
    pub const VERSION_1: u64 = 1 << 32;
    /// VIRTIO_F_ACCESS_PLATFORM (33): the device reaches driver memory through a
    /// platform-specific translation (the transport does it).
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
    /// VIRTIO_F_RING_RESET (40): per-queue reset through `QueueReset`.
    pub const RING_RESET: u64 = 1 << 40;
}

/// Split virtqueue descriptor flags (§2.7.5).
pub mod desc_flags {
    /// The buffer continues in the descriptor named by `next`.
    pub const NEXT: u16 = 1;
    /// The buffer is device-writable (otherwise device-readable).
    pub const WRITE: u16 = 2;
    /// The buffer holds an indirect descriptor table.
    pub const INDIRECT: u16 = 4;
}

/// `avail.flags`: the driver does not want used-buffer notifications (without event-idx).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// The largest queue size the split virtqueue format allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// `InterruptStatus` bit: a used buffer was published.
pub const INT_USED_BUFFER: u32 = 1;
/// `InterruptStatus` bit: the configuration (or the device status) changed.
pub const INT_CONFIG_CHANGE: u32 = 2;

/// Virtio device type numbers (§5).
pub mod device_id {
    /// Network card.
    pub const NET: u32 = 1;
    /// Block device.
    pub const BLOCK: u32 = 2;
    /// Console.
    pub const CONSOLE: u32 = 3;
    /// Entropy source.
    pub const RNG: u32 = 4;
    /// SCMI.
    pub const SCMI: u32 = 32;
}
