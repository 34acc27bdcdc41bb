//! What the state layer asks the hardware shell to do.
//!
//! Decisions are made on plain values (host-tested); each one that needs the
//! hardware returns [`Effect`]s in an [`Effects`] list, and the shell
//! (`apply.rs`, target only) applies them in order. The list holds its first
//! effect inline, so the hot paths (a posted notify, a forwarded access) never
//! allocate; only the rare longer lists (a stop, a device failure) do.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::event::Event;

/// One thing for the hardware shell to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Make the cores running these vCPUs of `partition` (bit n = vCPU n) refresh
    /// their list registers (an SGI to each).
    KickVgic {
        /// The partition.
        partition: usize,
        /// Its vCPUs, as a mask.
        vcpus: u64,
    },
    /// Make the cores running these vCPUs of `partition` leave the guest: the
    /// partition stopped (an SGI to each).
    KickStop {
        /// The partition.
        partition: usize,
        /// Its vCPUs, as a mask.
        vcpus: u64,
    },
    /// Wake cores waiting in EL2 for a backend (DSB, then SEV).
    WakeWaiters,
    /// Route the physical SPI `intid` to the core that runs `vcpu` of `partition`.
    RouteSpi {
        /// The SPI's INTID.
        intid: u32,
        /// The partition that owns it.
        partition: usize,
        /// The vCPU it now targets.
        vcpu: usize,
    },
    /// End the run with `code`: the exit policy's verdict after `partition` stopped.
    EndRun {
        /// The exit code.
        code: u32,
        /// The partition whose stop ended the run.
        partition: usize,
    },
}

/// What a decision asks of the shell: log lines ([`Event`]s), written first, then
/// an ordered list of [`Effect`]s. Kicks of the same kind for the same partition
/// are merged into one mask.
///
/// The first effect is held inline, the rest and the log lines behind one box:
/// the hot paths (a posted notify, a forwarded access, NOTIFY_FRONTEND) produce
/// one small effect and never allocate, and setting up or dropping an empty list
/// costs a few instructions. Longer lists (a stop, a device failure) allocate.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    first: Option<Effect>,
    more: Option<Box<More>>,
}

/// The effects after the first, and the log lines.
#[derive(Clone, Debug, Default)]
struct More {
    effects: Vec<Effect>,
    events: Vec<Event>,
}

impl Effects {
    /// An empty list.
    pub const fn new() -> Effects {
        Effects {
            first: None,
            more: None,
        }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// Asks for a log line.
    pub fn log(&mut self, event: Event) {
        self.more().events.push(event);
    }

    /// Appends `effect` (kicks merge into an earlier kick of the same kind and
    /// partition; a kick of no vCPU is dropped).
    pub fn push(&mut self, effect: Effect) {
        if let Effect::KickVgic { vcpus: 0, .. } | Effect::KickStop { vcpus: 0, .. } = effect {
            return;
        }
        let Some(first) = &mut self.first else {
            self.first = Some(effect);
            return;
        };
        if let Some(mask) = merge(first, &effect) {
            *mask |= kick_mask(&effect);
            return;
        }
        let more = self.more();
        if let Some(mask) = more.effects.iter_mut().find_map(|e| merge(e, &effect)) {
            *mask |= kick_mask(&effect);
            return;
        }
        more.effects.push(effect);
    }

    /// Appends `other`'s effects and log lines (a stop decided inside another
    /// decision).
    pub fn absorb(&mut self, other: Effects) {
        for event in other.events() {
            self.log(*event);
        }
        for &effect in other.iter() {
            self.push(effect);
        }
    }

    /// Number of effects and log lines.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some())
            + self
                .more
                .as_ref()
                .map_or(0, |m| m.effects.len() + m.events.len())
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_none()
    }

    /// The effects (log lines aside), in order.
    pub fn iter(&self) -> impl Iterator<Item = &Effect> {
        let rest: &[Effect] = self.more.as_ref().map_or(&[], |m| &m.effects);
        self.first.iter().chain(rest.iter())
    }

    /// The first effect, if any (the one the hot paths produce).
    pub fn first(&self) -> Option<Effect> {
        self.first
    }

    /// The effects after the first.
    pub fn rest(&self) -> &[Effect] {
        self.more.as_ref().map_or(&[], |m| &m.effects)
    }

