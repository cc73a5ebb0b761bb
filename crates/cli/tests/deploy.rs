//! The deployment files, checked with the real tools of each format: Terraform's formatter, the
//! Kubernetes schemas (`kubernetes-validate`, strict), the GCP Batch API's own protobuf types
//! (`google-cloud-batch`: unknown or misspelt fields are refused), and podman-compose's parser.
//! `terraform validate` is not run: it needs the Google provider, which cannot be downloaded here.

use std::process::{Command, Output};

use compressor_test_support::repo_root;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (scripts/install-deps.sh installs it): {e}"))
}

fn passes(out: &Output, what: &str) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn terraform_is_formatted() {
    passes(&run("terraform", &["fmt", "-check", "-recursive", "-diff", "deploy/gcp"]), "terraform fmt -check");
}

/// The Terraform's locals (the instance groups and what each instance runs), evaluated by
/// `terraform console` in a copy holding only the locals and the variables: that needs no
/// provider, so it runs here where `terraform validate` cannot.
fn terraform_locals(tfvars: &str, expression: &str) -> serde_json::Value {
    let main = std::fs::read_to_string(repo_root().join("deploy/gcp/main.tf")).unwrap();
    let (start, end) = (main.find("locals {").unwrap(), main.find("data \"google_compute_zones\"").unwrap());
    let zones = "slice(sort(data.google_compute_zones.available.names), 0, min(3, length(data.google_compute_zones.available.names)))";
    assert!(main[start..end].contains(zones), "the zones local changed; update this test");
    let locals = main[start..end].replace(zones, "[\"z-a\", \"z-b\", \"z-c\"]");
    let dir = tempfile::tempdir().unwrap();
    let variables = std::fs::read_to_string(repo_root().join("deploy/gcp/variables.tf")).unwrap();
    std::fs::write(dir.path().join("main.tf"), format!("{locals}\n{variables}")).unwrap();
    std::fs::write(dir.path().join("terraform.tfvars"), tfvars).unwrap();
    let init = Command::new("terraform").args(["init", "-backend=false", "-input=false"]).current_dir(dir.path()).output().unwrap();
    passes(&init, "terraform init (no providers)");
    let mut console = Command::new("terraform")
        .args(["console"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    writeln!(console.stdin.take().unwrap(), "jsonencode({expression})").unwrap();
    let out = console.wait_with_output().unwrap();
    let text = passes(&out, "terraform console");
    let quoted = text.lines().find(|l| l.starts_with('"')).unwrap_or_else(|| panic!("no value in {text}"));
    serde_json::from_str(&serde_json::from_str::<String>(quoted).unwrap()).unwrap()
}

#[test]
fn terraform_runs_a_video_group_only_with_a_video_image() {
    let base = "project = \"p\"\nimage = \"europe-west1-docker.pkg.dev/p/r/compressor@sha256:1\"\ndomain = \"img.example.com\"\n";
    let expression = "{ groups = keys(local.groups), units = local.unit, login = local.registry_login }";
    let images_only = terraform_locals(base, expression);
    assert_eq!(images_only["groups"], serde_json::json!(["images"]));
    let unit = images_only["units"]["images"].as_str().unwrap();
    assert!(unit.contains("--env COMPRESSOR_SERVICES=images europe-west1-docker.pkg.dev/p/r/compressor@sha256:1 serve"), "{unit}");
    assert!(unit.contains("--tmpfs /tmp"), "{unit}");
    assert!(images_only["login"]["images"].as_str().unwrap().contains("configure-docker --registries=europe-west1-docker.pkg.dev"));

    let both = terraform_locals(&format!("{base}video_image = \"docker.io/me/compressor-video:1\"\n"), expression);
    assert_eq!(both["groups"], serde_json::json!(["images", "video"]));
    let unit = both["units"]["video"].as_str().unwrap();
    assert!(unit.contains("--env COMPRESSOR_SERVICES=video docker.io/me/compressor-video:1 serve"), "{unit}");
    assert!(unit.contains("--volume /var/lib/compressor/tmp:/tmp"), "video scratch files go to disk: {unit}");
    assert!(both["login"]["video"].as_str().unwrap().contains("not a Google registry"));
    // The URL map sends the video routes to the video group's backend.
    let main = std::fs::read_to_string(repo_root().join("deploy/gcp/main.tf")).unwrap();
    assert!(main.contains("paths   = [\"/v1/video/*\"]") && main.contains("compressor[\"video\"].id"));
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let text = passes(&run("kubernetes-validate", &["--strict", "deploy/k8s/indexed-job.yaml"]), "kubernetes-validate");
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn the_gcp_batch_job_parses_as_the_batch_apis_job() {
    let check = r#"
import json, sys
from google.cloud import batch_v1
job = batch_v1.Job.from_json(open("deploy/gcp-batch/job.json").read())
runnable = job.task_groups[0].task_spec.runnables[0].container
assert runnable.entrypoint == "/usr/local/bin/compressor", runnable.entrypoint
assert list(runnable.commands)[0] == "batch", runnable.commands
print(job.task_groups[0].task_count, runnable.image_uri)
"#;
    passes(&run("python3", &["-c", check]), "the Batch job against google.cloud.batch_v1.Job");
}

#[test]
fn the_compose_file_parses_and_uses_the_image_this_project_builds() {
    let script = std::fs::read_to_string(repo_root().join("scripts/image.sh")).unwrap();
    let built = "localhost/compressor:latest";
    assert!(script.contains(built), "scripts/image.sh no longer tags {built}");
    // podman-compose's own reading of the file; the one service built from this repository is
    // the image scripts/image.sh makes.
    let check = format!(
        r#"
import subprocess, yaml
text = subprocess.run(["podman-compose", "-f", "deploy/compose.yaml", "config"], check=True, capture_output=True, text=True).stdout
services = yaml.safe_load(text)["services"]
built = [name for name, s in services.items() if "build" in s]
assert built == ["compressor"], built
service = services["compressor"]
assert service["image"] == "{built}", service["image"]
assert service["build"]["dockerfile"] == "Dockerfile", service["build"]
print(sorted(services))
"#
    );
    passes(&run("python3", &["-c", &check]), "podman-compose config");
}
