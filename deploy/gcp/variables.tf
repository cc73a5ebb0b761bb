variable "project" {
  description = "Google Cloud project id to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the subnet, the NAT and the regional instance group."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name, so several environments can share a project."
  type        = string
  default     = "compressor"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$", var.name))
    error_message = "The value of name must be a lowercase RFC 1035 label of at most 32 characters."
  }
}

variable "image" {
  description = "Container image to run, e.g. europe-west1-docker.pkg.dev/PROJECT/REPO/compressor@sha256:... (a digest makes every rollout explicit)."
  type        = string
}

variable "video_image" {
  description = "Container image of the video service (scripts/image.sh build-video: the binary with ffmpeg). Empty: no video instance group, and /v1/video/* is not routed."
  type        = string
  default     = ""
}

variable "video_machine_type" {
  description = "Machine type of the video instances. One transcode at a time uses every core; memory holds ffmpeg's frames (its address space is capped at 4 GiB per child)."
  type        = string
  default     = "c2d-highcpu-8"
}

variable "video_min_replicas" {
  description = "Autoscaler minimum of the video group."
  type        = number
  default     = 1

  validation {
    condition     = var.video_min_replicas >= 1
    error_message = "The value of video_min_replicas must be at least 1."
  }
}

variable "video_max_replicas" {
  description = "Autoscaler maximum of the video group; a cost ceiling."
  type        = number
  default     = 5
}

variable "video_backend_timeout_sec" {
  description = "Load balancer timeout for one video request, upload to last byte. Keep it above the service's COMPRESSOR_VIDEO_TIMEOUT (10 min by default)."
  type        = number
  default     = 660
}

variable "domain" {
  description = "Domain served over HTTPS. Its DNS A record must point at the `lb_ip` output before the managed certificate can be issued."
  type        = string
}

variable "machine_type" {
  description = "Machine type of the instances. Compression is CPU-bound: more cores per instance means more concurrent requests."
  type        = string
  default     = "e2-standard-4"
}

variable "min_replicas" {
  description = "Autoscaler minimum. At least 2 keeps the service up while one zone or instance is replaced."
  type        = number
  default     = 2

  validation {
    condition     = var.min_replicas >= 1
    error_message = "The value of min_replicas must be at least 1."
  }
}

variable "max_replicas" {
  description = "Autoscaler maximum; a cost ceiling."
  type        = number
  default     = 10
}

variable "cpu_target" {
  description = "Autoscaler CPU utilization target. 0.6 leaves headroom for the minute or two a new instance takes to boot and pull the image."
  type        = number
  default     = 0.6

  validation {
    condition     = var.cpu_target > 0 && var.cpu_target <= 1
    error_message = "The value of cpu_target must be in (0, 1]."
  }
}

variable "subnet_cidr" {
  description = "Primary range of the private subnet."
  type        = string
  default     = "10.10.0.0/24"
}

variable "health_check_path" {
  description = "HTTP path the load balancer probes on port 8080. /readyz answers 503 while the instance drains after SIGTERM, so the load balancer stops sending it requests; autohealing probes /health, which stays 200 while the process lives."
  type        = string
  default     = "/readyz"
}

variable "drain_seconds" {
  description = "How long a leaving instance keeps serving in-flight requests: the backend service's connection draining and the container's stop timeout. Keep it at least as long as the service's own SIGTERM drain."
  type        = number
  default     = 30
}

variable "backend_timeout_sec" {
  description = "Load balancer timeout for one request, upload to last byte. Large lossless PNGs take seconds."
  type        = number
  default     = 120
}

variable "container_env" {
  description = "Extra environment variables for the container (COMPRESSOR_* settings). Visible in instance metadata to anyone who can read the project: put no secrets here."
  type        = map(string)
  default     = {}
}

variable "allowed_source_ranges" {
  description = "If non-empty, only these client CIDRs may reach the service (Cloud Armor default rule becomes deny). At most 10, the limit of one Cloud Armor rule."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.allowed_source_ranges) <= 10
    error_message = "A Cloud Armor basic rule matches at most 10 ranges."
  }
}

variable "rate_limit_exempt_ranges" {
  description = "Client CIDRs (e.g. your own batch uploaders) that skip the per-IP rate limit. At most 10."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.rate_limit_exempt_ranges) <= 10
    error_message = "A Cloud Armor basic rule matches at most 10 ranges."
  }
}

variable "rate_limit_per_minute" {
  description = "Requests per minute one client IP may send before Cloud Armor answers 429."
  type        = number
  default     = 600
}

variable "ban_duration_sec" {
  description = "How long an IP that keeps exceeding five times the rate limit over five minutes is banned."
  type        = number
  default     = 600
}
