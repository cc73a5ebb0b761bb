# compressor on Google Cloud: a private regional managed instance group of Container-Optimized OS
# VMs behind a global external Application Load Balancer with Cloud Armor.
#
#   client ──HTTPS──▶ forwarding rule :443 ─▶ HTTPS proxy (managed cert) ─▶ URL map
#          ──HTTP───▶ forwarding rule :80  ─▶ HTTP proxy ─▶ redirect to HTTPS
#   URL map ─▶ backend service (Cloud Armor, health check, 30 s draining) ─▶ regional MIG :8080
#           └▶ /v1/video/* (when video_image is set) ─▶ video backend service ─▶ video MIG :8080
#   MIG VMs: no external IP; egress through Cloud NAT, Google APIs through Private Google Access.
#
# Each service is its own instance group, scaled on its own CPU: images run the plain image with
# COMPRESSOR_SERVICES=images; video runs the image with ffmpeg (scripts/image.sh build-video)
# with COMPRESSOR_SERVICES=video, bigger disks for its scratch files and a longer timeout.

locals {
  labels = { app = var.name, managed-by = "terraform" }
  # Network tag the firewall rules target; only the compressor VMs carry it.
  tag = var.name

  # Google front ends and health checkers connect from these ranges only.
  google_lb_ranges = ["130.211.0.0/22", "35.191.0.0/16"]
  # Identity-Aware Proxy TCP forwarding: `gcloud compute ssh --tunnel-through-iap`.
  iap_range = "35.235.240.0/20"

  # The instance groups: one per service. The image group keeps the resource names it had when it
  # was the only one.
  groups = merge(
    {
      images = {
        name         = var.name
        image        = var.image
        services     = "images"
        machine_type = var.machine_type
        min_replicas = var.min_replicas
        max_replicas = var.max_replicas
        timeout_sec  = var.backend_timeout_sec
        disk_size_gb = 20
        # Uploads are at most 50 MB and held in memory; /tmp is a small RAM disk.
        tmp = "--tmpfs /tmp"
      }
    },
    var.video_image == "" ? {} : {
      video = {
        name         = "${var.name}-video"
        image        = var.video_image
        services     = "video"
        machine_type = var.video_machine_type
        min_replicas = var.video_min_replicas
        max_replicas = var.video_max_replicas
        timeout_sec  = var.video_backend_timeout_sec
        disk_size_gb = 50
        # Uploads (up to COMPRESSOR_MAX_VIDEO_BYTES) and transcodes go to disk, not to memory.
        tmp = "--volume /var/lib/compressor/tmp:/tmp"
      }
    },
  )

  # Artifact Registry / Container Registry need a token from the VM's service account; any
  # other registry is pulled anonymously (configuring the gcr helper for it would break pulls).
  registry_login = { for key, group in local.groups : key => (
    can(regex("(docker\\.pkg\\.dev|gcr\\.io)$", split("/", group.image)[0]))
    ? "ExecStartPre=/usr/bin/docker-credential-gcr configure-docker --registries=${split("/", group.image)[0]}"
    : "# ${split("/", group.image)[0]} is not a Google registry: pulled without credentials"
  ) }

  container_env = merge(
    {
      COMPRESSOR_LISTEN     = "0.0.0.0:8080"
      COMPRESSOR_LOG_FORMAT = "json"
      # Per-IP rate limits see the real client: the HTTPS load balancer appends
      # "<client>, <its own address>" to X-Forwarded-For.
      COMPRESSOR_FORWARDED_FOR_DEPTH = "2"
      # On SIGTERM (shutdown, preemption, a rolling update) /readyz turns 503 at once and the
      # service keeps serving until the load balancer's health check has taken it out
      # (interval x unhealthy threshold), then drains in-flight requests within the grace.
      COMPRESSOR_SHUTDOWN_DELAY = "${local.lb_check_interval * local.lb_unhealthy_threshold + 2}s"
      COMPRESSOR_SHUTDOWN_GRACE = "${max(var.drain_seconds - (local.lb_check_interval * local.lb_unhealthy_threshold + 2), 5)}s"
    },
    var.container_env,
  )

  # The load balancer's health check: the service's shutdown delay waits this long for it.
  lb_check_interval      = 5
  lb_unhealthy_threshold = 2

  # Regional MIG surge/unavailable counts must be 0 or at least the number of zones.
  zones = slice(sort(data.google_compute_zones.available.names), 0, min(3, length(data.google_compute_zones.available.names)))

  # The container runs as a systemd unit written by cloud-init (COS' supported way to run a
  # container; the gce-container-declaration agent is deprecated). systemd stops it on instance
  # shutdown with `docker stop`, which sends SIGTERM and waits for the service's drain.
  unit = { for key, group in local.groups : key => <<-EOT
    [Unit]
    Description=compressor container
    Wants=network-online.target gcr-online.target
    After=network-online.target gcr-online.target docker.service
    Requires=docker.service

    [Service]
    # docker-credential-gcr writes its config under $HOME; / is read-only on COS.
    Environment=HOME=/var/lib/compressor
    ExecStartPre=/bin/mkdir -p /var/lib/compressor/tmp
    ExecStartPre=/bin/chown 10001:10001 /var/lib/compressor/tmp
    ${local.registry_login[key]}
    # COS' host firewall drops inbound TCP except SSH; the VPC firewall rules are the real gate.
    ExecStartPre=/bin/sh -c 'iptables -w -C INPUT -p tcp --dport 8080 -j ACCEPT || iptables -w -A INPUT -p tcp --dport 8080 -j ACCEPT'
    ExecStartPre=-/usr/bin/docker rm -f compressor
    # One worker per vCPU of this machine type (the service's own default, written out so the
    # instance's configuration says it).
    ExecStartPre=/bin/sh -c 'echo COMPRESSOR_WORKERS=$(nproc) > /run/compressor-workers.env'
    # Host networking: no docker-proxy copy of every upload, and the port is the VM's port.
    ExecStart=/usr/bin/docker run --rm --name compressor --network host --read-only ${group.tmp} --env-file /etc/compressor.env --env-file /run/compressor-workers.env --env COMPRESSOR_SERVICES=${group.services} ${group.image} serve
    ExecStop=/usr/bin/docker stop --time ${var.drain_seconds + 5} compressor
    Restart=always
    RestartSec=5
    # The first start pulls the image.
    TimeoutStartSec=600
    TimeoutStopSec=${var.drain_seconds + 15}

    [Install]
    WantedBy=multi-user.target
  EOT
  }

  cloud_config = { for key, group in local.groups : key => join("\n", ["#cloud-config", yamlencode({
    write_files = [
      {
        path        = "/etc/compressor.env"
        permissions = "0644"
        owner       = "root"
        content     = join("", [for k, v in local.container_env : "${k}=${v}\n"])
      },
      {
        path        = "/etc/systemd/system/compressor.service"
        permissions = "0644"
        owner       = "root"
        content     = local.unit[key]
      },
    ]
    runcmd = [
      ["systemctl", "daemon-reload"],
      ["systemctl", "start", "compressor.service"],
    ]
  })]) }
}

