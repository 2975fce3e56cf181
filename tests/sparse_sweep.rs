//! The sweep's contract for scripts: `leangcn sweep --preset tiny --epochs 1 --sparsity 0,0.9 --out DIR`
//! finishes on the CPU and writes `DIR/sweep.csv` with one row per configuration and at least the
//! columns sparsity, kept_params, total_params, top1; plus densities and a plot.

use std::process::Command;

#[test]
fn sweep_writes_one_row_per_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let status = Command::new(env!("CARGO_BIN_EXE_leangcn"))
        .args([
            "sweep",
            "--backend",
            "cpu",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--sparsity",
            "0,0.9",
            "--lottery",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for column in ["method", "sparsity", "kept_params", "total_params", "top1"] {
        assert!(header.contains(&column), "missing column {column} in {header:?}");
    }
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    let methods: Vec<&str> = rows.iter().map(|r| r[col("method")].as_str()).collect();
    assert_eq!(methods, ["dense", "generator", "lottery"]);
    let num = |r: &Vec<String>, c: &str| r[col(c)].parse::<f64>().unwrap();
    let dense = &rows[0];
    assert_eq!(num(dense, "kept_params"), num(dense, "total_params"));
    for sparse in &rows[1..] {
        assert_eq!(num(sparse, "sparsity"), 0.9);
        let kept = num(sparse, "kept_masked") / num(sparse, "maskable");
        assert!(
            (kept - 0.1).abs() < 0.01,
            "{} keeps {kept} of the masked weights",
            sparse[col("method")]
        );
        assert!(num(sparse, "kept_params") < 0.2 * num(sparse, "total_params"));
        assert!(num(sparse, "effective_macs") < num(sparse, "dense_macs"));
        assert!((0.0..=1.0).contains(&num(sparse, "top1")));
    }
    let densities = std::fs::read_to_string(out.join("densities.csv")).unwrap();
    assert!(densities
        .lines()
        .any(|l| l.starts_with("generator 0.9,backbone.gcn.0.gcn.conv")));
    assert!(std::fs::read_to_string(out.join("accuracy_vs_params.svg"))
        .unwrap()
        .contains("generator"));

    // a sparse-generator checkpoint pruned to a final mask, then evaluated with it
    let ckpts = out.join("generator-0.9/checkpoints");
    let latest = ckpts.join(std::fs::read_to_string(ckpts.join("latest")).unwrap().trim());
    let pruned = dir.path().join("pruned.safetensors");
    let bin = env!("CARGO_BIN_EXE_leangcn");
    let prune = Command::new(bin)
        .args(["prune", "--sparsity", "0.95", "-o"])
        .arg(&pruned)
        .arg(&latest)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&prune.stdout);
    assert!(
        prune.status.success() && text.contains("backbone conv sparsity 0.95"),
        "{text}"
    );
    let eval = Command::new(bin)
        .args(["eval", "--backend", "cpu"])
        .arg(&pruned)
        .output()
        .unwrap();
    assert!(eval.status.success() && String::from_utf8_lossy(&eval.stdout).contains("top-1"));
}
