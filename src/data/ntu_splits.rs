//! NTU RGB+D sample names (`SsssCcccPpppRrrrAaaa`) and the benchmark splits.

/// The fields of an NTU sample name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtuName {
    pub setup: u16,
    pub camera: u16,
    pub performer: u16,
    pub replication: u16,
    pub action: u16,
}

impl NtuName {
    /// Parses `SsssCcccPpppRrrrAaaa` (exactly 20 characters, 3 digits per field).
    pub fn parse(name: &str) -> Option<NtuName> {
        let b = name.as_bytes();
        if b.len() != 20 {
            return None;
        }
        let field = |i: usize, tag: u8| -> Option<u16> {
            let chunk = &b[i * 4..i * 4 + 4];
            if chunk[0] != tag || !chunk[1..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(&chunk[1..]).ok()?.parse().ok()
        };
        Some(NtuName {
            setup: field(0, b'S')?,
            camera: field(1, b'C')?,
            performer: field(2, b'P')?,
            replication: field(3, b'R')?,
            action: field(4, b'A')?,
        })
    }

    /// The 0-based class label, `A − 1`; `None` for `A000` (actions are numbered from 1).
    pub fn label(&self) -> Option<u32> {
        (self.action as u32).checked_sub(1)
    }
}

/// NTU60 cross-subject training performers (also the first 20 of NTU120's list).
pub const NTU60_XSUB_TRAIN: [u16; 20] = [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38];

/// NTU120 cross-subject training performers (53).
pub const NTU120_XSUB_TRAIN: [u16; 53] = [
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54, 55, 56,
    57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
];

/// A benchmark: a rule splitting samples into train and val.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Benchmark {
    /// NTU60 cross-subject.
    Ntu60XSub,
    /// NTU60 cross-view: train on cameras 2 and 3.
    Ntu60XView,
    /// NTU120 cross-subject.
    Ntu120XSub,
    /// NTU120 cross-setup: train on even setups.
    Ntu120XSet,
}

impl Benchmark {
    /// The benchmarks of a dataset: NTU60 if every setup is ≤ 17, else NTU120.
    pub fn for_dataset(ntu120: bool) -> [Benchmark; 2] {
        if ntu120 {
            [Benchmark::Ntu120XSub, Benchmark::Ntu120XSet]
        } else {
            [Benchmark::Ntu60XSub, Benchmark::Ntu60XView]
        }
    }

    /// PYSKL's split-name prefix (`xsub`, `xview`, `xset`).
    pub fn prefix(self) -> &'static str {
        match self {
            Benchmark::Ntu60XSub | Benchmark::Ntu120XSub => "xsub",
            Benchmark::Ntu60XView => "xview",
            Benchmark::Ntu120XSet => "xset",
        }
    }

    pub fn is_train(self, name: &NtuName) -> bool {
        match self {
            Benchmark::Ntu60XSub => NTU60_XSUB_TRAIN.contains(&name.performer),
            Benchmark::Ntu120XSub => NTU120_XSUB_TRAIN.contains(&name.performer),
            Benchmark::Ntu60XView => name.camera != 1,
            Benchmark::Ntu120XSet => name.setup % 2 == 0,
        }
    }
}

/// Sample names in a missing-skeleton list (`NTU_RGBD*_samples_with_missing_skeletons.txt` or
/// PYSKL's `ntu120_missing.txt`): only lines that are exactly a sample name count, so the
/// upstream files' prose header is ignored.
pub fn parse_missing_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| NtuName::parse(l).is_some())
        .map(str::to_string)
        .collect()
}
