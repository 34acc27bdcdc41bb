//! The switch's MAC table: [`MAC_TABLE_SIZE`] entries mapping a MAC to a port, learned
//! (ageing, replaced least recently seen first) or static (see the module docs of
//! [`super`]).

use super::{DEFAULT_AGEING_MS, Mac, PortId};

/// Entries in the MAC table.
pub const MAC_TABLE_SIZE: usize = 64;

/// Why a MAC cannot be bound statically ([`super::Switch::add_static`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError {
    /// The MAC is a group (multicast, broadcast) or all-zero address.
    NotUnicast,
    /// Every entry of the table is static already.
    TableFull,
}

/// The MAC table's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// MACs learned into a new entry (including one re-learned after it aged).
    pub learned: u64,
    /// Learned MACs seen on another port than their entry's (the entry moved).
    pub moves: u64,
    /// Learned entries freed or reused because they aged.
    pub aged: u64,
    /// Live learned entries replaced because the table was full.
    pub evicted: u64,
    /// MACs not learned because every entry was static.
    pub refused: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Free = 0,
    Dynamic,
    Static,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: Mac,
    kind: Kind,
    port: PortId,
    seen_ms: u64,
}

impl Entry {
    const FREE: Entry = Entry {
        mac: [0; 6],
        kind: Kind::Free,
        port: PortId(0),
        seen_ms: 0,
    };

    /// Whether the entry is a learned one not seen for more than `ageing_ms` at `now_ms`.
    fn expired(&self, now_ms: u64, ageing_ms: u64) -> bool {
        self.kind == Kind::Dynamic && now_ms.saturating_sub(self.seen_ms) > ageing_ms
    }
}

/// What learning a source MAC found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Learn {
    /// Learned, refreshed, moved, or not learned for want of room.
    Learned,
    /// The MAC is statically bound to another port.
    Spoofed,
}

/// The table.
pub(super) struct MacTable {
    entries: [Entry; MAC_TABLE_SIZE],
    stats: TableStats,
    /// The ageing time in ms; 0 stands for [`DEFAULT_AGEING_MS`] (so that a new table
    /// is all zero bytes).
    ageing: u64,
}

impl MacTable {
    pub(super) const EMPTY: MacTable = MacTable {
        entries: [Entry::FREE; MAC_TABLE_SIZE],
        stats: TableStats {
            learned: 0,
            moves: 0,
            aged: 0,
            evicted: 0,
            refused: 0,
        },
        ageing: 0,
    };

    pub(super) fn ageing_ms(&self) -> u64 {
        if self.ageing == 0 {
            DEFAULT_AGEING_MS
        } else {
            self.ageing
        }
    }

    pub(super) fn set_ageing_ms(&mut self, ms: u64) {
        self.ageing = if ms == DEFAULT_AGEING_MS {
            0
        } else {
            ms.max(1)
        };
    }

    pub(super) fn stats(&self) -> TableStats {
        self.stats
    }

    /// The entry holding `mac`, live or expired.
    fn find(&self, mac: &Mac) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind != Kind::Free && e.mac == *mac)
    }

    /// The port of `mac` at `now_ms`, if it has a live entry.
    pub(super) fn lookup(&self, mac: &Mac, now_ms: u64) -> Option<PortId> {
        let e = &self.entries[self.find(mac)?];
        (!e.expired(now_ms, self.ageing_ms())).then_some(e.port)
    }

    /// Learns that `mac` (unicast) is behind `port` at `now_ms`.
    pub(super) fn learn(&mut self, mac: Mac, port: PortId, now_ms: u64) -> Learn {
        let ageing = self.ageing_ms();
        let Some(i) = self.find(&mac) else {
            match self.victim(now_ms) {
                Some(i) => {
                    self.entries[i] = Entry {
                        mac,
                        kind: Kind::Dynamic,
                        port,
                        seen_ms: now_ms,
                    };
                    self.stats.learned += 1;
                }
                None => self.stats.refused += 1,
            }
            return Learn::Learned;
        };
        let e = &mut self.entries[i];
        if e.kind == Kind::Static {
            return if e.port == port {
                Learn::Learned
            } else {
                Learn::Spoofed
            };
        }
        if e.expired(now_ms, ageing) {
            self.stats.aged += 1;
            self.stats.learned += 1;
        } else if e.port != port {
            self.stats.moves += 1;
        }
        (e.port, e.seen_ms) = (port, now_ms);
        Learn::Learned
    }

    /// The entry to (re)use for a new MAC: a free one, else an expired one, else the
    /// least recently seen learned one; `None` if all are static.
    fn victim(&mut self, now_ms: u64) -> Option<usize> {
        if let Some(i) = self.entries.iter().position(|e| e.kind == Kind::Free) {
            return Some(i);
        }
        let ageing = self.ageing_ms();
        if let Some(i) = self.entries.iter().position(|e| e.expired(now_ms, ageing)) {
            self.stats.aged += 1;
            return Some(i);
        }
        let dynamic = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == Kind::Dynamic);
        let (i, _) = dynamic.min_by_key(|(_, e)| e.seen_ms)?;
        self.stats.evicted += 1;
        Some(i)
    }

    /// Binds `mac` to `port` statically.
    pub(super) fn add_static(&mut self, mac: Mac, port: PortId) -> Result<(), BindError> {
        let i = match self.find(&mac) {
            Some(i) => i,
            None => self.victim(0).ok_or(BindError::TableFull)?,
        };
        self.entries[i] = Entry {
            mac,
            kind: Kind::Static,
            port,
            seen_ms: 0,
        };
        Ok(())
    }

    /// Frees the learned entries that match `stale`; returns how many.
    fn free_where(&mut self, stale: impl Fn(&Entry) -> bool) -> usize {
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.kind == Kind::Dynamic && stale(e))
        {
            *e = Entry::FREE;
            n += 1;
        }
        n
    }

    /// Frees the learned entries expired at `now_ms`; returns how many.
    pub(super) fn expire(&mut self, now_ms: u64) -> usize {
        let ageing = self.ageing_ms();
        let n = self.free_where(|e| e.expired(now_ms, ageing));
        self.stats.aged += n as u64;
        n
    }

    /// Frees the entries learned on `port`; returns how many.
    pub(super) fn forget_port(&mut self, port: PortId) -> usize {
        self.free_where(|e| e.port == port)
    }
}
