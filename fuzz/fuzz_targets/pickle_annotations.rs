//! Bytes → the PYSKL annotation reader (pickle opcodes, NumPy arrays, sample validation) → every
//! split through the dataset pipeline.

#![no_main]

mod common;

use std::path::Path;

use leangcn::data::annotation::AnnotationFile;
use leangcn::data::pickle::Pickle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.pkl");
    let file = Pickle::parse(path, bytes.to_vec()).and_then(|p| AnnotationFile::from_pickle(&p));
    match file {
        Ok(file) => common::load_every_clip(&file),
        Err(e) => assert!(e.to_string().starts_with("fuzz.pkl: "), "{e}"),
    }
});
