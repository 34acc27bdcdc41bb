//! The vCPU power state machine and PSCI calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::policy::StopKind;
use crate::state::event::StopReason;
use crate::state::power::{PsciNext, Vcpu, psci};
use crate::vpsci::{Call, Power};
use ferry_abi::psci::PsciRet;

fn cpu_on(target: u64, entry: u64) -> Call {
    Call::CpuOn {
        target,
        entry,
        context: 0x77,
    }
}

#[test]
fn a_new_vcpu_is_off() {
    assert_eq!(Vcpu::new(0, 0).power(), Power::Off);
}

#[test]
fn request_on_then_take_start_gives_the_entry_point() {
    let v = Vcpu::new(0, 0);
    assert!(v.request_on(0x4000_1000, 9));
    assert_eq!(v.power(), Power::OnPending);
    assert_eq!(v.take_start(), Some((0x4000_1000, 9)));
    assert_eq!(v.power(), Power::On);
    assert_eq!(v.take_start(), None, "started once");
}

#[test]
fn request_on_of_a_pending_or_running_vcpu_fails_and_keeps_its_entry() {
    let v = Vcpu::new(0, 0);
    assert!(v.request_on(1, 2));
    assert!(!v.request_on(3, 4));
    assert_eq!(v.take_start(), Some((1, 2)));
    assert!(!v.request_on(5, 6));
    assert_eq!(v.power(), Power::On);
}

#[test]
fn off_then_on_again_takes_the_new_entry() {
    let v = Vcpu::new(0, 0);
    v.request_on(1, 2);
    v.take_start();
    v.set_off();
    assert_eq!(v.power(), Power::Off);
    assert!(v.request_on(7, 8));
    assert_eq!(v.take_start(), Some((7, 8)));
}

#[test]
fn take_start_of_an_off_vcpu_is_nothing() {
    assert_eq!(Vcpu::new(0, 0).take_start(), None);
}

/// Two threads switch the same vCPU on at once, many times: exactly one wins each
/// round, and the vCPU starts at the winner's entry point with the winner's context.
#[test]
fn concurrent_cpu_on_of_one_target_has_one_winner_whose_entry_is_used() {
    for round in 0..2000u64 {
        let v = Arc::new(Vcpu::new(0, 0));
        let winners = Arc::new(AtomicUsize::new(0));
        let won_with = Arc::new(std::sync::Mutex::new(None));
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let (v, winners, won_with) = (v.clone(), winners.clone(), won_with.clone());
                std::thread::spawn(move || {
                    let entry = 0x1000 * (t + 1) + round;
                    if v.request_on(entry, entry + 1) {
                        winners.fetch_add(1, Ordering::SeqCst);
                        *won_with.lock().unwrap() = Some(entry);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(winners.load(Ordering::SeqCst), 1, "round {round}");
        let entry = won_with.lock().unwrap().unwrap();
        assert_eq!(v.take_start(), Some((entry, entry + 1)), "round {round}");
    }
}

/// The starting core races the callers: it never sees a half-published start.
#[test]
fn a_core_waiting_for_its_start_sees_entry_and_context_together() {
    for round in 0..2000u64 {
        let v = Arc::new(Vcpu::new(0, 0));
        let starter = {
            let v = v.clone();
            std::thread::spawn(move || {
                loop {
                    if let Some(start) = v.take_start() {
                        return start;
                    }
                    std::hint::spin_loop();
                }
            })
        };
        assert!(v.request_on(round, round + 1));
        assert_eq!(starter.join().unwrap(), (round, round + 1));
    }
}

#[test]
fn psci_version_features_and_migrate() {
    let (s, _) = running();
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    assert_eq!(
        psci(fe, 0, Call::Version, &mut fx),
        PsciNext::Return(crate::vpsci::VERSION_1_1)
    );
    assert_eq!(
        psci(fe, 0, Call::Features(0x8400_0000), &mut fx),
        PsciNext::Return(PsciRet::Success.code())
    );
    assert_eq!(
        psci(fe, 0, Call::Features(0x8400_0001), &mut fx),
        PsciNext::Return(PsciRet::NotSupported.code())
    );
    assert_eq!(
        psci(fe, 0, Call::MigrateInfoType, &mut fx),
        PsciNext::Return(crate::vpsci::MIGRATE_NONE)
    );
    assert!(fx.is_empty());
}

#[test]
fn cpu_on_of_an_off_vcpu_succeeds_and_kicks_its_core() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    assert_eq!(
        psci(fe, 0, cpu_on(1, 0x4000_2000), &mut fx),
        PsciNext::Return(PsciRet::Success.code())
    );
    assert_eq!(fe.vcpus[1].power(), Power::OnPending);
    assert_eq!(kicks(&fx, 0, false), 0b10);
    assert_eq!(fe.vcpus[1].take_start(), Some((0x4000_2000, 0x77)));
}

#[test]
fn cpu_on_twice_answers_on_pending_then_already_on() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    psci(fe, 0, cpu_on(1, 0x4000_2000), &mut fx);
    assert_eq!(
        psci(fe, 0, cpu_on(1, 0x4000_3000), &mut fx),
        PsciNext::Return(PsciRet::OnPending.code())
    );
    fe.vcpus[1].take_start();
    assert_eq!(
        psci(fe, 0, cpu_on(1, 0x4000_3000), &mut fx),
        PsciNext::Return(PsciRet::AlreadyOn.code())
    );
}

#[test]
fn cpu_on_outside_memory_is_an_invalid_address() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    for entry in [0, 0x3fff_fffc, 0x4100_0000, u64::MAX - 1] {
        assert_eq!(
            psci(fe, 0, cpu_on(1, entry), &mut fx),
            PsciNext::Return(PsciRet::InvalidAddress.code()),
            "{entry:#x}"
        );
    }
    assert_eq!(fe.vcpus[1].power(), Power::Off);
    assert!(fx.is_empty());
}

