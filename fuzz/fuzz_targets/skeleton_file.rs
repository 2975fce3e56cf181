//! Bytes → the NTU `.skeleton` reader (text parsing, PYSKL's body selection, float16 rounding) →
//! the dataset pipeline.

#![no_main]

mod common;

use std::path::Path;

use leangcn::data::annotation::AnnotationFile;
use leangcn::data::ntu_skeleton::skeleton_annotation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("S001C001P001R001A001.skeleton");
    match skeleton_annotation(path, bytes) {
        Ok(Some(annotation)) => {
            let file = AnnotationFile {
                path: path.to_path_buf(),
                splits: vec![("all".into(), vec![annotation.sequence.frame_dir.clone()])],
                annotations: vec![annotation],
            };
            common::load_every_clip(&file);
        }
        Ok(None) => {}
        Err(e) => assert!(e.to_string().starts_with("S001C001P001R001A001.skeleton: "), "{e}"),
    }
});
