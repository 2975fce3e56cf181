//! Skeleton graphs and their adjacency subsets, exactly as PYSKL's `Graph` builds them.
//!
//! `A[k, v, w]` is indexed by subset k, input joint v and output joint w; normalisation is per output
//! joint (column). Edges `(i, j)` of a layout run inward, from joint i to joint j nearer the centre.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A skeleton layout: joint count, centre joint and inward edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layout {
    /// NTU RGB+D, 25 joints (Kinect v2).
    #[serde(rename = "nturgb+d")]
    NtuRgbd,
    /// COCO keypoints, 17 joints (HRNet 2D).
    #[serde(rename = "coco")]
    Coco,
    /// OpenPose, 18 joints (Kinetics skeletons).
    #[serde(rename = "openpose")]
    OpenPose,
}

/// How the adjacency subsets are built from the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphMode {
    /// ST-GCN's spatial partition (root, closer, further) with PYSKL's 1-hop centre distance.
    StgcnSpatial,
    /// Identity, inward and outward normalised adjacency (ST-GCN++ and others).
    Spatial,
    /// One subset: the unnormalised symmetric adjacency.
    BinaryAdj,
    /// `num_filter` random subsets `N(init_off, init_std²)`.
    Random,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::NtuRgbd, Layout::Coco, Layout::OpenPose];

    pub fn name(self) -> &'static str {
        match self {
            Layout::NtuRgbd => "nturgb+d",
            Layout::Coco => "coco",
            Layout::OpenPose => "openpose",
        }
    }

    pub fn num_joints(self) -> usize {
        match self {
            Layout::NtuRgbd => 25,
            Layout::Coco => 17,
            Layout::OpenPose => 18,
        }
    }

    pub fn center(self) -> usize {
        match self {
            Layout::NtuRgbd => 20,
            Layout::Coco => 0,
            Layout::OpenPose => 1,
        }
    }

    /// Inward edges `(i, j)`, 0-based, j nearer the centre.
    pub fn inward_edges(self) -> Vec<(usize, usize)> {
        match self {
            Layout::NtuRgbd => [
                (1, 2),
                (2, 21),
                (3, 21),
                (4, 3),
                (5, 21),
                (6, 5),
                (7, 6),
                (8, 7),
                (9, 21),
                (10, 9),
                (11, 10),
                (12, 11),
                (13, 1),
                (14, 13),
                (15, 14),
                (16, 15),
                (17, 1),
                (18, 17),
                (19, 18),
                (20, 19),
                (22, 8),
                (23, 8),
                (24, 12),
                (25, 12),
            ]
            .iter()
            .map(|&(i, j)| (i - 1, j - 1))
            .collect(),
            Layout::Coco => vec![
                (15, 13),
                (13, 11),
                (16, 14),
                (14, 12),
                (11, 5),
                (12, 6),
                (9, 7),
                (7, 5),
                (10, 8),
                (8, 6),
                (5, 0),
                (6, 0),
                (1, 0),
                (3, 1),
                (2, 0),
                (4, 2),
            ],
            Layout::OpenPose => vec![
                (4, 3),
                (3, 2),
                (7, 6),
                (6, 5),
                (13, 12),
                (12, 11),
                (10, 9),
                (9, 8),
                (11, 5),
                (8, 2),
                (5, 1),
                (2, 1),
                (0, 1),
                (15, 0),
                (14, 0),
                (17, 15),
                (16, 14),
            ],
        }
    }

    /// The layout whose joint count is `v`, if any.
    pub fn from_num_joints(v: usize) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.num_joints() == v)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| Error::config(format!("unknown layout '{s}' (expected nturgb+d, coco or openpose)")))
    }
}

impl GraphMode {
    pub fn name(self) -> &'static str {
        match self {
            GraphMode::StgcnSpatial => "stgcn_spatial",
            GraphMode::Spatial => "spatial",
            GraphMode::BinaryAdj => "binary_adj",
            GraphMode::Random => "random",
        }
    }
}

impl FromStr for GraphMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [
            GraphMode::StgcnSpatial,
            GraphMode::Spatial,
            GraphMode::BinaryAdj,
            GraphMode::Random,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            Error::config(format!(
                "unknown graph mode '{s}' (expected stgcn_spatial, spatial, binary_adj or random)"
            ))
        })
    }
}

/// Adjacency subsets `[k][v][w]` in f64, as PYSKL's numpy code computes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjacency {
    pub k: usize,
    pub v: usize,
    /// `[k, v, w]` row-major.
    pub data: Vec<f64>,
}

