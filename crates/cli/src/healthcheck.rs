//! `compressor healthcheck`: asks a running service whether it is ready (`GET /readyz`), for a
//! container's HEALTHCHECK, which has no other HTTP client to call. Exit status 0 when the service
//! answers 200, 1 otherwise, with the reason on standard error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// What to ask. Default: /readyz on the address the service here listens on
    /// (COMPRESSOR_LISTEN or its default; 0.0.0.0 and [::] are asked on loopback)
    #[arg(long)]
    pub url: Option<String>,
    /// Give up, unhealthy, after this long
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: HealthcheckArgs) -> anyhow::Result<i32> {
    let url = args.url.unwrap_or_else(|| readiness_url(&std::env::var("COMPRESSOR_LISTEN").unwrap_or_default()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(args.timeout).redirect(reqwest::redirect::Policy::none()).build()?;
        client.get(&url).send().await
    });
    Ok(match answer {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            println!("{url}: ready");
            0
        }
        Ok(response) => {
            eprintln!("compressor healthcheck: {url} answered {}", response.status());
            1
        }
        Err(e) => {
            eprintln!("compressor healthcheck: {url}: {:#}", anyhow::Error::from(e));
            1
        }
    })
}

/// `http://ADDR/readyz` for the address `compressor serve` binds here; unspecified addresses
/// (all interfaces) are reached on loopback.
fn readiness_url(listen: &str) -> String {
    let listen = if listen.is_empty() { compressor_server::DEFAULT_LISTEN } else { listen };
    let addr = match listen.parse::<SocketAddr>() {
        Ok(a) if a.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port()),
        Ok(a) if a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port()),
        Ok(a) => a,
        Err(_) => return format!("http://{listen}/readyz"),
    };
    format!("http://{addr}/readyz")
}

#[cfg(test)]
mod tests {
    use super::readiness_url;

    #[test]
    fn the_default_url_follows_the_listen_address() {
        assert_eq!(readiness_url(""), "http://127.0.0.1:8080/readyz");
        assert_eq!(readiness_url("0.0.0.0:9000"), "http://127.0.0.1:9000/readyz");
        assert_eq!(readiness_url("[::]:8080"), "http://[::1]:8080/readyz");
        assert_eq!(readiness_url("10.0.0.5:8080"), "http://10.0.0.5:8080/readyz");
    }
}
