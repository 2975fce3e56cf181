//! Where divergent lanes of a warp meet again: the immediate post-dominator of the branch's basic
//! block (the first instruction every path from the branch must reach), found on the kernel's
//! control-flow graph with the iterative dominator algorithm of Cooper, Harvey and Kennedy run on
//! the reversed graph.

use super::decode::EXIT;
use super::ir::{Inst, Op};

/// The basic blocks of `code`: each block's first instruction, and each block's successors as
/// block indices, where the index `starts.len()` stands for the kernel's exit.
pub fn basic_blocks(code: &[Inst]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let n = code.len();
    let mut leader = vec![false; n];
    if n > 0 {
        leader[0] = true;
    }
    for (i, inst) in code.iter().enumerate() {
        match inst.op {
            Op::Bra { target, .. } => {
                leader[target as usize] = true;
                if i + 1 < n {
                    leader[i + 1] = true;
                }
            }
            Op::Exit | Op::Trap if i + 1 < n => leader[i + 1] = true,
            _ => {}
        }
    }
    let starts: Vec<usize> = (0..n).filter(|&i| leader[i]).collect();
    let mut block_of = vec![0usize; n];
    for (b, &s) in starts.iter().enumerate() {
        let end = starts.get(b + 1).copied().unwrap_or(n);
        block_of[s..end].fill(b);
    }
    let exit = starts.len();
    let succ = (0..starts.len())
        .map(|b| {
            let last = starts.get(b + 1).copied().unwrap_or(n) - 1;
            let next = if last + 1 < n { block_of[last + 1] } else { exit };
            let inst = &code[last];
            let mut out = Vec::with_capacity(2);
            match inst.op {
                Op::Bra { target, .. } => {
                    out.push(block_of[target as usize]);
                    if inst.guard.is_some() {
                        out.push(next);
                    }
                }
                Op::Exit | Op::Trap => {
                    out.push(exit);
                    if inst.guard.is_some() {
                        out.push(next);
                    }
                }
                _ => out.push(next),
            }
            out
        })
        .collect();
    (starts, succ)
}

/// For every instruction, the reconvergence point of a divergent branch there (an instruction
/// index or `EXIT`); `EXIT` for instructions that are not branches.
pub fn reconvergence_points(code: &[Inst]) -> Vec<u32> {
    let mut points = vec![EXIT; code.len()];
    if code.is_empty() {
        return points;
    }
    let (starts, succ) = basic_blocks(code);
    let exit = starts.len();
    let ipdom = post_dominators(&succ, exit);
    let mut block = 0;
    for (i, inst) in code.iter().enumerate() {
        while block + 1 < starts.len() && starts[block + 1] <= i {
            block += 1;
        }
        if let Op::Bra { .. } = inst.op {
            points[i] = match ipdom[block] {
                Some(p) if p != exit => starts[p] as u32,
                _ => EXIT,
            };
        }
    }
    points
}

/// Immediate post-dominators of `succ`'s nodes (`exit` is the sink); `None` for nodes from which
/// the exit cannot be reached.
fn post_dominators(succ: &[Vec<usize>], exit: usize) -> Vec<Option<usize>> {
    let nodes = succ.len() + 1;
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for (b, ss) in succ.iter().enumerate() {
        for &s in ss {
            pred[s].push(b);
        }
    }
    // reverse postorder of the reversed graph from the exit (iterative DFS)
    let mut order = Vec::with_capacity(nodes);
    let mut seen = vec![false; nodes];
    let mut stack = vec![(exit, 0usize)];
    seen[exit] = true;
    while let Some((node, child)) = stack.pop() {
        if child < pred[node].len() {
            stack.push((node, child + 1));
            let next = pred[node][child];
            if !seen[next] {
                seen[next] = true;
                stack.push((next, 0));
            }
        } else {
            order.push(node);
        }
    }
    order.reverse();
    let mut rank = vec![usize::MAX; nodes];
    for (i, &node) in order.iter().enumerate() {
        rank[node] = i;
    }
    let mut idom: Vec<Option<usize>> = vec![None; nodes];
    idom[exit] = Some(exit);
    let intersect = |idom: &[Option<usize>], mut a: usize, mut b: usize| {
        while a != b {
            while rank[a] > rank[b] {
                a = idom[a].expect("processed");
            }
            while rank[b] > rank[a] {
                b = idom[b].expect("processed");
            }
        }
        a
    };
    let mut changed = true;
    while changed {
        changed = false;
        for &node in order.iter().skip(1) {
            // "predecessors" in the reversed graph are the node's successors
            let mut new: Option<usize> = None;
            let outs: &[usize] = if node == exit { &[] } else { &succ[node] };
            for &s in outs {
                if idom[s].is_some() {
                    new = Some(match new {
                        None => s,
                        Some(cur) => intersect(&idom, s, cur),
                    });
                }
            }
            if new.is_some() && idom[node] != new {
                idom[node] = new;
                changed = true;
            }
        }
    }
    idom.truncate(succ.len());
    idom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_reconverges_at_the_join() {
        // 0 -> {1, 2} -> 3 -> exit
        let succ = vec![vec![1, 2], vec![3], vec![3], vec![4]];
        let ipdom = post_dominators(&succ, 4);
        assert_eq!(ipdom, vec![Some(3), Some(3), Some(3), Some(4)]);
    }

    #[test]
    fn loop_exit_post_dominates_the_loop() {
        // 0 -> 1; 1 -> {1, 2}; 2 -> exit
        let succ = vec![vec![1], vec![1, 2], vec![3]];
        let ipdom = post_dominators(&succ, 3);
        assert_eq!(ipdom, vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn an_early_exit_reconverges_at_the_end() {
        // 0 -> {exit, 1}; 1 -> exit
        let succ = vec![vec![2, 1], vec![2]];
        let ipdom = post_dominators(&succ, 2);
        assert_eq!(ipdom, vec![Some(2), Some(2)]);
    }

    #[test]
    fn an_endless_loop_has_no_post_dominator() {
        // 0 -> {1, 2}; 1 -> 1; 2 -> exit
        let succ = vec![vec![1, 2], vec![1], vec![3]];
        let ipdom = post_dominators(&succ, 3);
        assert_eq!(ipdom[1], None);
        // the lanes that leave the loop's way wait at 2 (the others never come back)
        assert_eq!(ipdom[0], Some(2));
    }
}
