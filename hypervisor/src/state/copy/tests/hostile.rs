//! Hostile rings on either side: each fails the device with its cause; nothing
//! outside the posted writable buffers is written.

use super::*;

/// Posts what `setup` writes on a ready queue 0 and returns the copy path's error.
fn refused(setup: impl FnOnce(&mut Rig)) -> CopyError {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(0x4003_0000, &[0xcd; 16]);
    setup(&mut r);
    let e = r.notify().expect_err("refused");
    assert!(!e.to_string().is_empty());
    assert_eq!(
        r.fe_read(0x4003_0000, 16),
        vec![0xcd; 16],
        "nothing written"
    );
    assert_eq!(
        Rig::u16_at(&r.be_read(r.shadow().avail_idx(), 2)),
        0,
        "nothing posted"
    );
    e
}

#[test]
fn a_descriptor_loop_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x4003_0000, 4, desc_flags::NEXT, 1);
        r.desc(1, 0x4003_0000, 4, desc_flags::NEXT, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::DescLoop | WalkError::ChainTooLong,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_next_beyond_the_table_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x4003_0000, 4, desc_flags::NEXT, NUM);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::DescIndex { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_buffer_in_ferry_or_another_partition_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x5000_0000, 4, desc_flags::WRITE, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Buffer {
                addr: 0x5000_0000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_buffer_running_past_the_end_of_ram_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, FE_RAM.ipa + FE_RAM.size - 2, 4, 0, 0);
        r.publish(0);
    });
    assert!(matches!(e, CopyError::Buffer { .. }), "{e:?}");
}

#[test]
fn readable_after_writable_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x4003_0000, 4, desc_flags::WRITE | desc_flags::NEXT, 1);
        r.desc(1, 0x4003_0000, 4, 0, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::ReadableAfterWritable,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_zero_length_buffer_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x4003_0000, 0, 0, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::ZeroLength,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn an_indirect_table_not_negotiated_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x4005_0000, 32, desc_flags::INDIRECT, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::IndirectNotNegotiated,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_head_beyond_the_table_fails_the_device() {
    let e = refused(|r| {
        r.publish(NUM + 3);
    });
    assert!(
        matches!(
            e,
            CopyError::Chain {
                error: WalkError::DescIndex { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_buffer_in_a_virtio_window_fails_the_device() {
    let e = refused(|r| {
        r.desc(0, 0x0a00_3e00, 4, 0, 0);
        r.publish(0);
    });
    assert!(
        matches!(
            e,
            CopyError::Buffer {
                addr: 0x0a00_3e00,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn an_avail_index_jump_fails_the_device() {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(FE_AVAIL + 2, &(NUM + 1).to_le_bytes());
    assert_eq!(
        r.notify(),
        Err(CopyError::AvailJump {
            queue: 0,
            last: 0,
            idx: NUM + 1
        })
    );
}

#[test]
fn indirect_descriptors_are_flattened_when_negotiated() {
    let mut r = Rig::new();
    r.ready(feature::RING_INDIRECT_DESC | feature::VERSION_1);
    let table = 0x4005_0000u64;
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&0x4002_0000u64.to_le_bytes());
    t[8..12].copy_from_slice(&3u32.to_le_bytes());
    t[12..14].copy_from_slice(&desc_flags::NEXT.to_le_bytes());
    t[14..16].copy_from_slice(&1u16.to_le_bytes());
    t[16..24].copy_from_slice(&0x4003_0000u64.to_le_bytes());
    t[24..28].copy_from_slice(&5u32.to_le_bytes());
    t[28..30].copy_from_slice(&desc_flags::WRITE.to_le_bytes());
    r.fe_write(table, &t);
    r.fe_write(0x4002_0000, b"abc");
    r.desc(0, table, 32, desc_flags::INDIRECT, 0);
    r.publish(0);
    assert_eq!(r.notify(), Ok(1));
    let (_, descs) = r.shadow_request(0);
    assert_eq!(descs.iter().map(|d| d.1).collect::<Vec<_>>(), [3, 5]);
    assert_eq!(r.be_read(descs[0].0, 3), b"abc");
}

/// What the frontend rewrites after posting is not seen: the completion goes to
/// the buffer validated when the request was posted.
#[test]
fn descriptors_rewritten_after_posting_are_not_seen() {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(0x4004_0000, &[0x11; 8]);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    r.desc(0, 0x4004_0000, 8, desc_flags::WRITE, 0);
    let (id, d) = r.shadow_request(0);
    r.be_write(d[0].0, &[0x77; 8]);
    r.be_use(0, u32::from(id), 8);
    r.complete().unwrap();
    assert_eq!(r.fe_read(0x4003_0000, 8), vec![0x77; 8]);
    assert_eq!(
        r.fe_read(0x4004_0000, 8),
        vec![0x11; 8],
        "the rewritten target is untouched"
    );
}

#[test]
fn hostile_used_entries_fail_the_device() {
    for (what, id, len, expect) in [
        (
            "an odd id",
            1u32,
            0u32,
            CopyError::NotOutstanding { queue: 0, id: 1 },
        ),
        (
            "an id never given",
            6,
            0,
            CopyError::NotOutstanding { queue: 0, id: 6 },
        ),
        (
            "an id out of range",
            0xffff_fffe,
            0,
            CopyError::NotOutstanding {
                queue: 0,
                id: 0xffff_fffe,
            },
        ),
        (
            "len beyond the buffer",
            0,
            9,
            CopyError::UsedTooLong {
                queue: 0,
                id: 0,
                len: 9,
                writable: 8,
            },
        ),
    ] {
        let mut r = Rig::new();
        r.ready(0);
        r.fe_write(0x4003_0000, &[0xab; 16]);
        r.post_chain(&[(0x4003_0000, 8, true)]);
        r.notify().unwrap();
        r.be_use(0, id, len);
        assert_eq!(r.complete(), Err(expect), "{what}");
        assert_eq!(
            r.fe_read(0x4003_0000, 16),
            vec![0xab; 16],
            "{what}: nothing written"
        );
        assert_eq!(r.fe_used().0, 0, "{what}");
    }
}

#[test]
fn a_request_used_twice_fails_the_device() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.post_chain(&[(0x4003_1000, 8, true)]);
    r.notify().unwrap();
    let (id, _) = r.shadow_request(0);
    r.be_use(0, u32::from(id), 1);
    r.complete().unwrap();
    r.be_use(1, u32::from(id), 1);
    assert_eq!(
        r.complete(),
        Err(CopyError::NotOutstanding {
            queue: 0,
            id: u32::from(id)
        })
    );
}

#[test]
fn a_used_index_jump_fails_the_device() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    r.be_write(r.shadow().used_idx(), &5u16.to_le_bytes());
    assert_eq!(
        r.complete(),
        Err(CopyError::UsedJump {
            queue: 0,
            last: 0,
            idx: 5
        })
    );
}
