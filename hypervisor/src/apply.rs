//! The shell's one place for effects: what the state layer decided, done to the
//! hardware (SGIs, SEV, GIC routing, log lines, the end of the run).

use crate::logger::Stream;
use crate::policy::StopKind;
use crate::state::effect::{Effect, Effects};
use crate::state::event::{Event, StopReason};
use crate::state::partition::Partition;
use crate::state::ratelimit::Admit;
use crate::state::system::System;
use crate::{cpu, exit, physgic, sgi, vcpu};

/// Writes `fx`'s log lines, then applies its effects in order.
pub fn apply(system: &System, fx: &Effects) {
    let Some(first) = fx.first() else {
        // Log lines come with an effect, or alone.
        log_events(system, fx);
        return;
    };
    log_events(system, fx);
    apply_one(system, first);
    for &effect in fx.rest() {
        apply_one(system, effect);
    }
}

/// Writes `fx`'s log lines; a line the guest triggered at will goes through its
/// partition's budget (`state::ratelimit`), after a summary of what it suppressed.
fn log_events(system: &System, fx: &Effects) {
    for event in fx.events() {
        let budget = event
            .offender()
            .and_then(|p| system.partitions.get(p))
            .map(|p| {
                (
                    p.id,
                    p.log_budget.admit(cpu::counter(), cpu::counter_frequency()),
                )
            });
        match budget {
            Some((_, Admit::Drop)) => continue,
            Some((partition, Admit::Write { suppressed })) if suppressed > 0 => {
                log_event(
                    system,
                    &Event::Suppressed {
                        partition,
                        lines: suppressed,
                    },
                );
            }
            _ => {}
        }
        log_event(system, event);
    }
}

fn log_event(system: &System, event: &Event) {
    log::log!(event.level(), "{}", event.shown(system));
}

/// At the end of the run: how many lines each partition had suppressed since its
/// last summary.
fn log_suppressed(system: &System) {
    for p in system.partitions.iter() {
        let lines = p.log_budget.take_suppressed();
        if lines > 0 {
            log_event(
                system,
                &Event::Suppressed {
                    partition: p.id,
                    lines,
                },
            );
        }
    }
}

fn apply_one(system: &System, effect: Effect) {
    match effect {
        Effect::KickVgic { partition, vcpus } => {
            for_cores(system, partition, vcpus, sgi::kick_vgic);
        }
        Effect::KickStop { partition, vcpus } => {
            for_cores(system, partition, vcpus, sgi::kick);
        }
        Effect::WakeWaiters => {
            // SAFETY: barrier and event; no memory effects of their own.
            unsafe { core::arch::asm!("dsb ish", "sev", options(nostack)) };
        }
        Effect::RouteSpi {
            intid,
            partition,
            vcpu,
        } => {
            let core = system
                .partitions
                .get(partition)
                .and_then(|p| p.vcpus.get(vcpu));
            if let (Some(core), Some(gic)) = (core, physgic::GIC.get()) {
                gic.route_spi(intid, core.core_mpidr);
            }
        }
        Effect::EndRun { code, partition } => {
            log_suppressed(system);
            end_run(system, code, partition)
        }
    }
}

fn end_run(system: &System, code: u32, partition: usize) -> ! {
    exit::end_with(
        code,
        format_args!(
            "partition '{}' stopped; the exit policy ends the run",
            system
                .partitions
                .get(partition)
                .map_or("?", |p| p.label.as_str())
        ),
    )
}

/// Calls `send(mpidr)` for the core of each vCPU of `partition` in `mask`.
fn for_cores(system: &System, partition: usize, mut mask: u64, send: fn(u64)) {
    let Some(p) = system.partitions.get(partition) else {
        return;
    };
    while mask != 0 {
        if let Some(v) = p.vcpus.get(mask.trailing_zeros() as usize) {
            send(v.core_mpidr);
        }
        mask &= mask - 1;
    }
}

/// Stops `partition` from its `vcpu` on this core (see `System::stop`), then
/// parks the core.
pub fn stop(
    system: &System,
    partition: &Partition,
    vcpu: usize,
    kind: StopKind,
    reason: StopReason,
) -> ! {
    apply(
        system,
        &system.stop(partition.id, vcpu, kind, reason, cpu::counter()),
    );
    vcpu::park()
}

/// Writes partition `partition`'s console text (see `logger::guest_text`).
pub fn console_out(partition: &Partition) -> impl FnMut(&[u8], bool) + '_ {
    move |text, complete| {
        let stream = Stream::Partition(partition.id);
        crate::logger::guest_text(stream, &partition.label, text, complete)
    }
}

/// Writes virtio console `console`'s text as its own stream (`[linux:hvc0] ...`).
pub fn device_console_out(system: &System) -> impl FnMut(usize, &[u8], bool) + '_ {
    move |console, text, complete| {
        let label = system
            .consoles
            .get(console)
            .map_or("?", |c| c.label.as_str());
        crate::logger::guest_text(Stream::Device(console), label, text, complete)
    }
}