#[test]
fn cpu_on_of_the_last_word_of_memory_is_accepted() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    assert_eq!(
        psci(fe, 0, cpu_on(1, 0x40ff_fffc), &mut fx),
        PsciNext::Return(PsciRet::Success.code())
    );
}

#[test]
fn cpu_on_of_a_vcpu_it_does_not_have_is_refused_and_logged() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    for target in [2u64, 0x100, 0x8000_0000, u64::MAX] {
        let mut fx = Effects::new();
        assert_eq!(
            psci(fe, 0, cpu_on(target, 0x4000_0000), &mut fx),
            PsciNext::Return(PsciRet::InvalidParameters.code())
        );
        assert!(has(
            &fx,
            &Event::CpuOnRefused {
                partition: 0,
                vcpu: 0,
                target
            }
        ));
    }
    let mut fx = Effects::new();
    psci(fe, 1, cpu_on(7, 0x4000_0000), &mut fx);
    assert_eq!(
        lines(&s, &fx),
        ["partition 'fe' vCPU 1: CPU_ON(0x7) refused: it has no such vCPU"]
    );
}

#[test]
fn cpu_off_parks_and_logs_at_debug() {
    let (s, _) = running();
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    assert_eq!(psci(fe, 1, Call::CpuOff, &mut fx), PsciNext::Park);
    assert_eq!(fe.vcpus[1].power(), Power::Off);
    let event = fx.events().next().copied().unwrap();
    assert_eq!(
        event,
        Event::VcpuOff {
            partition: 0,
            vcpu: 1
        }
    );
    assert_eq!(event.level(), log::Level::Debug);
}

#[test]
fn cpu_off_then_cpu_on_restarts_at_the_new_entry() {
    let (s, _) = running();
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    psci(fe, 1, Call::CpuOff, &mut fx);
    assert_eq!(
        psci(fe, 0, cpu_on(1, 0x4000_8000), &mut fx),
        PsciNext::Return(PsciRet::Success.code())
    );
    assert_eq!(fe.vcpus[1].take_start(), Some((0x4000_8000, 0x77)));
}

#[test]
fn affinity_info_follows_the_power_state() {
    let (s, _) = system(Shape::default());
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    let info = |fx: &mut Effects, target| psci(fe, 0, Call::AffinityInfo { target, level: 0 }, fx);
    assert_eq!(info(&mut fx, 1), PsciNext::Return(1), "off");
    psci(fe, 0, cpu_on(1, 0x4000_0000), &mut fx);
    assert_eq!(info(&mut fx, 1), PsciNext::Return(2), "on pending");
    fe.vcpus[1].take_start();
    assert_eq!(info(&mut fx, 1), PsciNext::Return(0), "on");
    assert_eq!(
        info(&mut fx, 5),
        PsciNext::Return(PsciRet::InvalidParameters.code())
    );
    assert_eq!(
        psci(
            fe,
            0,
            Call::AffinityInfo {
                target: 0,
                level: 1
            },
            &mut fx
        ),
        PsciNext::Return(PsciRet::InvalidParameters.code()),
        "only level 0"
    );
}

#[test]
fn system_off_and_reset_stop_the_partition() {
    let (s, _) = running();
    let fe = &s.partitions[0];
    let mut fx = Effects::new();
    assert_eq!(
        psci(fe, 0, Call::SystemOff, &mut fx),
        PsciNext::Stop(StopKind::SystemOff, StopReason::SystemOff)
    );
    assert_eq!(
        psci(fe, 0, Call::SystemReset, &mut fx),
        PsciNext::Stop(StopKind::SystemReset, StopReason::SystemReset)
    );
    assert!(!fe.is_stopped(), "the caller applies the stop");
}

#[test]
fn concurrent_psci_cpu_on_from_two_vcpus_starts_the_target_once() {
    for _ in 0..500 {
        let mem = Mem::default();
        let shape = Shape {
            fe_vcpus: 3,
            ..Shape::default()
        };
        let fe = Arc::new(frontend(3));
        let _be = backend(shape, &mem, 3);
        let results: Vec<_> = (0..2u64)
            .map(|caller| {
                let fe = fe.clone();
                std::thread::spawn(move || {
                    let mut fx = Effects::new();
                    let entry = 0x4000_0000 + 0x1000 * caller;
                    (psci(&fe, caller as usize, cpu_on(2, entry), &mut fx), entry)
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        let winners: Vec<u64> = results
            .iter()
            .filter(|(r, _)| *r == PsciNext::Return(PsciRet::Success.code()))
            .map(|(_, e)| *e)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let loser = results
            .iter()
            .find(|(r, _)| *r != PsciNext::Return(PsciRet::Success.code()))
            .unwrap();
        assert!(
            [PsciRet::OnPending.code(), PsciRet::AlreadyOn.code()]
                .iter()
                .any(|&c| loser.0 == PsciNext::Return(c)),
            "{loser:?}"
        );
        assert_eq!(fe.vcpus[2].take_start(), Some((winners[0], 0x77)));
    }
}
