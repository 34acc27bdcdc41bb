//! A borrowed tree of the config DTB, read once with the `fdt` crate.
//!
//! The blob has been through `copy_without_nops`, which validated every token
//! (names and values inside the block, property names in the strings block,
//! balanced nodes at most 16 deep) and removed the FDT_NOP tokens `fdt` 0.1.5
//! mis-parses. On such a blob `fdt`'s `children()` and `properties()` do not
//! panic; `find_node` is never used (its alias fallback can recurse).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use fdt::node::FdtNode;

use crate::model::{Node as OwnedNode, Property};

/// One node with its path, properties and children.
pub(crate) struct Node<'a> {
    /// Name with unit address (`""` for the root).
    pub name: &'a str,
    /// Full path (`/` for the root).
    pub path: String,
    /// Properties in order.
    pub props: Vec<(&'a str, &'a [u8])>,
    /// Children in order.
    pub children: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    /// Reads `node` (found at `path`) and everything below it.
    pub fn read(node: FdtNode<'_, 'a>, path: String) -> Self {
        let props = node.properties().map(|p| (p.name, p.value)).collect();
        let children = node
            .children()
            .map(|c| {
                let child_path = if path == "/" {
                    format!("/{}", c.name)
                } else {
                    format!("{}/{}", path, c.name)
                };
                Node::read(c, child_path)
            })
            .collect();
        Self {
            name: if path == "/" { "" } else { node.name },
            path,
            props,
            children,
        }
    }

    /// The value of the first property called `name`.
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// The first child called exactly `name`.
    pub fn child(&self, name: &str) -> Option<&Node<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    /// An owned copy of this node and everything below it.
    pub fn to_owned_node(&self) -> OwnedNode {
        OwnedNode {
            name: self.name.into(),
            properties: self.owned_props(),
            children: self.children.iter().map(Node::to_owned_node).collect(),
        }
    }

    /// Owned copies of the properties.
    pub fn owned_props(&self) -> Vec<Property> {
        self.props
            .iter()
            .map(|(n, v)| Property {
                name: (*n).into(),
                value: v.to_vec(),
            })
            .collect()
    }
}
