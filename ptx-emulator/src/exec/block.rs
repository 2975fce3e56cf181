//! One thread block: its warps run in turn, each until it reaches `bar.sync` or exits; when every
//! warp that has not exited waits at a barrier, the barrier opens (a new barrier epoch) and they
//! run on. A worker thread keeps its buffers (shared memory, its shadow, the warps) from block to
//! block, so a block allocates nothing.

use super::check::SharedWord;
use super::warp::{Ctx, Stop, Warp};
use super::{Fault, Launch};

/// The state of the block being run that its warps share.
pub(super) struct BlockState {
    pub index: [u32; 3],
    /// Linear block index in the grid.
    pub linear: u64,
    /// This block's number on its worker (never 0): stamps its shared-memory shadow.
    pub serial: u32,
    pub barrier_epoch: u32,
    pub shared: Vec<u8>,
    /// Per 4-byte word of `shared`, when checked.
    pub shadow: Vec<SharedWord>,
    /// The first read of shared memory never written, reported at the next barrier (or the
    /// block's end) unless a race is found first.
    pub uninitialized_read: Option<Box<Fault>>,
}

/// A worker thread's reusable state.
pub(super) struct Worker {
    block: BlockState,
    warps: Vec<Warp>,
}

impl Worker {
    pub fn new(launch: &Launch) -> Self {
        let warps = launch.block_threads.div_ceil(32);
        Self {
            block: BlockState {
                index: [0; 3],
                linear: 0,
                serial: 0,
                barrier_epoch: 0,
                shared: vec![0; launch.shared_bytes],
                shadow: if launch.checks {
                    vec![SharedWord::default(); launch.shared_bytes.div_ceil(4)]
                } else {
                    Vec::new()
                },
                uninitialized_read: None,
            },
            warps: (0..warps).map(|w| Warp::new(w, launch.program)).collect(),
        }
    }

    /// Instructions executed by this worker's warps so far: (warp, lane) instructions.
    pub fn instructions(&self) -> (u64, u64) {
        self.warps.iter().fold((0, 0), |(w, l), warp| {
            (w + warp.warp_instructions, l + warp.lane_instructions)
        })
    }

    /// Runs block `linear` of the grid.
    pub fn run(&mut self, launch: &Launch, linear: u64) -> Result<(), Box<Fault>> {
        let [gx, gy, _] = launch.config.grid;
        let (gx, gy) = (u64::from(gx), u64::from(gy));
        let block = &mut self.block;
        block.index = [
            (linear % gx) as u32,
            ((linear / gx) % gy) as u32,
            (linear / (gx * gy)) as u32,
        ];
        block.linear = linear;
        block.serial = block.serial.checked_add(1).unwrap_or_else(|| {
            // a worker that ran 2^32 blocks starts its stamps over on a clean shadow
            block.shadow.fill(SharedWord::default());
            1
        });
        block.barrier_epoch = 0;
        // shared memory starts zeroed, so an unchecked run is deterministic
        block.shared.fill(0);
        let warps = self.warps.len() as u32;
        for warp in &mut self.warps {
            warp.reset(&launch.config, block.index, warps);
        }
        let mut exited = vec![false; self.warps.len()];
        loop {
            let mut waiting = 0;
            for (w, warp) in self.warps.iter_mut().enumerate() {
                if exited[w] {
                    continue;
                }
                let mut ctx = Ctx {
                    warp,
                    block,
                    launch,
                    pc: 0,
                };
                match ctx.run()? {
                    Stop::Exited => exited[w] = true,
                    Stop::Barrier(_) => waiting += 1,
                }
            }
            if let Some(fault) = block.uninitialized_read.take() {
                return Err(fault);
            }
            if waiting == 0 {
                return Ok(());
            }
            // every warp still running waits at a barrier: it opens
            block.barrier_epoch += 1;
        }
    }
}
