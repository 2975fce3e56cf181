#!/usr/bin/env python3
"""Writes the small PYSKL-structured pickles in tests/fixtures/ (run from the repository root), or
in the directory given as the first argument.

Keypoint values are multiples of 1/16 in [-6.25, 6.25), exact in float16, so the Rust tests
recompute them: value(m, t, v, c) = ((m*31 + t*7 + v*3 + c) % 200 - 100) / 16.
"""
import os
import pickle
import sys

import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def keypoint(m, t, v, c, dtype, order):
    mm, tt, vv, cc = np.meshgrid(np.arange(m), np.arange(t), np.arange(v), np.arange(c), indexing="ij")
    x = (((mm * 31 + tt * 7 + vv * 3 + cc) % 200) - 100) / 16.0
    return np.array(x, dtype=dtype, order=order)


def ntu_file(dtype, order):
    annos = [
        dict(frame_dir="S001C001P001R001A001", label=0, keypoint=keypoint(2, 5, 25, 3, dtype, order), total_frames=5),
        dict(frame_dir="S001C002P002R001A002", label=np.int64(1), keypoint=keypoint(1, 7, 25, 3, dtype, order),
             total_frames=7),
        dict(frame_dir="S002C003P003R002A003", label=2, keypoint=keypoint(2, 3, 25, 3, dtype, order), total_frames=3),
    ]
    split = dict(xsub_train=["S001C001P001R001A001", "S002C003P003R002A003"], xsub_val=["S001C002P002R001A002"])
    return dict(split=split, annotations=annos)


def coco_file():
    kp = keypoint(1, 4, 17, 2, np.float16, "C") * 40 + 500
    score = (np.arange(68, dtype=np.float32).reshape(1, 4, 17) % 5 / 4).astype(np.float16)
    anno = dict(frame_dir="gym_0001", label=np.int64(98), img_shape=(720, 1280), original_shape=(720, 1280),
                total_frames=4, keypoint=kp.astype(np.float16), keypoint_score=score)
    return dict(split=dict(train=["gym_0001"], val=[]), annotations=[anno])


