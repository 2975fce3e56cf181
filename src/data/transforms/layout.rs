//! Joint layouts and their bone pairs (`pyskl/datasets/pipelines/pose_related.py`, `JointToBone`).

/// A skeleton layout, chosen from the joint count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Kinect v2, 25 joints (NTU RGB+D).
    NtuRgbD,
    /// COCO, 17 joints (HRNet 2D files).
    Coco,
    /// OpenPose, 18 joints.
    OpenPose,
}

impl Layout {
    pub fn from_joints(joints: usize) -> Option<Layout> {
        match joints {
            25 => Some(Layout::NtuRgbD),
            17 => Some(Layout::Coco),
            18 => Some(Layout::OpenPose),
            _ => None,
        }
    }

    pub fn joints(self) -> usize {
        match self {
            Layout::NtuRgbD => 25,
            Layout::Coco => 17,
            Layout::OpenPose => 18,
        }
    }

    /// PYSKL's name (`nturgb+d`, `coco`, `openpose`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::NtuRgbD => "nturgb+d",
            Layout::Coco => "coco",
            Layout::OpenPose => "openpose",
        }
    }

    /// `(v1, v2)`: the bone of joint v1 is `joint[v1] − joint[v2]`; (v, v) gives a zero bone.
    pub fn bone_pairs(self) -> &'static [(usize, usize)] {
        match self {
            Layout::NtuRgbD => &[
                (0, 1),
                (1, 20),
                (2, 20),
                (3, 2),
                (4, 20),
                (5, 4),
                (6, 5),
                (7, 6),
                (8, 20),
                (9, 8),
                (10, 9),
                (11, 10),
                (12, 0),
                (13, 12),
                (14, 13),
                (15, 14),
                (16, 0),
                (17, 16),
                (18, 17),
                (19, 18),
                (21, 22),
                (20, 20),
                (22, 7),
                (23, 24),
                (24, 11),
            ],
            Layout::Coco => &[
                (0, 0),
                (1, 0),
                (2, 0),
                (3, 1),
                (4, 2),
                (5, 0),
                (6, 0),
                (7, 5),
                (8, 6),
                (9, 7),
                (10, 8),
                (11, 0),
                (12, 0),
                (13, 11),
                (14, 12),
                (15, 13),
                (16, 14),
            ],
            Layout::OpenPose => &[
                (0, 0),
                (1, 0),
                (2, 1),
                (3, 2),
                (4, 3),
                (5, 1),
                (6, 5),
                (7, 6),
                (8, 2),
                (9, 8),
                (10, 9),
                (11, 5),
                (12, 11),
                (13, 12),
                (14, 0),
                (15, 0),
                (16, 14),
                (17, 15),
            ],
        }
    }

    /// Whether a third channel is a confidence score (averaged, not differenced, in bones and
    /// motion): true for the 2D layouts.
    pub fn third_channel_is_score(self) -> bool {
        !matches!(self, Layout::NtuRgbD)
    }
}
