//! The batch loader: a seeded per-epoch shuffle, clips prepared in parallel (rayon) on a background
//! thread, and a bounded queue of ready batches ahead of the training step.
//!
//! The order of epoch `e` is a pure function of (seed, e), and clip `i` of that epoch is loaded with
//! the seed derived from (seed, e, i), so a run resumed at batch `b` of epoch `e` sees exactly the
//! batches an uninterrupted run would have seen.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::{ClipDataset, ClipShape};
use crate::model::init::InitRng;
use crate::Result;

/// Batches prepared ahead of the consumer.
const PREFETCH: usize = 2;

/// One batch: `x` is `[N, M, T, V, C]` f32.
#[derive(Clone, Debug)]
pub struct Batch {
    pub n: usize,
    pub shape: ClipShape,
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
    /// Dataset indices of the clips, in batch order.
    pub indices: Vec<usize>,
}

impl Batch {
    /// `[N, M, T, V, C]`.
    pub fn dims(&self) -> [usize; 5] {
        [
            self.n,
            self.shape.persons,
            self.shape.frames,
            self.shape.joints,
            self.shape.channels,
        ]
    }
}

/// Yields the batches of a dataset, epoch by epoch.
pub struct BatchLoader {
    data: Arc<dyn ClipDataset>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    pool: Arc<rayon::ThreadPool>,
}

impl BatchLoader {
    /// `workers` threads prepare clips (0: one per core).
    pub fn new(
        data: Arc<dyn ClipDataset>,
        batch_size: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
        workers: usize,
    ) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("leangcn-data-{i}"))
            .build()
            .expect("a thread pool for the data loader");
        Self {
            data,
            batch_size: batch_size.max(1),
            shuffle,
            drop_last,
            seed,
            pool: Arc::new(pool),
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.data.len() / self.batch_size
        } else {
            self.data.len().div_ceil(self.batch_size)
        }
    }

    /// The dataset order of epoch `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        if self.shuffle {
            let mut rng = InitRng::new(self.seed ^ (epoch as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
            for i in (1..order.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    /// The batches of `epoch` from batch `start_batch` on, prepared in the background.
    pub fn epoch(&self, epoch: usize, start_batch: usize) -> EpochBatches {
        let order = self.order(epoch);
        let batches: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .take(self.batches_per_epoch())
            .skip(start_batch)
            .map(<[usize]>::to_vec)
            .collect();
        let (tx, rx) = sync_channel(PREFETCH);
        let data = self.data.clone();
        let pool = self.pool.clone();
        let seed = self.seed;
        let worker = std::thread::Builder::new()
            .name("leangcn-loader".into())
            .spawn(move || {
                for indices in batches {
                    let batch = pool.install(|| load_batch(data.as_ref(), &indices, seed, epoch));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return; // the consumer stopped listening, or the epoch cannot go on
                    }
                }
            })
            .expect("a data loader thread");
        EpochBatches {
            rx,
            worker: Some(worker),
        }
    }
}

/// The seed clip `index` is loaded with in `epoch`.
fn clip_seed(seed: u64, epoch: usize, index: usize) -> u64 {
    seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

fn load_batch(data: &dyn ClipDataset, indices: &[usize], seed: u64, epoch: usize) -> Result<Batch> {
    let shape = data.clip_shape();
    let per = shape.len();
    let mut x = vec![0.0f32; indices.len() * per];
    let labels = x
        .par_chunks_mut(per.max(1))
        .zip(indices.par_iter())
        .map(|(out, &i)| data.load_clip(i, clip_seed(seed, epoch, i), out))
        .collect::<Result<Vec<u32>>>()?;
    Ok(Batch {
        n: indices.len(),
        shape,
        x,
        labels,
        indices: indices.to_vec(),
    })
}

/// The batches of one epoch; dropping it stops the background work.
pub struct EpochBatches {
    rx: Receiver<Result<Batch>>,
    worker: Option<JoinHandle<()>>,
}

impl Iterator for EpochBatches {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        self.rx.recv().ok()
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        // unblock a worker waiting to send, then wait for it
        while self.rx.try_recv().is_ok() {}
        if let Some(worker) = self.worker.take() {
            drop(std::mem::replace(&mut self.rx, sync_channel(0).1));
            let _ = worker.join();
        }
    }
}
