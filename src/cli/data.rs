//! `leangcn data inspect FILE|DIR` and `leangcn data convert DIR -o FILE`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::data::pyskl_dataset::{convert_skeleton_dir, inspect};
use crate::Result;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Summarise a PYSKL annotation pickle or a folder of NTU `.skeleton` files.
    Inspect { path: PathBuf },
    /// Convert a folder of NTU `.skeleton` files to a PYSKL annotation pickle.
    Convert {
        dir: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Inspect { path } => println!("{}", inspect(&path)?),
        DataCommand::Convert { dir, out } => {
            let skipped = convert_skeleton_dir(&dir, &out)?;
            if let Some(w) = skipped.warning(&dir) {
                eprintln!("{w}");
            }
            println!("wrote {}", out.display());
            println!("{}", inspect(&out)?);
        }
    }
    Ok(())
}