def dump(name, obj, protocol):
    with open(os.path.join(OUT, name), "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def main():
    os.makedirs(OUT, exist_ok=True)
    for protocol in (2, 4, 5):
        for dt, dname in ((np.float16, "f16"), (np.float32, "f32"), (np.float64, "f64")):
            for order in ("C", "F"):
                dump(f"ntu_p{protocol}_{dname}_{order}.pkl", ntu_file(dt, order), protocol)
    dump("coco_p2.pkl", coco_file(), 2)
    # The other NumPy major's module name (GLOBAL lines are newline-terminated in protocol 2).
    data = open(os.path.join(OUT, "ntu_p2_f16_C.pkl"), "rb").read()
    if b"numpy._core." in data:
        other = data.replace(b"numpy._core.", b"numpy.core.")
    else:
        other = data.replace(b"numpy.core.", b"numpy._core.")
    open(os.path.join(OUT, "ntu_p2_f16_C_other_numpy.pkl"), "wb").write(other)

    # Bad inputs.
    good = open(os.path.join(OUT, "ntu_p4_f32_C.pkl"), "rb").read()
    open(os.path.join(OUT, "bad_truncated.pkl"), "wb").write(good[: len(good) // 2])
    open(os.path.join(OUT, "bad_not_pickle.pkl"), "wb").write(b"frame_dir,label\nS001,0\n")
    dump("bad_list.pkl", [1, 2, 3], 4)

    def bad(name, index=1, **change):
        """The float32 NTU file with annotation `index` (S001C002P002R001A002 by default) changed."""
        obj = ntu_file(np.float32, "C")
        obj["annotations"][index].update(change)
        dump(name, obj, 4)

    bad("bad_joints.pkl", keypoint=keypoint(1, 7, 19, 3, np.float32, "C"))
    nan = keypoint(1, 7, 25, 3, np.float32, "C")
    nan[0, 4, 10, 1] = np.nan
    bad("bad_nan.pkl", keypoint=nan)
    inf = keypoint(1, 7, 25, 3, np.float16, "C")
    inf[0, 2, 3, 0] = -np.inf
    bad("bad_inf.pkl", keypoint=inf)
    bad("bad_empty.pkl", keypoint=np.zeros((1, 0, 25, 3), np.float32), total_frames=0)
    bad("bad_no_person.pkl", keypoint=np.zeros((0, 7, 25, 3), np.float32))
    bad("bad_label.pkl", label=-3)
    bad("bad_label_type.pkl", label="2")
    bad("bad_label_huge.pkl", label=np.int64(4_000_000_000))
    # Joint counts: an openpose-sized sample among nturgb+d ones in xsub_train (annotation 2).
    bad("bad_mixed_joints.pkl", index=2, keypoint=keypoint(2, 3, 18, 3, np.float32, "C"))
    # Not zero, but nowhere beyond np.isclose's 1e-8: PreNormalize3D keeps no frame.
    bad("bad_near_zero.pkl", keypoint=np.full((1, 7, 25, 3), 1e-9, np.float32))
    # Finite float16 values whose centring overflows float16 (120000 > 65504).
    big = keypoint(1, 7, 25, 3, np.float16, "C")
    big[0, :, :, 0] = 60000
    big[0, 0, 1, 0] = -60000
    bad("bad_overflow.pkl", keypoint=big)
    obj = ntu_file(np.float32, "C")
    obj["annotations"][1] = "S001C002P002R001A002"
    dump("bad_not_dict.pkl", obj, 4)
    dump("bad_no_split.pkl", dict(annotations=ntu_file(np.float32, "C")["annotations"]), 4)

    def bad_2d(name, **change):
        obj = coco_file()
        obj["annotations"][0].update(change)
        dump(name, obj, 4)

    score_nan = coco_file()["annotations"][0]["keypoint_score"].copy()
    score_nan[0, 1, 2] = np.nan
    bad_2d("bad_score_nan.pkl", keypoint_score=score_nan)
    bad_2d("bad_img_shape.pkl", img_shape=(720, 0))
    obj = coco_file()
    del obj["annotations"][0]["keypoint_score"]
    dump("bad_no_score.pkl", obj, 4)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    dump("bad_global.pkl", dict(split={}, annotations=[Evil()]), 2)


def body_lines(body_id, joints):
    """One body in the official layout: 10 body-info values, the joint count, 25 joint lines."""
    lines = [f"{body_id} 0 1 1 1 1 0 0.1234 -0.5678 2", "25"]
    for x, y, z in joints:
        lines.append(f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 960.3 540.4 0.5 0.1 0.2 0.3 2")
    return lines


def joints(t, amp, base, noisy=False):
    """25 joints: x spans less than 0.8 of the y span unless noisy."""
    if noisy:
        return [(base + 0.1 * j, 0.01 * j, 3.0) for j in range(25)]
    return [(base + 0.01 * j + amp * np.sin(t), 0.05 * j - 0.6, 3.0 + 0.001 * j) for j in range(25)]


def write_skeleton(name, frames, crlf=False):
    """frames: a list of frames, each a list of (body_id, joints)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, js in bodies:
            lines.extend(body_lines(body_id, js))
    sep = "\r\n" if crlf else "\n"
    with open(os.path.join(OUT, "ntu_skeletons", name + ".skeleton"), "w", newline="") as f:
        f.write(sep.join(lines) + sep)


def skeleton_fixtures():
    os.makedirs(os.path.join(OUT, "ntu_skeletons"), exist_ok=True)
    # Two overlapping bodies (the second moves more, so it takes slot 0), an empty frame 3, and
    # a noisy third body that denoising drops. Written with CRLF line ends.
    frames = []
    for t in range(20):
        if t == 3:
            frames.append([])
            continue
        bodies = [(72057594037931101, joints(t, 0.01, 0.2))]
        if t >= 5:
            bodies.append((2, joints(t, 0.3, -0.4)))
        if t < 15:
            bodies.append((3, joints(t, 0.0, 0.0, noisy=True)))
        frames.append(bodies)
    write_skeleton("S001C001P001R001A001", frames, crlf=True)
    # One body of 15 frames and a 4-frame one (too short): one person, leading empty frames cut.
    frames = [[] for _ in range(2)]
    for t in range(15):
        bodies = [(7, joints(t, 0.05, 0.1))]
        if t < 4:
            bodies.append((8, joints(t, 0.5, 0.5)))
        frames.append(bodies)
    write_skeleton("S001C002P003R002A002", frames)
    # No body in any frame.
    write_skeleton("S001C003P002R001A003", [[] for _ in range(4)])
    # Listed as missing.
    write_skeleton("S002C001P004R001A004", [[(9, joints(t, 0.05, 0.1))] for t in range(13)])
    with open(os.path.join(OUT, "ntu_skeletons", "samples_with_missing_skeletons.txt"), "w") as f:
        f.write("The following samples have missing skeletons.\nUse them carefully.\n\nS002C001P004R001A004\n")
    # A truncated file.
    os.makedirs(os.path.join(OUT, "ntu_bad"), exist_ok=True)
    with open(os.path.join(OUT, "ntu_bad", "S001C001P001R001A001.skeleton"), "w") as f:
        f.write("3\n1\n" + "\n".join(body_lines(5, joints(0, 0.1, 0.0))[:10]) + "\n")


if __name__ == "__main__":
    skeleton_fixtures()
    main()
