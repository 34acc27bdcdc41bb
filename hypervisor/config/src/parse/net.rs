//! The structure of networking: a `"net"` device's `segment` (required) and a
//! backend's `net-uplink` with `net-uplink-segment` (both or neither, on a
//! backend only). Their rules are in `validate` (`validate/net.rs`).

use crate::cells::Props;
use crate::model::NetUplink;

/// A `"net"` device has `segment`. Records the problem if it is missing;
/// returns whether it is there.
pub(super) fn segment_given(p: &mut Props<'_, '_, '_>) -> bool {
    let n = p.node;
    if n.prop("segment").is_some() {
        return true;
    }
    let msg = "is missing (a \"net\" device needs segment, the name of the switch segment its port is in)";
    p.errs.prop(&n.path, "segment", msg);
    false
}

/// A partition's `net-uplink` and `net-uplink-segment`: both or neither, and
/// only on a virtio backend (`backend`: it has `ioreq-page`). `Some(None)`
/// without them, `None` (recorded) when malformed or misplaced.
pub(super) fn uplink(p: &mut Props<'_, '_, '_>, backend: bool) -> Option<Option<NetUplink>> {
    let transport = p.optional("net-uplink", Props::transport);
    let segment = p.optional("net-uplink-segment", Props::string);
    let (transport, segment) = (transport?, segment?);
    let path = p.node.path.clone();
    if !backend {
        for (name, given) in [
            ("net-uplink", transport.is_some()),
            ("net-uplink-segment", segment.is_some()),
        ] {
            if given {
                p.errs
                    .prop(&path, name, "is a virtio backend's: it needs ioreq-page");
            }
        }
        return (transport.is_none() && segment.is_none()).then_some(None);
    }
    match (transport, segment) {
        (Some(transport), Some(segment)) => Some(Some(NetUplink { transport, segment })),
        (None, None) => Some(None),
        (Some(_), None) => {
            let msg = "is missing (a net-uplink needs net-uplink-segment, the switch segment its port is in)";
            p.errs.prop(&path, "net-uplink-segment", msg);
            None
        }
        (None, Some(_)) => {
            let msg = "is missing (net-uplink-segment names the segment of an uplink: give net-uplink, its physical virtio-net transport)";
            p.errs.prop(&path, "net-uplink", msg);
            None
        }
    }
}
