//! The one tree walker: a conversation's nodes (in id order) indexed by parent and
//! children, with paths, depths and a drawn outline. Used by the exporter, the studio's
//! tree view and `arbor sessions show --tree`. Pure: the nodes come from the store.

use crate::domain::*;

/// The tree of one conversation, indexed. Nodes come ordered by id.
pub struct Tree<'a> {
    pub conv: &'a Conversation,
    pub nodes: &'a [Node],
    /// Each node's parent, as an index into `nodes`.
    parents: Vec<Option<usize>>,
    kids: std::cell::OnceCell<Vec<Vec<usize>>>,
}

impl<'a> Tree<'a> {
    pub fn new(conv: &'a Conversation, nodes: &'a [Node]) -> Self {
        let mut t = Self {
            conv,
            nodes,
            parents: Vec::new(),
            kids: std::cell::OnceCell::new(),
        };
        t.parents = nodes
            .iter()
            .map(|n| n.parent_id.and_then(|p| t.index_of(p)))
            .collect();
        t
    }

    /// Where the node with this id is (nodes are sorted by id).
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    /// Each node's children, in id order.
    pub fn kids(&self) -> &[Vec<usize>] {
        self.kids.get_or_init(|| {
            let mut kids = vec![Vec::new(); self.nodes.len()];
            for (i, p) in self.parents.iter().enumerate() {
                if let Some(p) = p {
                    kids[*p].push(i);
                }
            }
            kids
        })
    }

    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// How many ancestors `i` has (a root is 0).
    pub fn depth(&self, i: usize) -> usize {
        let mut d = 0;
        let mut cur = i;
        while let Some(p) = self.parent(cur) {
            d += 1;
            cur = p;
        }
        d
    }

    /// The roots, in id order.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.parents[i].is_none())
            .collect()
    }

    /// Every node depth first (children in id order), each with its `├─ `/`└─ `/`│  `
    /// drawing of its place in the tree.
    pub fn outline(&self) -> Vec<(usize, String)> {
        let mut rows = Vec::with_capacity(self.nodes.len());
        // (node, prefix of its children, drawing of this row)
        let mut stack: Vec<(usize, String, String)> = Vec::new();
        let push = |stack: &mut Vec<(usize, String, String)>, kids: &[usize], prefix: &str| {
            for (n, &k) in kids.iter().enumerate().rev() {
                let last = n + 1 == kids.len();
                let graph = format!("{prefix}{}", if last { "└─ " } else { "├─ " });
                let below = format!("{prefix}{}", if last { "   " } else { "│  " });
                stack.push((k, below, graph));
            }
        };
        push(&mut stack, &self.roots(), "");
        while let Some((i, below, graph)) = stack.pop() {
            rows.push((i, graph));
            push(&mut stack, &self.kids()[i], &below);
        }
        rows
    }

    /// Root first, ending with `i`.
    pub fn path(&self, i: usize) -> Vec<usize> {
        let mut p = vec![i];
        let mut cur = i;
        while let Some(par) = self.parent(cur) {
            p.push(par);
            cur = par;
        }
        p.reverse();
        p
    }

    /// The name of the call a tool result answers.
    pub fn call_name(&self, i: usize) -> Option<&str> {
        let id = self.nodes[i].tool_call_id.as_deref()?;
        let mut cur = self.parent(i);
        while let Some(p) = cur {
            if let Some(c) = self.nodes[p].tool_calls.iter().find(|c| c.id == id) {
                return Some(&c.name);
            }
            cur = self.parent(p);
        }
        None
    }

    pub fn system(&self) -> Option<Node> {
        (!self.conv.system_prompt.is_empty()).then(|| Node {
            created_at: self.conv.created_at,
            ..Node::new(self.conv.id, Role::System, self.conv.system_prompt.clone())
        })
    }

    /// The example's messages as templates see them (system prompt first).
    pub fn chat(&self, path: &[usize]) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        if !self.conv.system_prompt.is_empty() {
            out.push(ChatMessage::new(
                Role::System,
                self.conv.system_prompt.clone(),
            ));
        }
        out.extend(path.iter().map(|&i| {
            let n = &self.nodes[i];
            ChatMessage {
                role: n.role,
                content: n.content.clone(),
                tool_calls: n.tool_calls.clone(),
                tool_call_id: n.tool_call_id.clone(),
            }
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_draws_branches_depth_first_and_paths_run_root_first() {
        let conv = Conversation {
            id: 1,
            title: String::new(),
            system_prompt: String::new(),
            tools: None,
            settings: None,
            active_root_id: Some(1),
            created_at: 0,
            updated_at: 0,
        };
        let node = |id, parent| Node {
            id,
            parent_id: parent,
            ..Node::new(1, Role::User, "")
        };
        let nodes = vec![
            node(1, None),
            node(2, Some(1)),
            node(3, Some(1)),
            node(4, Some(2)),
        ];
        let t = Tree::new(&conv, &nodes);
        let drawn: Vec<(NodeId, String)> = t
            .outline()
            .into_iter()
            .map(|(i, g)| (nodes[i].id, g))
            .collect();
        assert_eq!(
            drawn,
            vec![
                (1, "└─ ".to_string()),
                (2, "   ├─ ".to_string()),
                (4, "   │  └─ ".to_string()),
                (3, "   └─ ".to_string()),
            ]
        );
        assert_eq!(t.path(3), vec![0, 1, 3]);
        assert_eq!(t.depth(3), 2);
        assert_eq!(t.depth(0), 0);
    }
}
