//! Partition stops and the exit policy.

use super::*;
use crate::policy::StopKind;
use crate::state::event::{FailReason, StopReason};

fn end_code(fx: &Effects) -> Option<u32> {
    fx.iter().find_map(|e| match e {
        Effect::EndRun { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn a_stop_logs_kicks_the_other_vcpus_and_marks_the_partition() {
    let (s, _) = running();
    let fx = s.stop(0, 1, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert!(s.partitions[0].is_stopped());
    assert_eq!(kicks(&fx, 0, true), 0b01, "vCPU 0, not the caller");
    assert_eq!(
        lines(&s, &fx)[0],
        "partition 'fe' stopped (system off, code 0) by vCPU 1: PSCI SYSTEM_OFF"
    );
}

#[test]
fn the_stop_code_follows_the_kind() {
    for (kind, reason, code) in [
        (StopKind::SystemOff, StopReason::SystemOff, 0),
        (StopKind::SystemReset, StopReason::SystemReset, 2),
        (StopKind::Fault, StopReason::SError { esr: 0, pc: 0 }, 10),
    ] {
        let (s, _) = running();
        let fx = s.stop(0, 0, kind, reason, 0);
        assert_eq!(end_code(&fx), Some(code), "{kind:?}");
        assert!(has(
            &fx,
            &Event::Stopped {
                partition: 0,
                vcpu: 0,
                kind,
                code,
                reason
            }
        ));
    }
}

#[test]
fn a_fault_is_logged_as_a_warning() {
    let (s, _) = running();
    let fx = s.stop(
        0,
        0,
        StopKind::Fault,
        StopReason::UnhandledClass {
            esr: 0x1c00_0000,
            pc: 0x1234,
        },
        0,
    );
    let event = fx.events().next().unwrap();
    assert_eq!(event.level(), log::Level::Warn);
    assert!(lines(&s, &fx)[0].ends_with(
        "unhandled exception class 0x07 (SIMD/FP access), ESR_EL2 0x1c000000, PC 0x1234"
    ));
}

#[test]
fn a_second_stop_of_the_same_partition_does_nothing() {
    let (s, _) = running();
    s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        0,
    );
    let fx = s.stop(1, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert!(fx.is_empty());
}

#[test]
fn stopping_a_partition_that_does_not_exist_does_nothing() {
    let (s, _) = running();
    assert!(
        s.stop(9, 0, StopKind::SystemOff, StopReason::SystemOff, 0)
            .is_empty()
    );
}

#[test]
fn a_backend_stop_fails_its_devices_and_wakes_waiting_frontends() {
    let (s, _) = running();
    let fx = s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        0,
    );
    assert!(s.virtio[0].has_failed());
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::BackendStopped
        }
    ));
    assert_eq!(
        kicks(&fx, 0, false),
        1,
        "the frontend's config-change interrupt"
    );
    assert!(fx.iter().any(|e| *e == Effect::WakeWaiters));
    assert_eq!(end_code(&fx), None, "the policy waits for 'fe' only");
    assert_eq!(
        kicks(&fx, 1, true),
        0,
        "the backend has one vCPU: the caller"
    );
}

#[test]
fn the_run_ends_when_the_waited_partition_stops_and_names_the_others() {
    let (s, _) = running();
    let fx = s.stop(0, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert!(has(&fx, &Event::StillRunning { partition: 1 }));
    assert_eq!(
        fx.iter().last(),
        Some(&Effect::EndRun {
            code: 0,
            partition: 0
        })
    );
    assert!(
        lines(&s, &fx)
            .contains(&"partition 'be' is still running at the end of the run".to_string())
    );
}

#[test]
fn a_nonzero_code_of_another_partition_wins_over_a_clean_end() {
    let (s, _) = running();
    s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        0,
    );
    let fx = s.stop(0, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert_eq!(end_code(&fx), Some(30), "be's fault code");
    assert!(!has(&fx, &Event::StillRunning { partition: 1 }));
}

#[test]
fn without_a_policy_stops_never_end_the_run() {
    let (s, _) = system(Shape {
        wait_for: &[],
        ..Shape::default()
    });
    switch_on_all(&s);
    let fx = s.stop(0, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert_eq!(end_code(&fx), None);
    let fx = s.stop(1, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert_eq!(end_code(&fx), None);
}

#[test]
fn waiting_for_both_ends_at_the_second_stop() {
    let (s, _) = system(Shape {
        wait_for: &[0, 1],
        ..Shape::default()
    });
    switch_on_all(&s);
    assert_eq!(
        end_code(&s.stop(1, 0, StopKind::SystemOff, StopReason::SystemOff, 0)),
        None
    );
    assert_eq!(
        end_code(&s.stop(0, 0, StopKind::SystemReset, StopReason::SystemReset, 0)),
        Some(2)
    );
}

#[test]
fn a_stopped_partitions_vcpus_off_or_on_are_all_kicked() {
    let (s, _) = system(Shape {
        fe_vcpus: 4,
        ..Shape::default()
    });
    // Only vCPU 0 is on: vCPUs waiting for CPU_ON must see the stop too.
    s.partitions[0].vcpus[0].request_on(0x4000_0000, 0);
    let fx = s.stop(0, 0, StopKind::SystemOff, StopReason::SystemOff, 0);
    assert_eq!(kicks(&fx, 0, true), 0b1110);
}

#[test]
fn on_core_names_the_partition_and_vcpu() {
    let (s, _) = running();
    assert_eq!(s.on_core(1).map(|(p, v)| (p.id, v)), Some((0, 1)));
    assert_eq!(s.on_core(2).map(|(p, v)| (p.id, v)), Some((1, 0)));
    assert!(s.on_core(3).is_none(), "no vCPU there");
    assert!(s.on_core(99).is_none());
}

#[test]
fn stop_reasons_read_as_the_log_says() {
    let abort = StopReason::Stage2Abort {
        ipa: Some(0x5000_0000),
        esr: 0x24 << 26 | 1 << 6 | 0x07,
        pc: 0x4000_1000,
    };
    assert!(abort.to_string().starts_with(
        "stage-2 data abort: write at IPA 0x50000000 outside its memory and devices (ESR_EL2 0x90000047, PC 0x40001000, "
    ));
    let fetch = StopReason::Stage2Abort {
        ipa: Some(0),
        esr: 0x20 << 26,
        pc: 0,
    };
    assert!(
        fetch
            .to_string()
            .starts_with("stage-2 instruction abort: access at IPA 0x0")
    );
    let unhandled = StopReason::UnhandledClass {
        esr: 0x07 << 26,
        pc: 8,
    };
    assert_eq!(
        unhandled.to_string(),
        "unhandled exception class 0x07 (SIMD/FP access), ESR_EL2 0x1c000000, PC 0x8"
    );
    assert_eq!(
        StopReason::Undecodable {
            ipa: 0x800_0000,
            esr: 0x9000_0000,
            pc: 4
        }
        .to_string(),
        "an access to the GIC at IPA 0x8000000 that cannot be emulated (ESR_EL2 0x90000000: no syndrome; PC 0x4)"
    );
}

#[test]
fn a_permission_fault_says_the_mapping_does_not_permit_it() {
    // An instruction abort, IFSC 0b001111: permission fault, level 3.
    let exec = StopReason::Stage2Abort {
        ipa: Some(0x8040_0000),
        esr: 0x20 << 26 | 0x0f,
        pc: 0x8040_0000,
    };
    let text = exec.to_string();
    assert!(
        text.starts_with("stage-2 instruction abort: access at IPA 0x80400000 that its mapping"),
        "{text}"
    );
    assert!(text.ends_with("PC 0x80400000, permission fault)"), "{text}");
}

#[test]
fn a_stage1_walk_outside_ram_says_so() {
    let walk = StopReason::Stage2Abort {
        ipa: Some(0x0a00_3e00),
        esr: 0x9200_0086,
        pc: 0x4000_1000,
    };
    let text = walk.to_string();
    assert!(
        text.contains("at IPA 0xa003e00 during its own stage-1 table walk"),
        "{text}"
    );
}
