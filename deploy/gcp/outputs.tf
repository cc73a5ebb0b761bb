output "lb_ip" {
  description = "The load balancer's IPv4 address: point the domain's A record here."
  value       = google_compute_global_address.lb.address
}

output "url" {
  description = "Where the service answers once the certificate is active."
  value       = "https://${var.domain}"
}

output "instance_group" {
  description = "The regional managed instance group (for `gcloud compute instance-groups managed ...`)."
  value       = google_compute_region_instance_group_manager.compressor["images"].instance_group
}

output "video_instance_group" {
  description = "The video service's instance group, or null without video_image."
  value       = try(google_compute_region_instance_group_manager.compressor["video"].instance_group, null)
}

output "backend_service" {
  description = "Backend service name (for `gcloud compute backend-services get-health`)."
  value       = google_compute_backend_service.compressor["images"].name
}

output "video_backend_service" {
  description = "The video service's backend service name, or null without video_image."
  value       = try(google_compute_backend_service.compressor["video"].name, null)
}

output "security_policy" {
  description = "Cloud Armor policy name."
  value       = google_compute_security_policy.compressor.name
}

output "network" {
  description = "VPC self link, e.g. for deploy/gcp-batch/job.json."
  value       = google_compute_network.vpc.self_link
}

output "subnetwork" {
  description = "Private subnet self link, e.g. for deploy/gcp-batch/job.json."
  value       = google_compute_subnetwork.private.self_link
}

output "service_account" {
  description = "Service account the instances run as."
  value       = google_service_account.vm.email
}