impl Adjacency {
    /// Builds the graph. `seed` is used by [`GraphMode::Random`] only (PYSKL draws it from NumPy's
    /// global RNG; ours is a fixed, seeded stream, so random graphs are reproducible but not NumPy's).
    pub fn build(layout: Layout, mode: GraphMode, seed: u64) -> Adjacency {
        let v = layout.num_joints();
        let inward = layout.inward_edges();
        let outward: Vec<_> = inward.iter().map(|&(i, j)| (j, i)).collect();
        match mode {
            GraphMode::StgcnSpatial => stgcn_spatial(layout, &inward),
            GraphMode::Spatial => {
                let mut data = identity(v);
                data.extend(normalize_digraph(&edge2mat(&inward, v), v));
                data.extend(normalize_digraph(&edge2mat(&outward, v), v));
                Adjacency { k: 3, v, data }
            }
            GraphMode::BinaryAdj => {
                let neighbor: Vec<_> = inward.iter().chain(&outward).copied().collect();
                Adjacency {
                    k: 1,
                    v,
                    data: edge2mat(&neighbor, v),
                }
            }
            GraphMode::Random => {
                // PYSKL: randn(num_filter=3, V, V) * init_std(0.02) + init_off(0.04)
                let mut rng = crate::model::init::InitRng::new(seed);
                let data = (0..3 * v * v).map(|_| rng.normal() * 0.02 + 0.04).collect();
                Adjacency { k: 3, v, data }
            }
        }
    }

    /// Non-zero entries per subset.
    pub fn nonzeros(&self) -> Vec<usize> {
        self.data
            .chunks(self.v * self.v)
            .map(|s| s.iter().filter(|&&a| a != 0.0).count())
            .collect()
    }
}

fn identity(v: usize) -> Vec<f64> {
    let mut m = vec![0.0; v * v];
    for i in 0..v {
        m[i * v + i] = 1.0;
    }
    m
}

/// PYSKL's `edge2mat`: `M[j, i] = 1` for each edge `(i, j)`.
fn edge2mat(edges: &[(usize, usize)], v: usize) -> Vec<f64> {
    let mut m = vec![0.0; v * v];
    for &(i, j) in edges {
        m[j * v + i] = 1.0;
    }
    m
}

/// `A · diag(1/colsum)`; zero columns stay zero.
fn normalize_digraph(a: &[f64], v: usize) -> Vec<f64> {
    let col_sum: Vec<f64> = (0..v).map(|w| (0..v).map(|u| a[u * v + w]).sum()).collect();
    let mut out = a.to_vec();
    for u in 0..v {
        for w in 0..v {
            if col_sum[w] > 0.0 {
                out[u * v + w] = a[u * v + w] / col_sum[w];
            }
        }
    }
    out
}

/// Hop distance with `max_hop = 1`: 0 on the diagonal, 1 for neighbours, `u32::MAX` (∞) otherwise.
fn hop_distance(edges: &[(usize, usize)], v: usize) -> Vec<u32> {
    let mut hop = vec![u32::MAX; v * v];
    for &(i, j) in edges {
        hop[i * v + j] = 1;
        hop[j * v + i] = 1;
    }
    for i in 0..v {
        hop[i * v + i] = 0;
    }
    hop
}

/// ST-GCN's spatial partition: subset 0 = root (hop 0), 1 = closer-or-equal to the centre, 2 = further.
/// The centre distance is capped at one hop (∞ ≥ ∞ counts as "close"), as in PYSKL.
fn stgcn_spatial(layout: Layout, inward: &[(usize, usize)]) -> Adjacency {
    let v = layout.num_joints();
    let center = layout.center();
    let hop = hop_distance(inward, v);
    let adj: Vec<f64> = hop.iter().map(|&h| if h <= 1 { 1.0 } else { 0.0 }).collect();
    let norm = normalize_digraph(&adj, v);
    let mut root = vec![0.0; v * v];
    let mut close = vec![0.0; v * v];
    let mut further = vec![0.0; v * v];
    for h in 0..=1u32 {
        for i in 0..v {
            for j in 0..v {
                if hop[j * v + i] != h {
                    continue;
                }
                let target = if hop[j * v + center] >= hop[i * v + center] {
                    if h == 0 {
                        &mut root
                    } else {
                        &mut close
                    }
                } else {
                    &mut further
                };
                target[j * v + i] = norm[j * v + i];
            }
        }
    }
    let mut data = root;
    data.extend(close);
    data.extend(further);
    Adjacency { k: 3, v, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stgcn_spatial_nonzeros_match_pyskl() {
        let cases = [
            (Layout::NtuRgbd, [25, 40, 8]),
            (Layout::Coco, [17, 22, 10]),
            (Layout::OpenPose, [18, 25, 9]),
        ];
        for (layout, nnz) in cases {
            let a = Adjacency::build(layout, GraphMode::StgcnSpatial, 0);
            assert_eq!(a.nonzeros(), nnz, "{layout}");
            // every output joint averages its closed neighbourhood: columns of Σ_k A_k sum to 1
            for w in 0..a.v {
                let s: f64 = (0..a.k)
                    .flat_map(|k| (0..a.v).map(move |u| (k, u)))
                    .map(|(k, u)| a.data[k * a.v * a.v + u * a.v + w])
                    .sum();
                assert!((s - 1.0).abs() < 1e-15, "{layout} column {w} sums to {s}");
            }
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!("coco".parse::<Layout>().unwrap(), Layout::Coco);
        assert!("kinect"
            .parse::<Layout>()
            .unwrap_err()
            .to_string()
            .contains("unknown layout 'kinect'"));
        assert_eq!("random".parse::<GraphMode>().unwrap(), GraphMode::Random);
    }
}
