//! The publication schedule: a petgraph DAG of `publish_after` edges.
//!
//! An edge `u -> v` means v's advisory may not publish before u's. The graph is built over
//! every repository of the workflow, so that ordering survives through repositories outside a
//! case's scope, and is queried for the repositories in scope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef, Reversed};

use crate::ids::RepoId;
use crate::workflow::Workflow;

/// A dependency cycle, in edge order, first repository repeated at the end when printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Cycle {
    /// The repositories on the cycle.
    pub repos: Vec<RepoId>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`publish_after` has a dependency cycle: ")?;
        for r in &self.repos {
            write!(f, "{r} -> ")?;
        }
        match self.repos.first() {
            Some(first) => write!(f, "{first}"),
            None => Ok(()),
        }
    }
}

/// The dependency graph of a workflow.
#[derive(Debug, Clone)]
pub struct Schedule {
    graph: DiGraph<RepoId, ()>,
    index: BTreeMap<RepoId, NodeIndex>,
}

impl Schedule {
    /// Builds the graph from `repo -> publish_after` lists, rejecting a cycle by naming it.
    pub fn new<'a>(
        edges: impl IntoIterator<Item = (&'a RepoId, &'a BTreeSet<RepoId>)>,
    ) -> Result<Schedule, Cycle> {
        let edges: BTreeMap<&RepoId, &BTreeSet<RepoId>> = edges.into_iter().collect();
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        // Two passes over sorted input, so that node indices are deterministic.
        let mut nodes: BTreeSet<&RepoId> = edges.keys().copied().collect();
        nodes.extend(edges.values().flat_map(|s| s.iter()));
        for r in nodes {
            index.insert(r.clone(), graph.add_node(r.clone()));
        }
        for (repo, after) in &edges {
            for dep in after.iter() {
                if let (Some(&u), Some(&v)) = (index.get(dep), index.get(*repo)) {
                    graph.add_edge(u, v, ());
                }
            }
        }
        let schedule = Schedule { graph, index };
        match schedule.find_cycle() {
            Some(repos) => Err(Cycle { repos }),
            None => Ok(schedule),
        }
    }

    /// A schedule with no repositories and no edges.
    pub fn empty() -> Schedule {
        Schedule {
            graph: DiGraph::new(),
            index: BTreeMap::new(),
        }
    }

    /// The schedule of a validated workflow.
    pub fn for_workflow(workflow: &Workflow) -> Result<Schedule, Cycle> {
        Self::new(workflow.repos.iter().map(|(r, s)| (r, &s.publish_after)))
    }

    fn find_cycle(&self) -> Option<Vec<RepoId>> {
        let mut best: Option<Vec<RepoId>> = None;
        for scc in tarjan_scc(&self.graph) {
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *members.iter().min_by_key(|n| &self.graph[**n])?;
            let self_loop = self.graph.contains_edge(start, start);
            if members.len() < 2 && !self_loop {
                continue;
            }
            // Walk inside the component from the smallest repository back to it.
            let cycle = if self_loop {
                vec![start]
            } else {
                self.path_within(start, &members)?
            };
            let repos: Vec<RepoId> = cycle.iter().map(|n| self.graph[*n].clone()).collect();
            if best.as_ref().is_none_or(|b| repos < *b) {
                best = Some(repos);
            }
        }
        best
    }

    /// A simple cycle through `start` using only nodes of `members` (a strongly connected
    /// component), found by breadth-first search for the shortest way back.
    fn path_within(
        &self,
        start: NodeIndex,
        members: &BTreeSet<NodeIndex>,
    ) -> Option<Vec<NodeIndex>> {
        let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self
                .graph
                .edges(n)
                .map(|e| e.target())
                .filter(|t| members.contains(t))
                .collect();
            next.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
            for t in next {
                if t == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while let Some(&p) = parent.get(&cur) {
                        path.push(p);
                        cur = p;
                    }
                    path.reverse();
                    return Some(path);
                }
                if t != start && !parent.contains_key(&t) {
                    parent.insert(t, n);
                    queue.push_back(t);
                }
            }
        }
        None
    }

    /// Every repository that must publish before `repo`, directly or through others.
    pub fn upstream(&self, repo: &RepoId) -> BTreeSet<RepoId> {
        self.reach(repo, true)
    }

    /// Every repository that must publish after `repo`, directly or through others.
    pub fn downstream(&self, repo: &RepoId) -> BTreeSet<RepoId> {
        self.reach(repo, false)
    }

    fn reach(&self, repo: &RepoId, up: bool) -> BTreeSet<RepoId> {
        let Some(&start) = self.index.get(repo) else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        if up {
            let rev = Reversed(&self.graph);
            let mut dfs = Dfs::new(rev, start);
            while let Some(n) = dfs.next(rev) {
                out.insert(self.graph[n].clone());
            }
        } else {
            let mut dfs = Dfs::new(&self.graph, start);
            while let Some(n) = dfs.next(&self.graph) {
                out.insert(self.graph[n].clone());
            }
        }
        out.remove(repo);
        out
    }

    /// Topological waves of `set`: wave 0 has no upstream in `set`; a repository's wave is one
    /// more than the latest wave of its upstreams in `set`, counting paths through repositories
    /// outside `set`. Each wave is sorted.
    pub fn waves(&self, set: &BTreeSet<RepoId>) -> Vec<Vec<RepoId>> {
        let mut level: BTreeMap<&RepoId, usize> = BTreeMap::new();
        // Repeatedly assign levels; the graph is acyclic, so this settles within |set| rounds.
        let ups: BTreeMap<&RepoId, BTreeSet<RepoId>> = set
            .iter()
            .map(|r| (r, self.upstream(r).intersection(set).cloned().collect()))
            .collect();
        let mut remaining: Vec<&RepoId> = set.iter().collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|r| {
                let deps = &ups[*r];
                if deps.iter().all(|d| level.contains_key(d)) {
                    let l = deps.iter().map(|d| level[d] + 1).max().unwrap_or(0);
                    level.insert(r, l);
                    false
                } else {
                    true
                }
            });
            if remaining.len() == before {
                break; // unreachable for an acyclic graph; never loop forever
            }
        }
        let mut waves: Vec<Vec<RepoId>> = Vec::new();
        for (r, l) in level {
            if waves.len() <= l {
                waves.resize(l + 1, Vec::new());
            }
            waves[l].push(r.clone());
        }
        waves
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(s: &str) -> RepoId {
        s.parse().unwrap()
    }

    fn sched(edges: &[(&str, &[&str])]) -> Result<Schedule, Cycle> {
        let owned: Vec<(RepoId, BTreeSet<RepoId>)> = edges
            .iter()
            .map(|(a, bs)| (r(a), bs.iter().map(|b| r(b)).collect()))
            .collect();
        Schedule::new(owned.iter().map(|(a, b)| (a, b)))
    }

    #[test]
    fn waves_follow_edges_even_through_repositories_out_of_scope() {
        let s = sched(&[
            ("o/a", &[]),
            ("o/b", &["o/a"]),
            ("o/c", &["o/b"]),
            ("o/d", &[]),
        ])
        .unwrap();
        let all: BTreeSet<RepoId> = ["o/a", "o/b", "o/c", "o/d"].map(r).into();
        assert_eq!(
            s.waves(&all),
            vec![vec![r("o/a"), r("o/d")], vec![r("o/b")], vec![r("o/c")]]
        );
        let without_b: BTreeSet<RepoId> = ["o/a", "o/c"].map(r).into();
        assert_eq!(s.waves(&without_b), vec![vec![r("o/a")], vec![r("o/c")]]);
        assert_eq!(s.upstream(&r("o/c")), ["o/a", "o/b"].map(r).into());
        assert_eq!(s.downstream(&r("o/a")), ["o/b", "o/c"].map(r).into());
        assert!(s.waves(&BTreeSet::new()).is_empty());
    }

    #[test]
    fn cycles_are_named_deterministically() {
        let e = sched(&[("o/a", &["o/c"]), ("o/b", &["o/a"]), ("o/c", &["o/b"])]).unwrap_err();
        assert_eq!(e.repos, vec![r("o/a"), r("o/b"), r("o/c")]);
        assert!(e.to_string().ends_with("o/a -> o/b -> o/c -> o/a"));
    }
}