    /// The log lines, in order.
    pub fn events(&self) -> core::slice::Iter<'_, Event> {
        let events: &[Event] = self.more.as_ref().map_or(&[], |m| &m.events);
        events.iter()
    }
}

/// The vCPU mask of a kick (0 for other effects).
fn kick_mask(effect: &Effect) -> u64 {
    match effect {
        Effect::KickVgic { vcpus, .. } | Effect::KickStop { vcpus, .. } => *vcpus,
        _ => 0,
    }
}

/// The mask of `existing` if `new` is a kick of the same kind for the same
/// partition.
fn merge<'a>(existing: &'a mut Effect, new: &Effect) -> Option<&'a mut u64> {
    match (existing, new) {
        (
            Effect::KickVgic { partition, vcpus },
            Effect::KickVgic {
                partition: other, ..
            },
        )
        | (
            Effect::KickStop { partition, vcpus },
            Effect::KickStop {
                partition: other, ..
            },
        ) if *partition == *other => Some(vcpus),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_spills_past_the_inline_room() {
        let mut fx = Effects::new();
        assert!(fx.is_empty());
        for p in 0..10 {
            fx.push(Effect::EndRun {
                code: p as u32,
                partition: p,
            });
        }
        assert_eq!(fx.len(), 10);
        let codes: Vec<u32> = fx
            .iter()
            .map(|e| match e {
                Effect::EndRun { code, .. } => *code,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(codes, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn kicks_merge_per_partition_and_kind() {
        let mut fx = Effects::new();
        fx.push(Effect::KickVgic {
            partition: 1,
            vcpus: 0b01,
        });
        fx.push(Effect::KickStop {
            partition: 1,
            vcpus: 0b10,
        });
        fx.push(Effect::KickVgic {
            partition: 1,
            vcpus: 0b100,
        });
        fx.push(Effect::KickVgic {
            partition: 2,
            vcpus: 0b1,
        });
        assert_eq!(fx.len(), 3);
        let first = fx.iter().next().copied();
        assert_eq!(
            first,
            Some(Effect::KickVgic {
                partition: 1,
                vcpus: 0b101
            })
        );
    }

    #[test]
    fn empty_kicks_are_dropped() {
        let mut fx = Effects::new();
        fx.push(Effect::KickVgic {
            partition: 0,
            vcpus: 0,
        });
        fx.push(Effect::KickStop {
            partition: 0,
            vcpus: 0,
        });
        assert!(fx.is_empty());
    }

    #[test]
    fn merging_works_in_the_spilled_part_too() {
        let mut fx = Effects::new();
        for _ in 0..4 {
            fx.push(Effect::WakeWaiters);
        }
        fx.push(Effect::KickVgic {
            partition: 3,
            vcpus: 1,
        });
        fx.push(Effect::KickVgic {
            partition: 3,
            vcpus: 2,
        });
        assert_eq!(fx.len(), 5);
        assert_eq!(
            fx.iter().last().copied(),
            Some(Effect::KickVgic {
                partition: 3,
                vcpus: 3
            })
        );
    }

    #[test]
    fn effects_and_log_lines_count_together() {
        let mut a = Effects::new();
        a.push(Effect::WakeWaiters);
        a.push(Effect::EndRun {
            code: 4,
            partition: 0,
        });
        assert_eq!(a.len(), 2);
        assert_eq!(a.events().count(), 0);
        a.log(Event::Console(
            crate::state::console::ConsoleEvent::BadEscape,
        ));
        assert_eq!(a.len(), 3);
        assert_eq!(a.events().count(), 1);
        assert!(!a.is_empty());
    }

    #[test]
    fn effects_are_small_enough_to_copy_in_registers() {
        assert!(core::mem::size_of::<Effect>() <= 24);
        assert!(core::mem::size_of::<Option<Effect>>() <= 24);
    }

    #[test]
    fn a_list_with_only_log_lines_is_not_empty() {
        let mut fx = Effects::new();
        fx.log(Event::Console(
            crate::state::console::ConsoleEvent::BadEscape,
        ));
        assert!(!fx.is_empty());
        assert_eq!(fx.iter().count(), 0);
    }
}