data "google_compute_zones" "available" {
  region = var.region
  status = "UP"
}

data "google_compute_image" "cos" {
  family  = "cos-stable"
  project = "cos-cloud"
}

# ---- network ----------------------------------------------------------------------------------

resource "google_compute_network" "vpc" {
  name                    = var.name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "private" {
  name          = "${var.name}-private"
  region        = var.region
  network       = google_compute_network.vpc.id
  ip_cidr_range = var.subnet_cidr
  # Artifact Registry, Cloud Logging and GCS without going through NAT.
  private_ip_google_access = true
}

resource "google_compute_router" "router" {
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.vpc.id
}

# Outbound only (image pulls from non-Google registries, COS updates, external object stores);
# nothing can connect in through it.
resource "google_compute_router_nat" "nat" {
  name                               = "${var.name}-nat"
  router                             = google_compute_router.router.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.private.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Ingress is otherwise denied by the VPC's implied rule: clients only ever reach the VMs through
# the load balancer, whose proxies connect from the same Google ranges as its health checks.
resource "google_compute_firewall" "allow_lb_and_health_checks" {
  name          = "${var.name}-allow-lb-health-checks"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = local.google_lb_ranges
  target_tags   = [local.tag]

  allow {
    protocol = "tcp"
    ports    = ["8080"]
  }
}

resource "google_compute_firewall" "allow_iap_ssh" {
  name          = "${var.name}-allow-iap-ssh"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = [local.iap_range]
  target_tags   = [local.tag]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

# ---- instances --------------------------------------------------------------------------------

resource "google_service_account" "vm" {
  account_id   = "${var.name}-vm"
  display_name = "compressor instances"
}

# Least privilege: write logs and metrics, pull images. No storage or compute access.
resource "google_project_iam_member" "vm" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/artifactregistry.reader",
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.vm.email}"
}

resource "google_compute_instance_template" "compressor" {
  for_each     = local.groups
  name_prefix  = "${each.value.name}-"
  machine_type = each.value.machine_type
  region       = var.region
  tags         = [local.tag]
  labels       = local.labels

  disk {
    source_image = data.google_compute_image.cos.self_link
    boot         = true
    auto_delete  = true
    disk_type    = "pd-balanced"
    disk_size_gb = each.value.disk_size_gb
  }

  # No access_config block: the instances get no external IP.
  network_interface {
    subnetwork = google_compute_subnetwork.private.id
  }

  service_account {
    email  = google_service_account.vm.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    user-data                 = local.cloud_config[each.key]
    google-logging-enabled    = "true"
    google-monitoring-enabled = "true"
    enable-oslogin            = "TRUE"
    block-project-ssh-keys    = "true"
  }

  # Templates are immutable: a change makes a new one, which the MIG rolls out, before the old
  # one (still referenced by the MIG until then) is deleted.
  lifecycle {
    create_before_destroy = true
  }
}

# The load balancer's probe: quick to take an instance out of rotation (10 s), e.g. while it drains
# (/readyz answers 503 from SIGTERM on).
resource "google_compute_health_check" "lb" {
  name                = "${var.name}-lb"
  check_interval_sec  = local.lb_check_interval
  timeout_sec         = 3
  healthy_threshold   = 2
  unhealthy_threshold = local.lb_unhealthy_threshold

  http_health_check {
    port         = 8080
    request_path = var.health_check_path
  }

  log_config {
    enable = false
  }
}

# Autohealing's probe: slow to give up (1 min) so a saturated but working instance is not
# recreated, which would only shift its load onto the others.
resource "google_compute_health_check" "autohealing" {
  name                = "${var.name}-autohealing"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 6

  http_health_check {
    port         = 8080
    request_path = "/health"
  }
}

resource "google_compute_region_instance_group_manager" "compressor" {
  for_each                  = local.groups
  name                      = each.value.name
  region                    = var.region
  base_instance_name        = each.value.name
  distribution_policy_zones = local.zones
  # target_size is left to the autoscaler.

  version {
    name              = "primary"
    instance_template = google_compute_instance_template.compressor[each.key].self_link_unique
  }

  named_port {
    name = "http"
    port = 8080
  }

  auto_healing_policies {
    health_check = google_compute_health_check.autohealing.id
    # Boot, image pull and start-up before autohealing may judge an instance.
    initial_delay_sec = 180
  }

  # Rolling replacement that never lowers capacity: new instances are created first
  # (surge = one per zone, the minimum a regional MIG accepts) and old ones are removed only
  # after; removal goes through the backend service's connection draining, then SIGTERM.
  update_policy {
    type                           = "PROACTIVE"
    instance_redistribution_type   = "PROACTIVE"
    minimal_action                 = "REPLACE"
    most_disruptive_allowed_action = "REPLACE"
    replacement_method             = "SUBSTITUTE"
    max_surge_fixed                = length(local.zones)
    max_unavailable_fixed          = 0
  }

  wait_for_instances = false
}

resource "google_compute_region_autoscaler" "compressor" {
  for_each = local.groups
  name     = each.value.name
  region   = var.region
  target   = google_compute_region_instance_group_manager.compressor[each.key].id

  autoscaling_policy {
    min_replicas = each.value.min_replicas
    max_replicas = each.value.max_replicas
    # Initialization period: ignore a new VM's CPU while it boots and pulls the image.
    cooldown_period = 90

    cpu_utilization {
      target = var.cpu_target
    }

    # Scale in at most 2 instances per 10 minutes, so a short lull between bursts of uploads
    # does not drop capacity that is needed again a minute later.
    scale_in_control {
      time_window_sec = 600
      max_scaled_in_replicas {
        fixed = 2
      }
    }
  }

  lifecycle {
    precondition {
      condition     = each.value.min_replicas <= each.value.max_replicas
      error_message = "min_replicas must not exceed max_replicas (video_min_replicas, video_max_replicas for video)."
    }
  }
}

# ---- Cloud Armor ------------------------------------------------------------------------------
#
# No preconfigured WAF rules (sqli, xss, lfi, ...): they inspect query strings and the first
# kilobytes of POST bodies, and the bodies here are binary images. Arbitrary PNG/JPEG bytes match
# those signatures often enough to block legitimate uploads, while the service has nothing they
# protect (no SQL, no HTML rendering, no file paths from input). The threats that matter are
# volume and abuse, handled by the per-IP rate limit and ban, plus the service's own limits.
resource "google_compute_security_policy" "compressor" {
  name        = "${var.name}-policy"
  description = "compressor: per-IP rate limit, optional allow-list"
  type        = "CLOUD_ARMOR"

  # Prometheus metrics are for the operator, not the internet.
  rule {
    action      = "deny(404)"
    priority    = 100
    description = "hide /metrics from the public load balancer"
    match {
      expr {
        expression = "request.path.matches('^/metrics(/|$)')"
      }
    }
  }

  dynamic "rule" {
    for_each = length(var.rate_limit_exempt_ranges) > 0 ? [1] : []
    content {
      action      = "allow"
      priority    = 900
      description = "trusted clients: no rate limit"
      match {
        versioned_expr = "SRC_IPS_V1"
        config {
          src_ip_ranges = var.rate_limit_exempt_ranges
        }
      }
    }
  }

  # Applies to the allow-listed ranges when an allow-list is set, otherwise to everyone. A
  # conforming request is allowed here, so the default rule below only sees the rest.
  rule {
    action      = "rate_based_ban"
    priority    = 1000
    description = "per-IP rate limit (429), ban on sustained abuse"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = length(var.allowed_source_ranges) > 0 ? var.allowed_source_ranges : ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = var.rate_limit_per_minute
        interval_sec = 60
      }
      ban_threshold {
        count        = var.rate_limit_per_minute * 5
        interval_sec = 300
      }
      ban_duration_sec = var.ban_duration_sec
    }
  }

  # Open to everyone by default; setting allowed_source_ranges turns this into deny, making the
  # rule above an allow-list.
  rule {
    action      = length(var.allowed_source_ranges) > 0 ? "deny(403)" : "allow"
    priority    = 2147483647
    description = "default"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

# ---- load balancer ----------------------------------------------------------------------------

resource "google_compute_global_address" "lb" {
  name = "${var.name}-lb"
}

resource "google_compute_backend_service" "compressor" {
  for_each              = local.groups
  name                  = each.value.name
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTP"
  port_name             = "http"
  timeout_sec           = each.value.timeout_sec
  health_checks         = [google_compute_health_check.lb.id]
  security_policy       = google_compute_security_policy.compressor.id
  # When the MIG removes an instance (scale-in, rolling update) the LB stops sending it new
  # requests and gives in-flight ones this long before the VM is shut down (and SIGTERMed).
  connection_draining_timeout_sec = var.drain_seconds
  # Requests cost very different CPU (size, lossless vs lossy): send each to the instance with
  # the fewest outstanding requests rather than round-robin.
  locality_lb_policy = "LEAST_REQUEST"

  backend {
    group           = google_compute_region_instance_group_manager.compressor[each.key].instance_group
    balancing_mode  = "UTILIZATION"
    max_utilization = 0.8
    capacity_scaler = 1.0
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

# Everything goes to the image service, except the video routes when the video group exists.
resource "google_compute_url_map" "https" {
  name            = var.name
  default_service = google_compute_backend_service.compressor["images"].id

  dynamic "host_rule" {
    for_each = contains(keys(local.groups), "video") ? [1] : []
    content {
      hosts        = ["*"]
      path_matcher = "services"
    }
  }

  dynamic "path_matcher" {
    for_each = contains(keys(local.groups), "video") ? [1] : []
    content {
      name            = "services"
      default_service = google_compute_backend_service.compressor["images"].id

      path_rule {
        paths   = ["/v1/video/*"]
        service = google_compute_backend_service.compressor["video"].id
      }
    }
  }
}

# Named after the domain so that changing it creates the new certificate before the old one goes.
resource "google_compute_managed_ssl_certificate" "compressor" {
  name = "${var.name}-${substr(sha256(var.domain), 0, 8)}"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "modern" {
  name            = "${var.name}-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "compressor" {
  name             = var.name
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.compressor.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  port_range            = "443"
  ip_address            = google_compute_global_address.lb.id
  target                = google_compute_target_https_proxy.compressor.id
}

# Plain HTTP only redirects; nothing is served unencrypted.
resource "google_compute_url_map" "http_redirect" {
  name = "${var.name}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  name    = "${var.name}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${var.name}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  port_range            = "80"
  ip_address            = google_compute_global_address.lb.id
  target                = google_compute_target_http_proxy.http_redirect.id
}

# The image group's resources before there were several groups: moved, not recreated.
moved {
  from = google_compute_instance_template.compressor
  to   = google_compute_instance_template.compressor["images"]
}

moved {
  from = google_compute_region_instance_group_manager.compressor
  to   = google_compute_region_instance_group_manager.compressor["images"]
}

moved {
  from = google_compute_region_autoscaler.compressor
  to   = google_compute_region_autoscaler.compressor["images"]
}

moved {
  from = google_compute_backend_service.compressor
  to   = google_compute_backend_service.compressor["images"]
}
