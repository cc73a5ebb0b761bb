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
